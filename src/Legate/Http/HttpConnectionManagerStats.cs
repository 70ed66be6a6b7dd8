using System.Diagnostics;
using Legate.Stats;

namespace Legate.Http;

/// <summary>Envoy's <c>http.&lt;stat_prefix&gt;.*</c> connection manager and router stats of one HCM.</summary>
internal sealed class HttpConnectionManagerStats
{
    public HttpConnectionManagerStats(StatsStore store, string statPrefix)
    {
        var p = "http." + statPrefix + ".";
        DownstreamCxTotal = store.Counter(p + "downstream_cx_total");
        DownstreamCxActive = store.Gauge(p + "downstream_cx_active", ImportMode.Accumulate);
        DownstreamCxHttp1Total = store.Counter(p + "downstream_cx_http1_total");
        DownstreamCxHttp1Active = store.Gauge(p + "downstream_cx_http1_active", ImportMode.Accumulate);
        DownstreamCxHttp2Total = store.Counter(p + "downstream_cx_http2_total");
        DownstreamCxHttp2Active = store.Gauge(p + "downstream_cx_http2_active", ImportMode.Accumulate);
        DownstreamCxProtocolError = store.Counter(p + "downstream_cx_protocol_error");
        DownstreamCxDestroyRemote = store.Counter(p + "downstream_cx_destroy_remote");
        DownstreamCxDestroyLocal = store.Counter(p + "downstream_cx_destroy_local");
        DownstreamCxIdleTimeout = store.Counter(p + "downstream_cx_idle_timeout");
        DownstreamCxMaxRequestsReached = store.Counter(p + "downstream_cx_max_requests_reached");
        DownstreamRqTooManyPrematureResets = store.Counter(p + "downstream_rq_too_many_premature_resets");
        DownstreamCxMaxDurationReached = store.Counter(p + "downstream_cx_max_duration_reached");
        DownstreamCxDrainClose = store.Counter(p + "downstream_cx_drain_close");
        DownstreamCxRxBytesTotal = store.Counter(p + "downstream_cx_rx_bytes_total");
        DownstreamCxTxBytesTotal = store.Counter(p + "downstream_cx_tx_bytes_total");
        DownstreamCxUpgradesTotal = store.Counter(p + "downstream_cx_upgrades_total");
        DownstreamCxUpgradesActive = store.Gauge(p + "downstream_cx_upgrades_active", ImportMode.Accumulate);
        DownstreamRqTotal = store.Counter(p + "downstream_rq_total");
        DownstreamRqHttp1Total = store.Counter(p + "downstream_rq_http1_total");
        DownstreamRqHttp2Total = store.Counter(p + "downstream_rq_http2_total");
        DownstreamRqActive = store.Gauge(p + "downstream_rq_active", ImportMode.Accumulate);
        DownstreamRqCompleted = store.Counter(p + "downstream_rq_completed");
        DownstreamRqRxReset = store.Counter(p + "downstream_rq_rx_reset");
        DownstreamRqTxReset = store.Counter(p + "downstream_rq_tx_reset");
        DownstreamRqTooLarge = store.Counter(p + "downstream_rq_too_large");
        DownstreamRqTimeout = store.Counter(p + "downstream_rq_timeout");
        DownstreamRqHeaderTimeout = store.Counter(p + "downstream_rq_header_timeout");
        DownstreamRqIdleTimeout = store.Counter(p + "downstream_rq_idle_timeout");
        DownstreamRqMaxDurationReached = store.Counter(p + "downstream_rq_max_duration_reached");
        DownstreamRqWsOnNonWsRoute = store.Counter(p + "downstream_rq_ws_on_non_ws_route");
        DownstreamRqFailedPathNormalization = store.Counter(p + "downstream_rq_failed_path_normalization");
        DownstreamRqRejectedViaIpDetection = store.Counter(p + "downstream_rq_rejected_via_ip_detection");
        DownstreamRqRedirectedWithNormalizedPath = store.Counter(p + "downstream_rq_redirected_with_normalized_path");
        DownstreamRqXx =
        [
            store.Counter(p + "downstream_rq_1xx"), store.Counter(p + "downstream_rq_2xx"), store.Counter(p + "downstream_rq_3xx"),
            store.Counter(p + "downstream_rq_4xx"), store.Counter(p + "downstream_rq_5xx"),
        ];
        DownstreamRqTime = store.Histogram(p + "downstream_rq_time", HistogramUnit.Milliseconds);
        NoRoute = store.Counter(p + "no_route");
        NoCluster = store.Counter(p + "no_cluster");
        RqDirectResponse = store.Counter(p + "rq_direct_response");
        RqRedirect = store.Counter(p + "rq_redirect");
        RqTotal = store.Counter(p + "rq_total");
        RqResetAfterDownstreamResponseStarted = store.Counter(p + "rq_reset_after_downstream_response_started");
        PassthroughInternalRedirectBadLocation = store.Counter(p + "passthrough_internal_redirect_bad_location");
        PassthroughInternalRedirectUnsafeScheme = store.Counter(p + "passthrough_internal_redirect_unsafe_scheme");
        PassthroughInternalRedirectTooManyRedirects = store.Counter(p + "passthrough_internal_redirect_too_many_redirects");
        PassthroughInternalRedirectNoRoute = store.Counter(p + "passthrough_internal_redirect_no_route");
        PassthroughInternalRedirectPredicate = store.Counter(p + "passthrough_internal_redirect_predicate");
        Http1Codec = new HttpCodecStats(store, "http1.");
        Http2Codec = new HttpCodecStats(store, "http2.");
    }

