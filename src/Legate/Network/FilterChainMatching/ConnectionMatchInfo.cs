using System.Collections.Immutable;
using System.Net;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// What filter chain matching looks at in a new connection: the properties the networking stack
/// gives (addresses and ports) and the ones listener filters detect. Listener filters fill the
/// rest in with <c>with</c>: proxy_protocol replaces <see cref="RemoteEndPoint"/> (keeping
/// <see cref="DirectRemoteEndPoint"/>), tls_inspector sets <see cref="RequestedServerName"/>,
/// <see cref="TransportProtocol"/> = "tls" and <see cref="ApplicationProtocols"/>.
/// </summary>
internal readonly struct ConnectionMatchInfo
{
    /// <summary>Envoy's transport protocol when no listener filter detected one.</summary>
    public const string RawBuffer = "raw_buffer";

    /// <summary>The transport protocol tls_inspector sets when it sees a TLS ClientHello.</summary>
    public const string Tls = "tls";

    private readonly IPEndPoint? _directRemote;
    private readonly string? _serverName;
    private readonly string? _transportProtocol;

    /// <param name="local">The local (destination) address the connection was accepted on.</param>
    /// <param name="remote">The remote (source) address; after PROXY protocol, the one it announced.</param>
    /// <param name="directRemote">The peer of the socket itself; defaults to <paramref name="remote"/>.</param>
    public ConnectionMatchInfo(IPEndPoint local, IPEndPoint remote, IPEndPoint? directRemote = null)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(remote);
        LocalEndPoint = local;
        RemoteEndPoint = remote;
        _directRemote = directRemote;
    }

    /// <summary>The local (destination) address: matched by destination_port and prefix_ranges.</summary>
    public IPEndPoint LocalEndPoint { get; init; }

    /// <summary>The source address: matched by source_type, source_prefix_ranges and source_ports.</summary>
    public IPEndPoint RemoteEndPoint { get; init; }

    /// <summary>
    /// The directly connected peer, which differs from <see cref="RemoteEndPoint"/> only when a
    /// listener filter such as proxy_protocol overrode the source: matched by direct_source_prefix_ranges.
    /// </summary>
    public IPEndPoint DirectRemoteEndPoint
    {
        get => _directRemote ?? RemoteEndPoint;
        init => _directRemote = value;
    }

    /// <summary>The requested server name (SNI), or "" when none was detected.</summary>
    public string RequestedServerName
    {
        get => _serverName ?? string.Empty;
        init => _serverName = value;
    }

    /// <summary>The detected transport protocol; "raw_buffer" when none was detected, as in Envoy.</summary>
    public string TransportProtocol
    {
        get => string.IsNullOrEmpty(_transportProtocol) ? RawBuffer : _transportProtocol;
        init => _transportProtocol = value;
    }

    /// <summary>The requested application protocols (ALPN) in the client's order; may be empty.</summary>
    public ImmutableArray<string> ApplicationProtocols { get; init; }
}
