using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Legate.Http.Http2;

/// <summary>
/// Per-connection facts the HTTP/2 streams need, set as a connection feature before the connection
/// goes to Kestrel (Kestrel's request features fall back to the connection's): the addresses as
/// Legate accepted them, whether the transport is TLS (for <c>x-forwarded-proto</c>), and the
/// connection's premature-reset accounting (Envoy's CVE-2023-44487 defence).
/// </summary>
internal sealed class Http2ConnectionInfo(IPEndPoint? localAddress, IPEndPoint? remoteAddress, bool isTls, ConnectionContext? connection = null)
{
    /// <summary>Envoy's <c>overload.premature_reset_total_stream_count</c> default: closed streams before the ratio is judged.</summary>
    public const int PrematureResetTotalStreamCount = 500;

    /// <summary>Envoy's <c>overload.premature_reset_min_stream_lifetime_seconds</c> default.</summary>
    public static readonly TimeSpan PrematureResetMinStreamLifetime = TimeSpan.FromSeconds(1);

    private long _closedStreams;
    private long _prematureResets;
    private int _closing;
    private int _drainClosing;

    /// <summary>The server's health check state when the listener drains on it (drain_type DEFAULT).</summary>
    public Legate.Network.HealthCheckDrain? HealthCheck { get; init; }

    /// <summary>Starts this connection's drain sequence (GOAWAY notice, <c>drain_timeout</c>, graceful close); set by the codec server.</summary>
    public Action? DrainSequence { get; set; }

    public IPEndPoint? LocalAddress { get; } = localAddress;

    public IPEndPoint? RemoteAddress { get; } = remoteAddress;

    public bool IsTls { get; } = isTls;

    /// <summary>The connection's id (<c>%CONNECTION_ID%</c>).</summary>
    public ulong ConnectionId { get; init; }

    /// <summary>The connection's dynamic metadata from listener filters (each stream's <c>ConnectionDynamicMetadata</c>).</summary>
    public Envoy.Config.Core.V3.Metadata? DynamicMetadata { get; init; }

    /// <summary>
    /// A response's headers go out (Envoy's drainClose() check in encodeHeaders): while the server
    /// fails health checks, the connection starts its drain sequence, once, whenever it was opened.
    /// </summary>
    public void OnResponseHeaders(HttpConnectionManagerStats stats)
    {
        if (HealthCheck?.Failed == true && DrainSequence is { } drain && Interlocked.Exchange(ref _drainClosing, 1) == 0)
        {
            stats.DownstreamCxDrainClose.Inc();
            drain();
        }
    }

    /// <summary>
    /// Called once per finished stream (Envoy's doEndStream accounting). A stream is a premature
    /// reset when it lived at most a second and ended without a response code (the client reset it
    /// before any answer). Once 500 streams have closed on the connection and at least half were
    /// premature, the connection is closed at once and <c>downstream_rq_too_many_premature_resets</c>
    /// counted, as Envoy does.
    /// </summary>
    public void OnStreamClosed(HttpStream stream)
    {

        var closed = Interlocked.Increment(ref _closedStreams);
        var info = stream.Info;
        var premature = info.ResponseCode == 0 && info.Duration <= PrematureResetMinStreamLifetime
            ? Interlocked.Increment(ref _prematureResets)
            : Volatile.Read(ref _prematureResets);
        if (closed < PrematureResetTotalStreamCount || premature * 2 < closed || connection is null)
        {
            return;
        }

        if (Interlocked.Exchange(ref _closing, 1) == 0)
        {
            stream.Config.Stats.DownstreamRqTooManyPrematureResets.Inc();
            stream.Config.Log.Debug($"closing h2 connection from {RemoteAddress}: {premature} of {closed} streams reset prematurely");
            connection.Abort(new ConnectionAbortedException("too many premature resets"));
        }
    }
    /// <summary>Finished streams' objects kept for the connection's next streams.</summary>
    public Http2StreamPool Streams { get; } = new();

    /// <summary>The TLS session when the connection was TLS-terminated by Legate.</summary>
    public Legate.Tls.TlsSessionInfo? Tls { get; init; }

    /// <summary>The PROXY v2 TLVs kept for the upstream by the listener's proxy_protocol filter, or null.</summary>
    public IReadOnlyList<(byte Type, byte[] Value)>? ProxyProtocolTlvs { get; init; }
}
