using Legate.Stats;

namespace Legate.Upstream;

/// <summary>Envoy's <c>cluster.&lt;name&gt;.*</c> stats that the router and connection pools record.</summary>
internal sealed class ClusterStats
{
    private readonly string _prefix;
    private Gauge? _singleHostDuplicate;

    public ClusterStats(StatsStore store, string clusterName)
    {
        Store = store;
        var p = "cluster." + clusterName + ".";
        UpstreamCxTotal = store.Counter(p, "upstream_cx_total");
        UpstreamCxActive = store.Gauge(p, "upstream_cx_active", ImportMode.Accumulate);
        UpstreamCxHttp1Total = store.Counter(p, "upstream_cx_http1_total");
        UpstreamCxHttp2Total = store.Counter(p, "upstream_cx_http2_total");
        UpstreamCxConnectFail = store.Counter(p, "upstream_cx_connect_fail");
        UpstreamCxConnectTimeout = store.Counter(p, "upstream_cx_connect_timeout");
        UpstreamCxDestroy = store.Counter(p, "upstream_cx_destroy");
        UpstreamCxDestroyLocal = store.Counter(p, "upstream_cx_destroy_local");
        UpstreamCxDestroyRemote = store.Counter(p, "upstream_cx_destroy_remote");
        UpstreamCxDestroyWithActiveRq = store.Counter(p, "upstream_cx_destroy_with_active_rq");
        UpstreamCxDestroyLocalWithActiveRq = store.Counter(p, "upstream_cx_destroy_local_with_active_rq");
        UpstreamCxDestroyRemoteWithActiveRq = store.Counter(p, "upstream_cx_destroy_remote_with_active_rq");
        UpstreamCxIdleTimeout = store.Counter(p, "upstream_cx_idle_timeout");
        UpstreamCxMaxRequests = store.Counter(p, "upstream_cx_max_requests");
        UpstreamCxProtocolError = store.Counter(p, "upstream_cx_protocol_error");
        UpstreamCxRxBytesTotal = store.Counter(p, "upstream_cx_rx_bytes_total");
        UpstreamCxTxBytesTotal = store.Counter(p, "upstream_cx_tx_bytes_total");
        UpstreamCxNone = store.Counter(p, "upstream_cx_none_healthy");
        UpstreamCxConnectAttemptsExceeded = store.Counter(p, "upstream_cx_connect_attempts_exceeded");
        UpstreamRqTotal = store.Counter(p, "upstream_rq_total");
        UpstreamRqActive = store.Gauge(p, "upstream_rq_active", ImportMode.Accumulate);
        UpstreamRqCompleted = store.Counter(p, "upstream_rq_completed");
        UpstreamRqPendingTotal = store.Counter(p, "upstream_rq_pending_total");
        UpstreamRqPendingActive = store.Gauge(p, "upstream_rq_pending_active", ImportMode.Accumulate);
        UpstreamRqPendingFailureEject = store.Counter(p, "upstream_rq_pending_failure_eject");
        UpstreamRqTimeout = store.Counter(p, "upstream_rq_timeout");
        UpstreamRqRxReset = store.Counter(p, "upstream_rq_rx_reset");
        UpstreamRqTxReset = store.Counter(p, "upstream_rq_tx_reset");
        UpstreamRqCancelled = store.Counter(p, "upstream_rq_cancelled");
        UpstreamRqXx =
        [
            store.Counter(p, "upstream_rq_1xx"), store.Counter(p, "upstream_rq_2xx"), store.Counter(p, "upstream_rq_3xx"),
            store.Counter(p, "upstream_rq_4xx"), store.Counter(p, "upstream_rq_5xx"),
        ];
        UpstreamRqTime = store.Histogram(p, "upstream_rq_time", HistogramUnit.Milliseconds);
        UpstreamRqRetry = store.Counter(p, "upstream_rq_retry");
        UpstreamRqRetrySuccess = store.Counter(p, "upstream_rq_retry_success");
        UpstreamRqRetryOverflow = store.Counter(p, "upstream_rq_retry_overflow");
        UpstreamRqRetryLimitExceeded = store.Counter(p, "upstream_rq_retry_limit_exceeded");
        UpstreamRqRetryBackoffExponential = store.Counter(p, "upstream_rq_retry_backoff_exponential");
        UpstreamRqRetryBackoffRatelimited = store.Counter(p, "upstream_rq_retry_backoff_ratelimited");
        UpstreamRqPerTryTimeout = store.Counter(p, "upstream_rq_per_try_timeout");
        UpstreamRqPerTryIdleTimeout = store.Counter(p, "upstream_rq_per_try_idle_timeout");
        RetryOrShadowAbandoned = store.Counter(p, "retry_or_shadow_abandoned");
        UpstreamCxConnectMs = store.Histogram(p, "upstream_cx_connect_ms", HistogramUnit.Milliseconds);
        LbHealthyPanic = store.Counter(p, "lb_healthy_panic");
        LbZoneRoutingAllDirectly = store.Counter(p, "lb_zone_routing_all_directly");
        LbZoneRoutingSampled = store.Counter(p, "lb_zone_routing_sampled");
        LbZoneRoutingCrossZone = store.Counter(p, "lb_zone_routing_cross_zone");
        LbZoneClusterTooSmall = store.Counter(p, "lb_zone_cluster_too_small");
        LbLocalClusterNotOk = store.Counter(p, "lb_local_cluster_not_ok");
        LbZoneNumberDiffers = store.Counter(p, "lb_zone_number_differs");
        LbZoneNoCapacityLeft = store.Counter(p, "lb_zone_no_capacity_left");
        LbRecalculateZoneStructures = store.Counter(p, "lb_recalculate_zone_structures");
        LbSubsetsActive = store.Gauge(p, "lb_subsets_active", ImportMode.NeverImport);
        LbSubsetsCreated = store.Counter(p, "lb_subsets_created");
        LbSubsetsRemoved = store.Counter(p, "lb_subsets_removed");
        LbSubsetsSelected = store.Counter(p, "lb_subsets_selected");
        LbSubsetsFallback = store.Counter(p, "lb_subsets_fallback");
        LbSubsetsFallbackPanic = store.Counter(p, "lb_subsets_fallback_panic");
        _prefix = p;
        UpstreamCxOverflow = store.Counter(p, "upstream_cx_overflow");
        UpstreamCxPoolOverflow = store.Counter(p, "upstream_cx_pool_overflow");
        UpstreamRqPendingOverflow = store.Counter(p, "upstream_rq_pending_overflow");
        MembershipChange = store.Counter(p, "membership_change");
        MembershipHealthy = store.Gauge(p, "membership_healthy", ImportMode.NeverImport);
        MembershipDegraded = store.Gauge(p, "membership_degraded", ImportMode.NeverImport);
        MembershipExcluded = store.Gauge(p, "membership_excluded", ImportMode.NeverImport);
        MembershipTotal = store.Gauge(p, "membership_total", ImportMode.NeverImport);
        OriginalDstHostInvalid = store.Counter(p, "original_dst_host_invalid");
        UpstreamRqDropOverload = store.Counter(p, "upstream_rq_drop_overload");
        UpstreamInternalRedirectSucceededTotal = store.Counter(p, "upstream_internal_redirect_succeeded_total");
        UpstreamInternalRedirectFailedTotal = store.Counter(p, "upstream_internal_redirect_failed_total");
    }

