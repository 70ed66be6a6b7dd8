using Legate.Http;
using Legate.Tls;

namespace Legate.Network;

/// <summary>
/// One compiled filter chain: its transport socket (raw, or TLS termination) and its terminal
/// network filter (the HTTP connection manager, or the TCP proxy).
/// </summary>
internal sealed class CompiledFilterChain
{
    /// <summary>Legate's bound on a TLS handshake when <c>transport_socket_connect_timeout</c> is unset (Envoy waits indefinitely).</summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(10);

    public required string Name { get; init; }

    /// <summary>The TLS server context, or null for raw_buffer.</summary>
    public ServerTlsContext? Tls { get; init; }

    /// <summary>How long the transport handshake may take.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = DefaultHandshakeTimeout;

    public HttpConnectionManagerConfig? Hcm { get; init; }

    public Legate.Extensions.Filters.Network.TcpProxy.TcpProxyConfig? TcpProxy { get; init; }
}
