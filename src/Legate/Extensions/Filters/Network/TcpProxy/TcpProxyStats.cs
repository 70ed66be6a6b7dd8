using Legate.Stats;

namespace Legate.Extensions.Filters.Network.TcpProxy;

/// <summary>Envoy's <c>tcp.&lt;stat_prefix&gt;.*</c> stats.</summary>
internal sealed class TcpProxyStats
{
    public TcpProxyStats(StatsStore store, string statPrefix)
    {
        var p = "tcp." + statPrefix + ".";
        DownstreamCxTotal = store.Counter(p + "downstream_cx_total");
        DownstreamCxNoRoute = store.Counter(p + "downstream_cx_no_route");
        DownstreamCxRxBytesTotal = store.Counter(p + "downstream_cx_rx_bytes_total");
        DownstreamCxRxBytesBuffered = store.Gauge(p + "downstream_cx_rx_bytes_buffered", ImportMode.Accumulate);
        DownstreamCxTxBytesTotal = store.Counter(p + "downstream_cx_tx_bytes_total");
        DownstreamCxTxBytesBuffered = store.Gauge(p + "downstream_cx_tx_bytes_buffered", ImportMode.Accumulate);
        DownstreamFlowControlPausedReadingTotal = store.Counter(p + "downstream_flow_control_paused_reading_total");
        DownstreamFlowControlResumedReadingTotal = store.Counter(p + "downstream_flow_control_resumed_reading_total");
        EarlyDataReceivedCountTotal = store.Counter(p + "early_data_received_count_total");
        IdleTimeout = store.Counter(p + "idle_timeout");
        MaxDownstreamConnectionDurationReached = store.Counter(p + "max_downstream_connection_duration");
        UpstreamFlushTotal = store.Counter(p + "upstream_flush_total");
        UpstreamFlushActive = store.Gauge(p + "upstream_flush_active", ImportMode.Accumulate);
    }

    public Counter DownstreamCxTotal { get; }

    public Counter DownstreamCxNoRoute { get; }

    public Counter DownstreamCxRxBytesTotal { get; }

    public Gauge DownstreamCxRxBytesBuffered { get; }

    public Counter DownstreamCxTxBytesTotal { get; }

    public Gauge DownstreamCxTxBytesBuffered { get; }

    public Counter DownstreamFlowControlPausedReadingTotal { get; }

    public Counter DownstreamFlowControlResumedReadingTotal { get; }

    /// <summary>Connections that read downstream bytes before the upstream was connected (<c>max_early_data_bytes</c>).</summary>
    public Counter EarlyDataReceivedCountTotal { get; }

    public Counter IdleTimeout { get; }

    public Counter MaxDownstreamConnectionDurationReached { get; }

    public Counter UpstreamFlushTotal { get; }

    public Gauge UpstreamFlushActive { get; }
}
