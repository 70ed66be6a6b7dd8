using System.Globalization;
using Envoy.Config.Core.V3;
using Legate.Config;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// A CIDR range with the host bits cleared, so equal ranges are equal keys: "10.1.2.3/8" and
/// "10.0.0.0/8" are the same prefix, as Envoy truncates them.
/// </summary>
internal readonly record struct IpPrefix(bool IsV6, UInt128 Address, int Length)
{
    /// <summary>0.0.0.0/0: where Envoy files a chain without prefix ranges, with ::/0.</summary>
    public static readonly IpPrefix AnyV4 = new(false, UInt128.Zero, 0);

    /// <summary>::/0.</summary>
    public static readonly IpPrefix AnyV6 = new(true, UInt128.Zero, 0);

    public static IpPrefix Of(IpBits address, int length) => new(address.IsV6, address.Masked(length), length);

    /// <summary>
    /// Reads a CidrRange, adding errors and warnings under <paramref name="path"/>; false when invalid.
    /// </summary>
    public static bool TryParse(CidrRange range, string path, ConfigErrors errors, out IpPrefix prefix)
    {
        prefix = default;
        if (!IpBits.TryParseLiteral(range.AddressPrefix, out var address))
        {
            errors.Add(FieldPath.Field(path, "address_prefix"),
                $"malformed IP address \"{range.AddressPrefix}\": expected an IPv4 or IPv6 literal such as 10.0.0.0 or 2001:db8::");
            return false;
        }

        var family = address.IsV6 ? "IPv6" : "IPv4";
        if (range.PrefixLen is not { } length)
        {
            // Envoy reads an unset prefix_len as 0: the range then matches every address of its family.
            errors.Warn(path,
                $"prefix_len is not set, so {range.AddressPrefix}/0 matches every {family} address (as in Envoy); set prefix_len ({address.Width.ToString(CultureInfo.InvariantCulture)} for this one address)");
            length = 0;
        }
        else if (length > address.Width)
        {
            errors.Add(FieldPath.Field(path, "prefix_len"),
                $"prefix_len {length.ToString(CultureInfo.InvariantCulture)} is longer than an {family} address ({address.Width.ToString(CultureInfo.InvariantCulture)} bits)");
            return false;
        }

        if (address.IsIPv4Mapped && length >= 96)
        {
            errors.Warn(path,
                $"{range.AddressPrefix}/{length.ToString(CultureInfo.InvariantCulture)} is an IPv4-mapped IPv6 range and never matches: as in Envoy, IPv4 clients of a dual-stack listener are matched by their IPv4 address; write the IPv4 range instead");
        }

        prefix = Of(address, (int)length);
        return true;
    }

    /// <summary>Whether <paramref name="address"/> (of the same family) lies in this range.</summary>
    public bool Contains(IpBits address) => IsV6 == address.IsV6 && address.Masked(Length) == Address;

    public override string ToString() =>
        new IpBits(IsV6, Address).ToString() + "/" + Length.ToString(CultureInfo.InvariantCulture);
}
