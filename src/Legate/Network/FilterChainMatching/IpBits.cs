using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// An IP address as a number, so prefixes are masks and lookups are hash probes: IPv4 in the low
/// 32 bits, IPv6 in all 128.
/// </summary>
internal readonly struct IpBits
{
    public IpBits(bool isV6, UInt128 value)
    {
        IsV6 = isV6;
        Value = value;
    }

    public bool IsV6 { get; }

    public UInt128 Value { get; }

    /// <summary>Number of bits in an address of this family.</summary>
    public int Width => IsV6 ? 128 : 32;

    /// <summary>127.0.0.1 or ::1 exactly: Envoy's loopback test, not the whole of 127.0.0.0/8.</summary>
    public bool IsCanonicalLoopback => IsV6 ? Value == UInt128.One : Value == 0x7F00_0001u;

    /// <summary>True for ::ffff:a.b.c.d (the upper 96 bits are 0:0:0:0:0:ffff).</summary>
    public bool IsIPv4Mapped => IsV6 && (Value >> 32) == 0xFFFF;

    /// <summary>
    /// The address of a connection, with IPv4-mapped IPv6 addresses turned into IPv4. Envoy does
    /// this when it reads the addresses of a socket that is not IPV6_V6ONLY (a listener on "::" with
    /// ipv4_compat), so an IPv4 client of a dual-stack listener matches IPv4 prefix ranges; .NET's
    /// dual-mode sockets report such clients as ::ffff:a.b.c.d, hence the conversion here.
    /// Does not allocate.
    /// </summary>
    public static IpBits OfConnection(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written))
        {
            throw new ArgumentException("not an IP address", nameof(address));
        }

        if (written == 4)
        {
            return new IpBits(false, BinaryPrimitives.ReadUInt32BigEndian(bytes));
        }

        var bits = new IpBits(true, BinaryPrimitives.ReadUInt128BigEndian(bytes));
        return bits.IsIPv4Mapped ? new IpBits(false, (uint)bits.Value) : bits;
    }

    /// <summary>
    /// Parses an IP literal as Envoy's inet_pton-based parser does: dotted-quad IPv4 with no
    /// shorthand ("10.1" or "010.0.0.1" are rejected), or IPv6 without a zone or brackets.
    /// IPv4-mapped IPv6 literals stay IPv6.
    /// </summary>
    public static bool TryParseLiteral(string text, out IpBits bits)
    {
        bits = default;
        if (text.Contains(':', StringComparison.Ordinal))
        {
            if (text.Contains('%', StringComparison.Ordinal) || text.Contains('[', StringComparison.Ordinal)
                || !IPAddress.TryParse(text, out var address) || address.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }

            Span<byte> bytes = stackalloc byte[16];
            address.TryWriteBytes(bytes, out _);
            bits = new IpBits(true, BinaryPrimitives.ReadUInt128BigEndian(bytes));
            return true;
        }

        uint value = 0;
        var parts = 0;
        var start = 0;
        for (var i = 0; i <= text.Length; i++)
        {
            if (i < text.Length && text[i] != '.')
            {
                continue;
            }

            var part = text.AsSpan(start, i - start);
            if (part.Length is 0 or > 3 || (part.Length > 1 && part[0] == '0'))
            {
                return false;
            }

            var octet = 0;
            foreach (var c in part)
            {
                if (c is < '0' or > '9')
                {
                    return false;
                }

                octet = (octet * 10) + (c - '0');
            }

            if (octet > 255 || ++parts > 4)
            {
                return false;
            }

            value = (value << 8) | (uint)octet;
            start = i + 1;
        }

        if (parts != 4)
        {
            return false;
        }

        bits = new IpBits(false, value);
        return true;
    }

    /// <summary>The first <paramref name="length"/> bits of this address, the rest zero.</summary>
    public UInt128 Masked(int length) => length == 0 ? UInt128.Zero : Value & (UInt128.MaxValue << (Width - length));

    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[16];
        if (IsV6)
        {
            BinaryPrimitives.WriteUInt128BigEndian(bytes, Value);
            return new IPAddress(bytes).ToString();
        }

        BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)Value);
        return new IPAddress(bytes[..4]).ToString();
    }
}