    /// <summary>Where the cluster's stats live: outlier detection and health checking add theirs when configured.</summary>
    public StatsStore Store { get; }

    /// <summary>A connection was wanted but max_connections was reached (the request waits).</summary>
    public Counter UpstreamCxOverflow { get; }

    public Counter UpstreamCxPoolOverflow { get; }

    /// <summary>Requests refused by max_pending_requests or max_requests (503 UO).</summary>
    public Counter UpstreamRqPendingOverflow { get; }

    /// <summary>Retries refused by max_retries or the retry budget.</summary>
    public Counter UpstreamRqRetryOverflow { get; }

    /// <summary>Picks made while the chosen priority was in panic mode (balanced over all hosts).</summary>
    public Counter LbHealthyPanic { get; }

    /// <summary>Zone-aware picks sent to the local zone because it has the capacity for all of them.</summary>
    public Counter LbZoneRoutingAllDirectly { get; }

    /// <summary>Zone-aware picks sent to the local zone by the sampled share it can take.</summary>
    public Counter LbZoneRoutingSampled { get; }

    /// <summary>Zone-aware picks sent to another zone (its residual capacity).</summary>
    public Counter LbZoneRoutingCrossZone { get; }

    /// <summary>Zone-aware routing off: fewer healthy hosts than min_cluster_size.</summary>
    public Counter LbZoneClusterTooSmall { get; }

    /// <summary>Zone-aware routing off: no healthy local-zone host, or the local cluster panics.</summary>
    public Counter LbLocalClusterNotOk { get; }

    /// <summary>Zone-aware routing off: the local and upstream clusters have different numbers of zones.</summary>
    public Counter LbZoneNumberDiffers { get; }

    /// <summary>Cross-zone picks that found no residual capacity anywhere (a random zone).</summary>
    public Counter LbZoneNoCapacityLeft { get; }

    /// <summary>Times the zone routing structures were recomputed (an upstream or local cluster change).</summary>
    public Counter LbRecalculateZoneStructures { get; }

    /// <summary>Subsets that currently have hosts (lb_subset_config).</summary>
    public Gauge LbSubsetsActive { get; }

    public Counter LbSubsetsCreated { get; }

    public Counter LbSubsetsRemoved { get; }

    /// <summary>Picks served by the subset the route's metadata_match asked for.</summary>
    public Counter LbSubsetsSelected { get; }

