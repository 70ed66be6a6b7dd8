using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// Envoy's ROUND_ROBIN: equal weights rotate through the hosts; unequal weights use
/// earliest-deadline-first scheduling so heavy hosts are interleaved with light ones instead of
/// taking long runs. Each host list (a priority's healthy, degraded or all hosts, or a locality's)
/// has its own rotation, as in Envoy; a pick bumps one atomic counter.
/// </summary>
internal sealed class RoundRobinLoadBalancer : LoadBalancerBase
{
    /// <summary>
    /// Longest EDF period precomputed as a table (64 KiB of references). Weights are divided by
    /// their greatest common divisor first, so this only matters for unusual weights like 997 and
    /// 1000; those fall back to a locked scheduler.
    /// </summary>
    internal const int DefaultMaxTableLength = 8192;

    private readonly int _maxTableLength;

    /// <param name="prioritySet">The hosts to choose from; followed as it is updated.</param>
    /// <param name="seed">Where the rotation starts (Envoy starts at a random place so that a fleet of proxies does not hit the same host first); tests pass 0.</param>
    /// <param name="maxTableLength">See <see cref="DefaultMaxTableLength"/>.</param>
    public RoundRobinLoadBalancer(PrioritySet prioritySet, ulong seed, int maxTableLength = DefaultMaxTableLength)
        : this(prioritySet, LoadBalancerSettings.Default with { Seed = seed }, null, null, maxTableLength)
    {
    }

    public RoundRobinLoadBalancer(PrioritySet prioritySet, LoadBalancerSettings settings, ClusterStats? stats, LbRandom? random, int maxTableLength = DefaultMaxTableLength, TimeProvider? time = null)
        : base(prioritySet, settings, stats, random, time)
    {
        _maxTableLength = maxTableLength;
    }

    protected override HostPicker CreatePicker(ImmutableArray<Host> hosts)
    {
        HostPicker steady = EdfSchedule.BuildTable(hosts, _maxTableLength) is { } table
            ? new TableScheduler(table, Settings.Seed)
            : new LockedEdfScheduler(hosts, Settings.Seed);
        return WithSlowStart(hosts, steady, static host => host.Weight);
    }
}
