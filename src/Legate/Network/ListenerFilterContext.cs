using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using Legate.Network.FilterChainMatching;
using Legate.Tls;

namespace Legate.Network;

/// <summary>What listener filters see and set about one accepted connection.</summary>
internal sealed class ListenerFilterContext(Socket socket, IPEndPoint local, IPEndPoint remote)
{
    public Socket Socket { get; } = socket;

    /// <summary>The destination address: original_dst and proxy_protocol may restore another.</summary>
    public IPEndPoint LocalEndPoint { get; set; } = local;

    /// <summary>The source address: proxy_protocol replaces it with the one the header announced.</summary>
    public IPEndPoint RemoteEndPoint { get; set; } = remote;

    /// <summary>The peer of the socket itself.</summary>
    public IPEndPoint DirectRemoteEndPoint { get; } = remote;

    /// <summary>"" until a filter detects one ("tls" from tls_inspector).</summary>
    public string TransportProtocol { get; set; } = string.Empty;

    public string ServerName { get; set; } = string.Empty;

    public ImmutableArray<string> ApplicationProtocols { get; set; } = [];

    /// <summary>The ClientHello tls_inspector read, reused by the TLS handshake for certificate choice.</summary>
    public ClientHello? ClientHello { get; set; }

    /// <summary>TLVs from a PROXY protocol v2 header (type, value) that its <c>pass_through_tlvs</c> keeps for the upstream.</summary>
    public IReadOnlyList<(byte Type, byte[] Value)> ProxyProtocolTlvs { get; set; } = [];

    /// <summary>The ClientHello's JA3 hash (tls_inspector <c>enable_ja3_fingerprinting</c>), or null.</summary>
    public string? Ja3Hash { get; set; }

    /// <summary>Connection dynamic metadata set by listener filters (proxy_protocol <c>rules</c>), or null.</summary>
    public Envoy.Config.Core.V3.Metadata? DynamicMetadata { get; set; }

    /// <summary>True once the local address was restored from SO_ORIGINAL_DST or a PROXY header.</summary>
    public bool LocalAddressRestored { get; set; }

    public ConnectionMatchInfo ToMatchInfo() => new(LocalEndPoint, RemoteEndPoint, DirectRemoteEndPoint)
    {
        RequestedServerName = ServerName,
        TransportProtocol = TransportProtocol,
        ApplicationProtocols = ApplicationProtocols.IsDefault ? [] : ApplicationProtocols,
    };
}
