using Legate.Stats;

namespace Legate.Extensions.Filters.Http.Fault;

/// <summary>Envoy's <c>http.&lt;stat_prefix&gt;.fault.*</c> stats of one fault filter config.</summary>
internal sealed class FaultFilterStats
{
    private readonly StatsStore _store;
    private readonly string _prefix;

    public FaultFilterStats(StatsStore store, string statPrefix)
    {
        _store = store;
        _prefix = "http." + statPrefix + ".fault.";
        DelaysInjected = store.Counter(_prefix + "delays_injected");
        AbortsInjected = store.Counter(_prefix + "aborts_injected");
        FaultsOverflow = store.Counter(_prefix + "faults_overflow");
        ResponseRlInjected = store.Counter(_prefix + "response_rl_injected");
        ActiveFaults = store.Gauge(_prefix + "active_faults", ImportMode.Accumulate);
    }

    public Counter DelaysInjected { get; }

    public Counter AbortsInjected { get; }

    public Counter FaultsOverflow { get; }

    public Counter ResponseRlInjected { get; }

    public Gauge ActiveFaults { get; }

    /// <summary><c>http.&lt;stat_prefix&gt;.fault.&lt;downstream_cluster&gt;.delays_injected</c>.</summary>
    public void IncDownstreamDelays(string downstreamCluster) => _store.Counter(_prefix + downstreamCluster + ".delays_injected").Inc();

    /// <summary><c>http.&lt;stat_prefix&gt;.fault.&lt;downstream_cluster&gt;.aborts_injected</c>.</summary>
    public void IncDownstreamAborts(string downstreamCluster) => _store.Counter(_prefix + downstreamCluster + ".aborts_injected").Inc();
}
