using Legate.Server;

namespace Legate.Stats;

/// <summary>
/// Envoy's <c>server.*</c> stats (the names and import modes of its <c>ALL_SERVER_STATS</c>). The
/// cheap-to-read ones (uptime, state, memory, connections) are refreshed when the admin or a sink
/// reads the store rather than by a timer, so an idle server does no work for them. Stats for
/// machinery Legate does not have (hot restart's parent, OCSP stapling, debug assertions) exist with
/// the value an Envoy without them reports, so dashboards and alerts find every series.
/// </summary>
internal sealed class ServerStats
{
    private static readonly string[] s_zeroCounters =
    [
        "server.debug_assertion_failures", "server.envoy_bug_failures", "server.dynamic_unknown_fields",
        "server.static_unknown_fields", "server.wip_protos", "server.dropped_stat_flushes",
    ];

    private readonly IServerInstance _server;
    private readonly StatsStore _store;

    public ServerStats(StatsStore store, IServerInstance server)
    {
        _server = server;
        Live = store.Gauge("server.live", ImportMode.NeverImport);
        Uptime = store.Gauge("server.uptime", ImportMode.Accumulate);
        State = store.Gauge("server.state", ImportMode.NeverImport);
        Concurrency = store.Gauge("server.concurrency", ImportMode.NeverImport);
        Version = store.Gauge("server.version", ImportMode.NeverImport);
        MemoryAllocated = store.Gauge("server.memory_allocated", ImportMode.Accumulate);
        TotalConnections = store.Gauge("server.total_connections", ImportMode.Accumulate);
        DaysUntilFirstCertExpiring = store.Gauge("server.days_until_first_cert_expiring", ImportMode.NeverImport);
        MemoryHeapSize = store.Gauge("server.memory_heap_size", ImportMode.Accumulate);
        MemoryPhysicalSize = store.Gauge("server.memory_physical_size", ImportMode.Accumulate);
        ParentConnections = store.Gauge("server.parent_connections", ImportMode.Accumulate);
        SecondsUntilFirstOcspResponseExpiring = store.Gauge("server.seconds_until_first_ocsp_response_expiring", ImportMode.Accumulate);
        HotRestartEpoch = store.Gauge("server.hot_restart_epoch", ImportMode.NeverImport);
        HotRestartGeneration = store.Gauge("server.hot_restart_generation", ImportMode.Accumulate);
        StatsRecentLookups = store.Gauge("server.stats_recent_lookups", ImportMode.NeverImport);
        FipsMode = store.Gauge("server.compilation_settings.fips_mode", ImportMode.NeverImport);
        InitializationTimeMs = store.Histogram("server.initialization_time_ms", HistogramUnit.Milliseconds);
        // Counted elsewhere or never: the static bootstrap rejects unknown fields, and there are no
        // debug assertions or ENVOY_BUGs to count. Registered so the series exist at 0, as in Envoy.
        foreach (var counter in s_zeroCounters)
        {
            store.Counter(counter);
        }

        _store = store;

        Concurrency.Set(server.Options.Concurrency);
        Version.Set(VersionNumber(server.Bootstrap.StatsServerVersionOverride, VersionInfo.Revision));
        HotRestartEpoch.Set(server.Options.RestartEpoch);
        // Without hot restart every process is the first generation (Envoy's value with no parent).
        HotRestartGeneration.Set(1);
        ParentConnections.Set(0);
        SecondsUntilFirstOcspResponseExpiring.Set(0);
        FipsMode.Set(0);
        Refresh();
        store.OnRefresh(Refresh);
    }

    public Gauge Live { get; }

    public Gauge Uptime { get; }

    public Gauge State { get; }

    public Gauge Concurrency { get; }

    public Gauge Version { get; }

    public Gauge MemoryAllocated { get; }

    public Gauge TotalConnections { get; }

    public Gauge MemoryHeapSize { get; }

    public Gauge MemoryPhysicalSize { get; }

    public Gauge ParentConnections { get; }