    public Counter DownstreamCxTotal { get; }

    public Counter DownstreamRqFailedPathNormalization { get; }

    /// <summary>An original IP detection extension rejected the request (custom_header's reject_with_status).</summary>
    public Counter DownstreamRqRejectedViaIpDetection { get; }

    public Counter DownstreamRqMaxDurationReached { get; }

    public Counter DownstreamCxMaxDurationReached { get; }

    public Counter DownstreamRqRedirectedWithNormalizedPath { get; }

    public Gauge DownstreamCxActive { get; }

    public Counter DownstreamCxHttp1Total { get; }

    public Gauge DownstreamCxHttp1Active { get; }

    public Counter DownstreamCxHttp2Total { get; }

    public Gauge DownstreamCxHttp2Active { get; }

    public Counter DownstreamCxProtocolError { get; }

    public Counter DownstreamCxDestroyRemote { get; }

    public Counter DownstreamCxDestroyLocal { get; }

    public Counter DownstreamCxIdleTimeout { get; }

    /// <summary>Connections closed because they carried max_requests_per_connection requests.</summary>
    public Counter DownstreamCxMaxRequestsReached { get; }

    /// <summary>HTTP/2 connections closed because most of their streams were reset prematurely (rapid reset).</summary>
    public Counter DownstreamRqTooManyPrematureResets { get; }

    public Counter DownstreamCxRxBytesTotal { get; }

    public Counter DownstreamCxTxBytesTotal { get; }

    public Counter DownstreamCxUpgradesTotal { get; }

    /// <summary>Connections that began draining because their listener drains (Envoy's downstream_cx_drain_close).</summary>
    public Counter DownstreamCxDrainClose { get; }

    public Gauge DownstreamCxUpgradesActive { get; }

    public Counter DownstreamRqTotal { get; }

    public Counter DownstreamRqHttp1Total { get; }

    public Counter DownstreamRqHttp2Total { get; }

    public Gauge DownstreamRqActive { get; }

    public Counter DownstreamRqCompleted { get; }

    public Counter DownstreamRqRxReset { get; }

    public Counter DownstreamRqTxReset { get; }

    public Counter DownstreamRqTooLarge { get; }

    public Counter DownstreamRqTimeout { get; }

    public Counter DownstreamRqHeaderTimeout { get; }

    public Counter DownstreamRqIdleTimeout { get; }

    public Counter DownstreamRqWsOnNonWsRoute { get; }

    /// <summary>downstream_rq_1xx … 5xx, by the first digit minus one.</summary>
    public Counter[] DownstreamRqXx { get; }

    public Histogram DownstreamRqTime { get; }

    public Counter NoRoute { get; }

    public Counter NoCluster { get; }

    public Counter RqDirectResponse { get; }

    public Counter RqRedirect { get; }

    public Counter RqTotal { get; }

    public Counter RqResetAfterDownstreamResponseStarted { get; }

    /// <summary>The router's stats for an upstream 3xx it does not follow (Envoy's passthrough_internal_redirect_*), by why.</summary>
    public Counter PassthroughInternalRedirectBadLocation { get; }

    public Counter PassthroughInternalRedirectUnsafeScheme { get; }

    public Counter PassthroughInternalRedirectTooManyRedirects { get; }

    public Counter PassthroughInternalRedirectNoRoute { get; }

    public Counter PassthroughInternalRedirectPredicate { get; }

    /// <summary>The downstream HTTP/1.1 codec's <c>http1.*</c> stats.</summary>
    public HttpCodecStats Http1Codec { get; }

    /// <summary>The downstream HTTP/2 codec's <c>http2.*</c> stats.</summary>
    public HttpCodecStats Http2Codec { get; }

    /// <summary>Records a finished stream: completion, response class, time.</summary>
    public void OnStreamEnd(HttpStream stream)
    {
        DownstreamRqActive.Dec();
        var info = stream.Info;
        if (stream.ResponseComplete)
        {
            DownstreamRqCompleted.Inc();
        }

        var code = info.ResponseCode;
        if (code is >= 100 and < 600)
        {
            DownstreamRqXx[(code / 100) - 1].Inc();
        }

        DownstreamRqTime.Record((long)Stopwatch.GetElapsedTime(info.StartTimestamp, info.EndTimestamp).TotalMilliseconds);
        StreamObservers.Notify(stream);
    }
}
