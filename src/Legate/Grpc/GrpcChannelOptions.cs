using System.Net;

namespace Legate.Grpc;

/// <summary>How a <see cref="GrpcChannel"/> reaches its server.</summary>
internal sealed class GrpcChannelOptions
{
    /// <summary>
    /// Picks the address of each new connection (e.g. a host of the control plane's cluster).
    /// Called on every connect, so a changed host set is followed.
    /// </summary>
    public required Func<CancellationToken, ValueTask<EndPoint>> ResolveEndpoint { get; init; }

    /// <summary>The <c>:authority</c> of requests (Envoy sends the cluster name for envoy_grpc).</summary>
    public string Authority { get; init; } = "localhost";

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>HTTP/2 PING after this long without frames from the server; null: no keepalive pings.</summary>
    public TimeSpan? KeepAlivePingDelay { get; init; }

    /// <summary>How long a keepalive PING may go unanswered before the connection is closed.</summary>
    public TimeSpan KeepAlivePingTimeout { get; init; } = TimeSpan.FromSeconds(20);

    public int MaxReceiveMessageBytes { get; init; } = GrpcProtocol.DefaultMaxMessageBytes;

    /// <summary>
    /// The TLS context of new connections (an envoy_grpc cluster's UpstreamTlsContext): h2 over TLS
    /// with ALPN <c>h2</c>, SNI from its <c>sni</c>. Null, or returning null: cleartext HTTP/2 (h2c).
    /// Asked when a call starts and when a connection is made, so it may come from a cluster that
    /// is compiled after the channel.
    /// </summary>
    public Func<Legate.Tls.ClientTlsContext?>? Tls { get; init; }
}
