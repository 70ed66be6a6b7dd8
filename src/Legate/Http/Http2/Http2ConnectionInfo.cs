using System.Net;

namespace Legate.Http.Http2;

/// <summary>
/// Per-connection facts the HTTP/2 streams need, set as a connection feature before the connection
/// goes to Kestrel (Kestrel's request features fall back to the connection's): the addresses as
/// Legate accepted them and whether the transport is TLS (for <c>x-forwarded-proto</c>).
/// </summary>
internal sealed class Http2ConnectionInfo(IPEndPoint? localAddress, IPEndPoint? remoteAddress, bool isTls)
{
    public IPEndPoint? LocalAddress { get; } = localAddress;

    public IPEndPoint? RemoteAddress { get; } = remoteAddress;

    public bool IsTls { get; } = isTls;

    /// <summary>The TLS session when the connection was TLS-terminated by Legate.</summary>
    public Legate.Tls.TlsSessionInfo? Tls { get; init; }
}
