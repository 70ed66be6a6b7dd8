using System.Net;
using Legate.Config;
using Legate.Network.FilterChainMatching;
using InternalAddressConfig = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Types.InternalAddressConfig;

namespace Legate.Http;

/// <summary>
/// The HCM's <c>internal_address_config</c>: which peers count as internal. With
/// <c>cidr_ranges</c> only those ranges do; without them (or without the field) Envoy's classic
/// default applies: loopback, RFC 1918 and unique-local IPv6 addresses.
/// </summary>
internal sealed class InternalAddresses
{
    public static readonly InternalAddresses Default = new([]);

    private readonly IpPrefix[] _ranges;

    private InternalAddresses(IpPrefix[] ranges) => _ranges = ranges;

    public static InternalAddresses Compile(InternalAddressConfig? config, string path, ConfigErrors errors)
    {
        if (config is null || config.CidrRanges.Count == 0)
        {
            return Default;
        }

        var ranges = new List<IpPrefix>(config.CidrRanges.Count);
        var rangesPath = FieldPath.Field(path, "cidr_ranges");
        for (var i = 0; i < config.CidrRanges.Count; i++)
        {
            if (IpPrefix.TryParse(config.CidrRanges[i], FieldPath.Index(rangesPath, i), errors, out var prefix))
            {
                ranges.Add(prefix);
            }
        }

        return new InternalAddresses(ranges.ToArray());
    }

    public bool Contains(IPAddress address)
    {
        if (_ranges.Length == 0)
        {
            return ConnectionManagerUtility.IsInternalAddress(address);
        }

        var bits = IpBits.OfConnection(address);
        foreach (var range in _ranges)
        {
            if (range.Contains(bits))
            {
                return true;
            }
        }

        return false;
    }
}
