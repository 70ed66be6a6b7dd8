using Legate.Stats;

namespace Legate.Network;

/// <summary>Envoy's <c>listener.&lt;address&gt;.*</c> stats (the address as <c>ip_port</c>, colons replaced).</summary>
internal sealed class ListenerStats
{
    public ListenerStats(StatsStore store, string address)
    {
        var p = "listener." + address.Replace(':', '_') + ".";
        DownstreamCxTotal = store.Counter(p + "downstream_cx_total");
        DownstreamCxDestroy = store.Counter(p + "downstream_cx_destroy");
        DownstreamCxActive = store.Gauge(p + "downstream_cx_active", ImportMode.Accumulate);
        NoFilterChainMatch = store.Counter(p + "no_filter_chain_match");
        DownstreamCxLengthMs = store.Histogram(p + "downstream_cx_length_ms", HistogramUnit.Milliseconds);

        // Listener filters' timeout: no listener filter runs yet, so it stays 0 (dashboards find it).
        DownstreamPreCxTimeout = store.Counter(p + "downstream_pre_cx_timeout");
        DownstreamPreCxActive = store.Gauge(p + "downstream_pre_cx_active", ImportMode.Accumulate);
    }

    public Histogram DownstreamCxLengthMs { get; }

    public Counter DownstreamPreCxTimeout { get; }

    public Gauge DownstreamPreCxActive { get; }

    public Counter DownstreamCxTotal { get; }

    public Counter DownstreamCxDestroy { get; }

    public Gauge DownstreamCxActive { get; }

    public Counter NoFilterChainMatch { get; }
}