    /// <summary>Picks that fell back (no criteria, or no subset for them).</summary>
    public Counter LbSubsetsFallback { get; }

    /// <summary>Picks served by <c>panic_mode_any</c> after the fallback found no host.</summary>
    public Counter LbSubsetsFallbackPanic { get; }

    /// <summary>
    /// Hosts left out of <c>single_host_per_subset</c> subsets (another host has the same value);
    /// made on first use, as Envoy makes it only for clusters with subsets.
    /// </summary>
    public Gauge LbSubsetsSingleHostPerSubsetDuplicate => _singleHostDuplicate ??= Store.Gauge(_prefix, "lb_subsets_single_host_per_subset_duplicate", ImportMode.Accumulate);

    /// <summary>Updates that added or removed hosts.</summary>
    public Counter MembershipChange { get; }

    public Gauge MembershipHealthy { get; }

    public Gauge MembershipDegraded { get; }

    /// <summary>Hosts excluded from load balancing (pending their first check, or via an immediate health check failure).</summary>
    public Gauge MembershipExcluded { get; }

    public Gauge MembershipTotal { get; }

    public Counter UpstreamCxTotal { get; }

    public Gauge UpstreamCxActive { get; }

    public Counter UpstreamCxHttp1Total { get; }

    public Counter UpstreamCxHttp2Total { get; }

    public Counter UpstreamCxConnectFail { get; }

    public Counter UpstreamCxConnectTimeout { get; }

    public Counter UpstreamCxDestroy { get; }

    public Counter UpstreamCxDestroyLocal { get; }

    public Counter UpstreamCxDestroyRemote { get; }

    public Counter UpstreamCxDestroyWithActiveRq { get; }

    public Counter UpstreamCxDestroyLocalWithActiveRq { get; }

    public Counter UpstreamCxDestroyRemoteWithActiveRq { get; }

    /// <summary>
    /// An HTTP/1.1 connection closes while a request is on it: by the upstream (<paramref name="remote"/>)
    /// or by Legate (a timeout, the downstream going away). Envoy's three counters for that close; the
    /// plain <c>upstream_cx_destroy</c> is counted by the connection itself.
    /// </summary>
    public void ConnectionDestroyedWithActiveRequest(bool remote)
    {
        UpstreamCxDestroyWithActiveRq.Inc();
        if (remote)
        {
            UpstreamCxDestroyRemote.Inc();
            UpstreamCxDestroyRemoteWithActiveRq.Inc();
        }
        else
        {
            UpstreamCxDestroyLocal.Inc();
            UpstreamCxDestroyLocalWithActiveRq.Inc();
        }
    }

    public Counter UpstreamCxIdleTimeout { get; }

    public Counter UpstreamCxMaxRequests { get; }

    public Counter UpstreamCxProtocolError { get; }

    public Counter UpstreamCxRxBytesTotal { get; }

    public Counter UpstreamCxTxBytesTotal { get; }

    public Counter UpstreamCxNone { get; }

    /// <summary>tcp_proxy gave up after <c>max_connect_attempts</c> failed connects.</summary>
    public Counter UpstreamCxConnectAttemptsExceeded { get; }

    public Counter UpstreamRqTotal { get; }

    public Gauge UpstreamRqActive { get; }

    public Counter UpstreamRqCompleted { get; }

    public Counter UpstreamRqPendingTotal { get; }

    public Gauge UpstreamRqPendingActive { get; }

    public Counter UpstreamRqPendingFailureEject { get; }

    public Counter UpstreamRqTimeout { get; }

    public Counter UpstreamRqRxReset { get; }

    public Counter UpstreamRqTxReset { get; }

    public Counter UpstreamRqCancelled { get; }

    /// <summary>upstream_rq_1xx … 5xx by first digit minus one.</summary>
    public Counter[] UpstreamRqXx { get; }

    public Histogram UpstreamRqTime { get; }

    public Histogram UpstreamCxConnectMs { get; }

    // Retries (the router's retry state).
    public Counter UpstreamRqRetry { get; }

    public Counter UpstreamRqRetrySuccess { get; }

    public Counter UpstreamRqRetryLimitExceeded { get; }

    public Counter UpstreamRqRetryBackoffExponential { get; }

    public Counter UpstreamRqRetryBackoffRatelimited { get; }

    public Counter UpstreamRqPerTryTimeout { get; }

    public Counter UpstreamRqPerTryIdleTimeout { get; }

    public Counter RetryOrShadowAbandoned { get; }

    /// <summary>ORIGINAL_DST: an override header that is not an IP:port.</summary>
    public Counter OriginalDstHostInvalid { get; }

    /// <summary>Requests dropped by the load assignment's <c>drop_overloads</c> (503 DO).</summary>
    public Counter UpstreamRqDropOverload { get; }

    public Counter UpstreamInternalRedirectSucceededTotal { get; }

    public Counter UpstreamInternalRedirectFailedTotal { get; }
}