    public Gauge SecondsUntilFirstOcspResponseExpiring { get; }

    public Gauge HotRestartEpoch { get; }

    public Gauge HotRestartGeneration { get; }

    public Gauge StatsRecentLookups { get; }

    public Gauge FipsMode { get; }

    /// <summary>From the server's creation to LIVE (Envoy: until the init manager finished).</summary>
    public Histogram InitializationTimeMs { get; }

    /// <summary>The fewest whole days any certificate in use (chain or CA, every TLS context) has left; 0 without any, as Envoy.</summary>
    public Gauge DaysUntilFirstCertExpiring { get; }

    /// <summary>Envoy's <c>server.state</c> encoding: 0 LIVE, 1 DRAINING, 2 PRE_INITIALIZING, 3 INITIALIZING.</summary>
    public static long Encode(ServerState state) => state switch
    {
        ServerState.Live => 0,
        ServerState.Draining => 1,
        ServerState.PreInitializing => 2,
        _ => 3,
    };

    public void Refresh()
    {
        var state = _server.State;
        Live.Set(state == ServerState.Live ? 1 : 0);
        State.Set(Encode(state));
        Uptime.Set((long)Math.Floor((_server.Time.GetUtcNow() - _server.StartTime).TotalSeconds));
        MemoryAllocated.Set(GC.GetTotalMemory(forceFullCollection: false));
        // The managed heap's size is what tcmalloc's reserved heap is to Envoy; the working set is
        // the physical estimate. The same numbers as /memory's heap_size and total_physical_bytes.
        MemoryHeapSize.Set(Math.Max(GC.GetGCMemoryInfo().HeapSizeBytes, 0));
        MemoryPhysicalSize.Set(Environment.WorkingSet);
        TotalConnections.Set(CountConnections(_server.ActiveListeners));
        StatsRecentLookups.Set(_store.Lookups.Total);
        DaysUntilFirstCertExpiring.Set(DaysUntilFirstCertExpires());
    }

    /// <summary>
    /// Envoy's <c>server.version</c>: <c>stats_server_version_override</c> when above 0, else the first six
    /// hex digits of the source revision as a number (0 when the build recorded no revision).
    /// </summary>
    public static long VersionNumber(ulong? versionOverride, string revision)
    {
        if (versionOverride is > 0)
        {
            return (long)Math.Min(versionOverride.Value, long.MaxValue);
        }

        return revision.Length >= 6 && long.TryParse(revision.AsSpan(0, 6), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var number)
            ? number
            : 0;
    }

    /// <summary>Records the initialization time once, when the server turns LIVE.</summary>
    public void OnLive() =>
        InitializationTimeMs.Record((long)Math.Max((_server.Time.GetUtcNow() - _server.StartTime).TotalMilliseconds, 0));

    /// <summary>Envoy's listener manager <c>numConnections()</c>: the connections open on every listener.</summary>
    private static long CountConnections(IReadOnlyList<Network.Listener> listeners)
    {
        long total = 0;
        for (var i = 0; i < listeners.Count; i++)
        {
            total += listeners[i].ActiveConnections;
        }

        return total;
    }

    private long DaysUntilFirstCertExpires()
    {
        if (_server.Secrets is not { } secrets)
        {
            return 0;
        }

        var now = _server.Time.GetUtcNow();
        ulong? fewest = null;
        foreach (var context in secrets.CertificatesInUse())
        {
            foreach (var item in context)
            {
                if (item.Certificate is { } certificate)
                {
                    fewest = Min(fewest, Admin.CertsHandler.DaysUntilExpiration(certificate.Leaf, now));
                }

                if (item.Validator is { } validator)
                {
                    foreach (var ca in validator.TrustedCa)
                    {
                        fewest = Min(fewest, Admin.CertsHandler.DaysUntilExpiration(ca, now));
                    }
                }
            }
        }

        return (long)Math.Min(fewest ?? 0, long.MaxValue);
    }

    private static ulong Min(ulong? a, ulong b) => a is { } v && v < b ? v : b;
}
