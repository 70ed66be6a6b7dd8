using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Envoy.Config.Core.V3;
using ProxyProtocolHeader = Legate.Extensions.Filters.Listener.ProxyProtocol.ProxyProtocolHeader;
using TlvSelection = Legate.Extensions.Filters.Listener.ProxyProtocol.TlvSelection;

namespace Legate.Extensions.TransportSockets.ProxyProtocol;

/// <summary>
/// A cluster's <c>envoy.transport_sockets.upstream_proxy_protocol</c>: every new upstream
/// connection starts with a PROXY protocol header (HAProxy's spec, v1 text or v2 binary) naming
/// the downstream connection's source and destination, before the inner transport socket (raw
/// bytes or TLS) takes over. Without a downstream connection (nothing to announce) v1 names the
/// upstream connection's own addresses and v2 sends the LOCAL command, as Envoy does.
/// </summary>
internal sealed class UpstreamProxyProtocol
{
    private readonly TlvSelection _passThrough;

    private UpstreamProxyProtocol(int version, TlvSelection passThrough)
    {
        Version = version;
        _passThrough = passThrough;
    }

    /// <summary>1 or 2.</summary>
    public int Version { get; }

    /// <summary>
    /// The <c>config</c> of a ProxyProtocolUpstreamTransport (absent = version 1, as Envoy);
    /// <c>pass_through_tlvs</c> selects which of the downstream's kept TLVs a v2 header carries.
    /// </summary>
    public static UpstreamProxyProtocol Compile(ProxyProtocolConfig? config) =>
        new(config?.Version == ProxyProtocolConfig.Types.Version.V2 ? 2 : 1, TlvSelection.From(config?.PassThroughTlvs));

    /// <summary>
    /// The header for a connection made on behalf of a downstream connection from
    /// <paramref name="source"/> to <paramref name="destination"/> (both null when there is none);
    /// <paramref name="upstreamLocal"/> and <paramref name="upstreamRemote"/> are the upstream
    /// connection's own addresses.
    /// </summary>
    public byte[] Header(IPEndPoint? source, IPEndPoint? destination, IPEndPoint? upstreamLocal, IPEndPoint upstreamRemote, IReadOnlyList<(byte Type, byte[] Value)>? tlvs = null)
    {
        if (source is null || destination is null)
        {
            if (Version == 2)
            {
                return LocalV2();
            }

            source = upstreamLocal;
            destination = upstreamRemote;
            if (source is null)
            {
                return "PROXY UNKNOWN\r\n"u8.ToArray();
            }
        }

        var (src, dst) = SameFamily(Plain(source), Plain(destination));
        return Version == 2 ? V2(src, dst, _passThrough.IsNone ? null : tlvs) : V1(src, dst);
    }

    /// <summary>Writes the header for a new upstream connection, before anything else goes on it.</summary>
    public async ValueTask SendAsync(Socket socket, IPEndPoint? source, IPEndPoint? destination, IPEndPoint upstreamRemote, CancellationToken cancellationToken, IReadOnlyList<(byte Type, byte[] Value)>? tlvs = null)
    {
        var header = Header(source, destination, socket.LocalEndPoint as IPEndPoint, upstreamRemote, tlvs);
        var sent = 0;
        while (sent < header.Length)
        {
            sent += await socket.SendAsync(header.AsMemory(sent), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
    }

    private static byte[] V1(IPEndPoint source, IPEndPoint destination)
    {
        var family = source.AddressFamily == AddressFamily.InterNetworkV6 ? "TCP6" : "TCP4";
        return Encoding.ASCII.GetBytes(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"PROXY {family} {source.Address} {destination.Address} {source.Port} {destination.Port}\r\n"));
    }

    private byte[] V2(IPEndPoint source, IPEndPoint destination, IReadOnlyList<(byte Type, byte[] Value)>? tlvs)
    {
        var v6 = source.AddressFamily == AddressFamily.InterNetworkV6;
        var addressLength = v6 ? 16 : 4;
        var tlvLength = 0;
        if (tlvs is not null)
        {
            foreach (var (type, value) in tlvs)
            {
                tlvLength += _passThrough.Includes(type) ? 3 + value.Length : 0;
            }
        }

        var payload = 2 * addressLength + 4 + tlvLength;
        if (payload > ushort.MaxValue)
        {
            // Cannot happen with TLVs read from one v2 header; never send a length that wraps.
            payload = 2 * addressLength + 4;
            tlvs = null;
        }

        var header = new byte[16 + payload];
        ProxyProtocolHeader.V2Signature.CopyTo(header);
        header[12] = 0x21; // version 2, PROXY command
        header[13] = v6 ? (byte)0x21 : (byte)0x11; // AF_INET6 / AF_INET, STREAM
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), (ushort)payload);
        source.Address.TryWriteBytes(header.AsSpan(16, addressLength), out _);
        destination.Address.TryWriteBytes(header.AsSpan(16 + addressLength, addressLength), out _);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(16 + 2 * addressLength), (ushort)source.Port);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(18 + 2 * addressLength), (ushort)destination.Port);
        var at = 20 + 2 * addressLength;
        if (tlvs is not null)
        {
            foreach (var (type, value) in tlvs)
            {
                if (_passThrough.Includes(type))
                {
                    header[at] = type;
                    BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(at + 1), (ushort)value.Length);
                    value.CopyTo(header.AsSpan(at + 3));
                    at += 3 + value.Length;
                }
            }
        }

        return header;
    }

    private static byte[] LocalV2()
    {
        var header = new byte[16];
        ProxyProtocolHeader.V2Signature.CopyTo(header);
        header[12] = 0x20; // version 2, LOCAL command; family UNSPEC, no addresses
        return header;
    }

    /// <summary>An IPv4 address received on a dual-stack socket is announced as IPv4.</summary>
    private static IPEndPoint Plain(IPEndPoint endpoint) =>
        endpoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endpoint.Address.MapToIPv4(), endpoint.Port) : endpoint;

    /// <summary>Both addresses in one family (the header has one): IPv4 mapped into IPv6 when they differ.</summary>
    private static (IPEndPoint, IPEndPoint) SameFamily(IPEndPoint source, IPEndPoint destination) =>
        source.AddressFamily == destination.AddressFamily
            ? (source, destination)
            : (new IPEndPoint(source.Address.MapToIPv6(), source.Port), new IPEndPoint(destination.Address.MapToIPv6(), destination.Port));
}
