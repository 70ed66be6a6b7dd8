using Legate.Stats;

namespace Legate.Network;

/// <summary>
/// Envoy's <c>listener.&lt;address&gt;.*</c> stats (the address as <c>ip_port</c>, colons replaced), or
/// <c>listener.&lt;stat_prefix&gt;.*</c> when the listener sets one.
/// </summary>
internal sealed class ListenerStats
{
    private readonly StatsStore _store;
    private readonly string _prefix;
    private Legate.Tls.TlsStats? _tls;

    public ListenerStats(StatsStore store, string addressOrStatPrefix)
    {
        var p = "listener." + addressOrStatPrefix.Replace(':', '_') + ".";
        _store = store;
        _prefix = p;
        DownstreamCxTotal = store.Counter(p + "downstream_cx_total");
        DownstreamCxDestroy = store.Counter(p + "downstream_cx_destroy");
        DownstreamCxActive = store.Gauge(p + "downstream_cx_active", ImportMode.Accumulate);
        NoFilterChainMatch = store.Counter(p + "no_filter_chain_match");
        DownstreamCxLengthMs = store.Histogram(p + "downstream_cx_length_ms", HistogramUnit.Milliseconds);
        DownstreamPreCxTimeout = store.Counter(p + "downstream_pre_cx_timeout");
        DownstreamPreCxActive = store.Gauge(p + "downstream_pre_cx_active", ImportMode.Accumulate);
        DownstreamCxOverflow = store.Counter(p + "downstream_cx_overflow");
        DownstreamGlobalCxOverflow = store.Counter(p + "downstream_global_cx_overflow");
    }

    /// <summary>Connections closed at accept: the listener's runtime connection limit was reached.</summary>
    public Counter DownstreamCxOverflow { get; }

    /// <summary>Connections closed at accept: the server's global downstream connection limit was reached.</summary>
    public Counter DownstreamGlobalCxOverflow { get; }

    public Histogram DownstreamCxLengthMs { get; }

    public Counter DownstreamCxTotal { get; }

    public Counter DownstreamCxDestroy { get; }

    public Gauge DownstreamCxActive { get; }

    public Counter NoFilterChainMatch { get; }

    /// <summary>Connections closed because listener filters did not finish in time.</summary>
    public Counter DownstreamPreCxTimeout { get; }

    /// <summary>Connections in their listener filters.</summary>
    public Gauge DownstreamPreCxActive { get; }

    /// <summary><c>listener.&lt;address&gt;.ssl.*</c>, created with the first TLS connection.</summary>
    public Legate.Tls.TlsStats Tls => _tls ?? Interlocked.CompareExchange(ref _tls, new Legate.Tls.TlsStats(_store, _prefix), null) ?? _tls!;
}
