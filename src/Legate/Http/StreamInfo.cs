using System.Diagnostics;
using System.Net;
using Legate.Upstream;

namespace Legate.Http;

/// <summary>
/// What happened to one stream (Envoy's StreamInfo): timings, response code, flags and details,
/// route and upstream host, byte counts. Filled as the stream goes; read by stats and access logs
/// when it ends. One instance per stream; an HTTP/1.1 connection reuses its instance per request.
/// </summary>
internal sealed class StreamInfo
{
    public DateTimeOffset StartTime { get; private set; }

    /// <summary><see cref="Stopwatch.GetTimestamp"/> at the start of the stream.</summary>
    public long StartTimestamp { get; private set; }

    /// <summary>Timestamp of the last request byte received, or 0.</summary>
    public long LastDownstreamRxByteReceived { get; set; }

    /// <summary>Timestamp of the first upstream byte sent, or 0.</summary>
    public long FirstUpstreamTxByteSent { get; set; }

    /// <summary>Timestamp of the first response byte from upstream, or 0.</summary>
    public long FirstUpstreamRxByteReceived { get; set; }

    /// <summary>Timestamp of the first response byte sent downstream, or 0.</summary>
    public long FirstDownstreamTxByteSent { get; set; }

    /// <summary>Timestamp of the end of the stream, or 0 while it runs.</summary>
    public long EndTimestamp { get; set; }

    /// <summary>The response code sent downstream, or 0 when no response head was sent.</summary>
    public int ResponseCode { get; set; }

    public string? ResponseCodeDetails { get; set; }

    /// <summary>Envoy's <c>%CONNECTION_TERMINATION_DETAILS%</c>.</summary>
    public string? ConnectionTerminationDetails { get; set; }

    public ResponseFlags ResponseFlags { get; private set; }

    /// <summary><c>HTTP/1.0</c>, <c>HTTP/1.1</c> or <c>HTTP/2</c>.</summary>
    public string Protocol { get; set; } = "HTTP/1.1";

    public IPEndPoint? DownstreamLocalAddress { get; set; }

    public IPEndPoint? DownstreamRemoteAddress { get; set; }

    /// <summary>
    /// The downstream connection's TLS session (version, cipher, SNI, peer and local certificates),
    /// or null on plaintext: what <c>%DOWNSTREAM_PEER_URI_SAN%</c>, <c>%DOWNSTREAM_PEER_SUBJECT%</c>,
    /// <c>%DOWNSTREAM_TLS_VERSION%</c> and the like read.
    /// </summary>
    public Legate.Tls.TlsSessionInfo? DownstreamTls { get; set; }

    public string? VirtualHostName { get; set; }

    public string? RouteName { get; set; }

    public Cluster? UpstreamCluster { get; set; }

    public Host? UpstreamHost { get; set; }

    /// <summary>The upstream address actually connected to, or null.</summary>
    public IPEndPoint? UpstreamRemoteAddress { get; set; }

    /// <summary>Envoy's <c>%UPSTREAM_TRANSPORT_FAILURE_REASON%</c>.</summary>
    public string? UpstreamTransportFailureReason { get; set; }

    /// <summary>Request body bytes received from downstream.</summary>
    public long BytesReceived { get; set; }

    /// <summary>Response body bytes sent downstream.</summary>
    public long BytesSent { get; set; }

    /// <summary>Upstream attempts made (1 without retries).</summary>
    public int AttemptCount { get; set; }

    /// <summary>The request id (x-request-id) when one was generated or kept.</summary>
    public string? RequestId { get; set; }

    public bool HasResponseFlag(ResponseFlags flag) => (ResponseFlags & flag) != 0;

    public void SetResponseFlag(ResponseFlags flag) => ResponseFlags |= flag;

    /// <summary>Duration of the stream so far (or in all, once ended).</summary>
    public TimeSpan Duration => Stopwatch.GetElapsedTime(StartTimestamp, EndTimestamp != 0 ? EndTimestamp : Stopwatch.GetTimestamp());

    public void Reset(DateTimeOffset startTime, long startTimestamp)
    {
        StartTime = startTime;
        StartTimestamp = startTimestamp;
        LastDownstreamRxByteReceived = 0;
        FirstUpstreamTxByteSent = 0;
        FirstUpstreamRxByteReceived = 0;
        FirstDownstreamTxByteSent = 0;
        EndTimestamp = 0;
        ResponseCode = 0;
        ResponseCodeDetails = null;
        ConnectionTerminationDetails = null;
        ResponseFlags = ResponseFlags.None;
        VirtualHostName = null;
        RouteName = null;
        UpstreamCluster = null;
        UpstreamHost = null;
        UpstreamRemoteAddress = null;
        UpstreamTransportFailureReason = null;
        BytesReceived = 0;
        BytesSent = 0;
        AttemptCount = 0;
        RequestId = null;
    }
}
