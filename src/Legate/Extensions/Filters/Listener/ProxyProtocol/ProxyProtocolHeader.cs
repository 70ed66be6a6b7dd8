using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Legate.Extensions.Filters.Listener.ProxyProtocol;

/// <summary>
/// A parsed PROXY protocol header (HAProxy's spec): v1 text (<c>PROXY TCP4 src dst sport dport\r\n</c>)
/// or v2 binary (12-byte signature, version/command, family, length, addresses, TLVs).
/// </summary>
internal sealed class ProxyProtocolHeader
{
    /// <summary>The longest v1 header, CRLF included.</summary>
    public const int MaxV1Length = 107;

    public static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    private static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;

    public enum ParseStatus
    {
        Done,
        NeedMoreData,

        /// <summary>The bytes are not a PROXY header at all.</summary>
        NotProxyProtocol,

        /// <summary>A PROXY header, but malformed.</summary>
        Invalid,
    }

    /// <summary>1 or 2.</summary>
    public int Version { get; private init; }

    /// <summary>Bytes to consume from the connection.</summary>
    public int Length { get; private init; }

    /// <summary>The client's address, or null for LOCAL / UNKNOWN (the connection's own addresses stay).</summary>
    public IPEndPoint? Source { get; private init; }

    /// <summary>The address the client connected to, or null.</summary>
    public IPEndPoint? Destination { get; private init; }

    public IReadOnlyList<(byte Type, byte[] Value)> Tlvs { get; private init; } = [];

    public static ParseStatus TryParse(ReadOnlySpan<byte> data, out ProxyProtocolHeader? header)
    {
        header = null;
        if (data.Length == 0)
        {
            return ParseStatus.NeedMoreData;
        }

        var v2Prefix = Math.Min(data.Length, V2Signature.Length);
        if (data[..v2Prefix].SequenceEqual(V2Signature[..v2Prefix]))
        {
            return data.Length < 16 ? ParseStatus.NeedMoreData : ParseV2(data, out header);
        }

        var v1Prefix = Math.Min(data.Length, V1Prefix.Length);
        if (data[..v1Prefix].SequenceEqual(V1Prefix[..v1Prefix]))
        {
            return data.Length < V1Prefix.Length ? ParseStatus.NeedMoreData : ParseV1(data, out header);
        }

        return ParseStatus.NotProxyProtocol;
    }

    private static ParseStatus ParseV1(ReadOnlySpan<byte> data, out ProxyProtocolHeader? header)
    {
        header = null;
        var end = data[..Math.Min(data.Length, MaxV1Length)].IndexOf("\r\n"u8);
        if (end < 0)
        {
            return data.Length >= MaxV1Length ? ParseStatus.Invalid : ParseStatus.NeedMoreData;
        }

        var parts = Encoding.ASCII.GetString(data[..end]).Split(' ');
        if (parts.Length >= 2 && parts[1] == "UNKNOWN")
        {
            header = new ProxyProtocolHeader { Version = 1, Length = end + 2 };
            return ParseStatus.Done;
        }

        if (parts.Length != 6 || (parts[1] != "TCP4" && parts[1] != "TCP6")
            || !IPAddress.TryParse(parts[2], out var source) || !IPAddress.TryParse(parts[3], out var destination)
            || !ushort.TryParse(parts[4], out var sourcePort) || !ushort.TryParse(parts[5], out var destinationPort)
            || (parts[1] == "TCP4") != (source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            || source.AddressFamily != destination.AddressFamily)
        {
            return ParseStatus.Invalid;
        }

        header = new ProxyProtocolHeader
        {
            Version = 1,
            Length = end + 2,
            Source = new IPEndPoint(source, sourcePort),
            Destination = new IPEndPoint(destination, destinationPort),
        };
        return ParseStatus.Done;
    }

    private static ParseStatus ParseV2(ReadOnlySpan<byte> data, out ProxyProtocolHeader? header)
    {
        header = null;
        var versionCommand = data[12];
        if (versionCommand >> 4 != 2 || (versionCommand & 0x0F) > 1)
        {
            return ParseStatus.Invalid;
        }

        var length = 16 + BinaryPrimitives.ReadUInt16BigEndian(data[14..]);
        if (data.Length < length)
        {
            return ParseStatus.NeedMoreData;
        }

        var body = data[16..length];
        var local = (versionCommand & 0x0F) == 0;
        var family = data[13] >> 4;
        var transport = data[13] & 0x0F;
        IPEndPoint? source = null, destination = null;
        int addressLength;
        switch (family)
        {
            case 1: // AF_INET
                addressLength = 12;
                if (body.Length < addressLength)
                {
                    return ParseStatus.Invalid;
                }

                source = new IPEndPoint(new IPAddress(body[..4]), BinaryPrimitives.ReadUInt16BigEndian(body[8..]));
                destination = new IPEndPoint(new IPAddress(body[4..8]), BinaryPrimitives.ReadUInt16BigEndian(body[10..]));
                break;
            case 2: // AF_INET6
                addressLength = 36;
                if (body.Length < addressLength)
                {
                    return ParseStatus.Invalid;
                }

                source = new IPEndPoint(new IPAddress(body[..16]), BinaryPrimitives.ReadUInt16BigEndian(body[32..]));
                destination = new IPEndPoint(new IPAddress(body[16..32]), BinaryPrimitives.ReadUInt16BigEndian(body[34..]));
                break;
            case 0: // AF_UNSPEC
                addressLength = 0;
                break;
            default: // AF_UNIX and others: no address Legate can use
                addressLength = family == 3 ? 216 : 0;
                break;
        }

        var tlvs = new List<(byte, byte[])>();
        var rest = body[Math.Min(addressLength, body.Length)..];
        while (rest.Length >= 3)
        {
            var tlvLength = BinaryPrimitives.ReadUInt16BigEndian(rest[1..]);
            if (rest.Length < 3 + tlvLength)
            {
                return ParseStatus.Invalid;
            }

            tlvs.Add((rest[0], rest.Slice(3, tlvLength).ToArray()));
            rest = rest[(3 + tlvLength)..];
        }

        // LOCAL (health checks from the proxy itself) and non-TCP families keep the real addresses.
        var useAddresses = !local && transport == 1 && source is not null;
        header = new ProxyProtocolHeader
        {
            Version = 2,
            Length = length,
            Source = useAddresses ? source : null,
            Destination = useAddresses ? destination : null,
            Tlvs = tlvs,
        };
        return ParseStatus.Done;
    }
}
