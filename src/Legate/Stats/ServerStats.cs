using Legate.Server;

namespace Legate.Stats;

/// <summary>
/// Envoy's <c>server.*</c> stats. The cheap-to-read ones (uptime, state, memory) are refreshed when the
/// admin reads the store rather than by a timer, so an idle server does no work for them.
/// </summary>
internal sealed class ServerStats
{
    private readonly IServerInstance _server;

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

        Concurrency.Set(server.Options.Concurrency);
        // Envoy's server.version is its source revision as a number; Legate has none to report yet.
        Version.Set(0);
        // Nothing counts connections server-wide yet; the gauge exists so dashboards find it.
        TotalConnections.Set(0);
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
        DaysUntilFirstCertExpiring.Set(DaysUntilFirstCertExpires());
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
