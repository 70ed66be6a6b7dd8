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

    /// <summary>Timestamp of the last request byte sent upstream, or 0.</summary>
    public long LastUpstreamTxByteSent { get; set; }

    /// <summary>Timestamp of the last response byte sent downstream, or 0.</summary>
    public long LastDownstreamTxByteSent { get; set; }

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

    /// <summary>The peer of the socket, whatever x-forwarded-for says (Envoy's direct remote address).</summary>
    public IPEndPoint? DownstreamDirectRemoteAddress { get; set; }

    /// <summary>The downstream connection's id (Envoy's <c>%CONNECTION_ID%</c>), unique in the process.</summary>
    public ulong ConnectionId { get; set; }

    /// <summary>SNI of the downstream TLS connection, or null.</summary>
    public string? RequestedServerName { get; set; }

    /// <summary>The virtual cluster the request matched, or null.</summary>
    public string? VirtualClusterName { get; set; }

    /// <summary><c>HTTP/1.1</c> or <c>HTTP/2</c> once an upstream request was made.</summary>
    public string? UpstreamProtocol { get; set; }

    /// <summary>The local address of the upstream connection, or null.</summary>
    public IPEndPoint? UpstreamLocalAddress { get; set; }

    /// <summary>Dynamic metadata set by filters (namespace → struct); null until a filter sets some.</summary>
    public Envoy.Config.Core.V3.Metadata? DynamicMetadata { get; set; }

    /// <summary>Envoy's setDynamicMetadata: <paramref name="value"/>'s fields merged into the <paramref name="ns"/> namespace (a key set again is replaced).</summary>
    public void MergeDynamicMetadata(string ns, Google.Protobuf.WellKnownTypes.Struct value)
    {
        // A copy: the stream's metadata may be the connection's (listener filters'), shared by its streams.
        var metadata = DynamicMetadata = DynamicMetadata?.Clone() ?? new Envoy.Config.Core.V3.Metadata();
        if (metadata.FilterMetadata.TryGetValue(ns, out var existing))
        {
            existing.MergeFrom(value);
        }
        else
        {
            metadata.FilterMetadata[ns] = value.Clone();
        }
    }

    /// <summary>
    /// The downstream connection's dynamic metadata (set by listener filters, e.g. proxy_protocol
    /// TLV rules), shared by the connection's streams and never written through; null when none.
    /// </summary>
    public Envoy.Config.Core.V3.Metadata? ConnectionDynamicMetadata { get; set; }

    /// <summary>Filter state objects that print as strings (Envoy's FILTER_STATE, basic form); null until set.</summary>
    public Dictionary<string, string>? FilterState { get; set; }

    /// <summary>True when a health check filter answered the request (it is then a health check).</summary>
    public bool HealthCheck { get; set; }

    /// <summary>Why the request is traced, if it is (Envoy packs it into x-request-id).</summary>
    public Tracing.TraceReason TraceReason { get; set; }
    /// <summary>
    /// The downstream connection's TLS session (version, cipher, SNI, peer and local certificates),
    /// or null on plaintext: what <c>%DOWNSTREAM_PEER_URI_SAN%</c>, <c>%DOWNSTREAM_PEER_SUBJECT%</c>,
    /// <c>%DOWNSTREAM_TLS_VERSION%</c> and the like read.
    /// </summary>
    public Legate.Tls.TlsSessionInfo? DownstreamTls { get; set; }

    /// <summary>
    /// The PROXY v2 TLVs the listener's proxy_protocol filter kept for the upstream (its
    /// <c>pass_through_tlvs</c>), or null: an upstream PROXY protocol transport socket passes them on.
    /// </summary>
    public IReadOnlyList<(byte Type, byte[] Value)>? ProxyProtocolTlvs { get; set; }

    /// <summary>
    /// The connection's JA3 hash for a connection-level info (tcp_proxy, listener log: TLS may pass
    /// through untouched); HTTP streams read it from <see cref="DownstreamTls"/>.
    /// </summary>
    public string? Ja3Hash { get; set; }

    /// <summary>The TLS session of the upstream connection the request went over (HTTP/1.1 pools), or null: <c>%UPSTREAM_PEER_SUBJECT%</c> and the like.</summary>
    public Legate.Tls.TlsSessionInfo? UpstreamTls { get; set; }

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

    private ulong _randomValue;
    private bool _hasRandomValue;

    /// <summary>
    /// The stream's random value (Envoy's stream id: a fresh random number per stream), drawn when
    /// first asked for: route <c>runtime_fraction</c>, weighted-cluster selection and mirror
    /// <c>runtime_fraction</c> of one stream all see the same value; the x-request-id plays no part.
    /// </summary>
    public ulong RandomValue
    {
        get
        {
            if (!_hasRandomValue)
            {
                _randomValue = (ulong)Random.Shared.NextInt64() ^ ((ulong)Random.Shared.Next() << 63);
                _hasRandomValue = true;
            }

            return _randomValue;
        }
    }

    /// <summary>
    /// A copy of this stream's info as one upstream attempt's log sees it (Envoy's upstream stream
    /// info): the attempt's start and now as its end, the upstream's response code (0: none), the
    /// attempt's own flags and details. The copy is only read (by formatters and log filters).
    /// </summary>
    public StreamInfo ForUpstreamAttempt(long attemptStart, int responseCode, ResponseFlags flags, string? details)
    {
        var copy = (StreamInfo)MemberwiseClone();
        copy.StartTimestamp = attemptStart;
        copy.StartTime = Network.EventClock.UtcAt(attemptStart);
        copy.EndTimestamp = Network.EventClock.Timestamp;
        copy.ResponseCode = responseCode;
        copy.ResponseFlags = flags;
        copy.ResponseCodeDetails = details;
        return copy;
    }

    public void Reset(DateTimeOffset startTime, long startTimestamp)
    {
        _hasRandomValue = false;
        StartTime = startTime;
        StartTimestamp = startTimestamp;
        LastDownstreamRxByteReceived = 0;
        FirstUpstreamTxByteSent = 0;
        FirstUpstreamRxByteReceived = 0;
        FirstDownstreamTxByteSent = 0;
        LastUpstreamTxByteSent = 0;
        LastDownstreamTxByteSent = 0;
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
        DownstreamDirectRemoteAddress = null;
        ConnectionId = 0;
        RequestedServerName = null;
        VirtualClusterName = null;
        UpstreamProtocol = null;
        UpstreamLocalAddress = null;
        UpstreamTls = null;
        ProxyProtocolTlvs = null;
        DynamicMetadata = null;
        ConnectionDynamicMetadata = null;
        FilterState = null;
        HealthCheck = false;
        TraceReason = Tracing.TraceReason.NotTraceable;
    }
}
