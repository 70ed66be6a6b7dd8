using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// Envoy's ROUND_ROBIN: equal weights rotate through the hosts; unequal weights use
/// earliest-deadline-first scheduling so heavy hosts are interleaved with light ones instead of
/// taking long runs. A pick reads the current state with one reference read and bumps one atomic
/// counter; the state is rebuilt, once, by the first pick after the host set changes.
/// </summary>
internal sealed class RoundRobinLoadBalancer : ILoadBalancer
{
    /// <summary>
    /// Longest EDF period precomputed as a table (64 KiB of references). Weights are divided by
    /// their greatest common divisor first, so this only matters for unusual weights like 997 and
    /// 1000; those fall back to a locked scheduler.
    /// </summary>
    internal const int DefaultMaxTableLength = 8192;

    private readonly PrioritySet _prioritySet;
    private readonly ulong _seed;
    private readonly int _maxTableLength;
    private readonly Lock _rebuildLock = new();
    private volatile State _state;

    /// <param name="prioritySet">The hosts to choose from; followed as it is updated.</param>
    /// <param name="seed">Where the rotation starts (Envoy starts at a random place so that a fleet of proxies does not hit the same host first); tests pass 0.</param>
    /// <param name="maxTableLength">See <see cref="DefaultMaxTableLength"/>.</param>
    public RoundRobinLoadBalancer(PrioritySet prioritySet, ulong seed, int maxTableLength = DefaultMaxTableLength)
    {
        _prioritySet = prioritySet;
        _seed = seed;
        _maxTableLength = maxTableLength;
        _state = Build(PrioritySnapshot.Empty);
    }

    public Host? ChooseHost(LoadBalancerContext? context)
    {
        var state = _state;
        if (!ReferenceEquals(state.Snapshot, _prioritySet.Current))
        {
            state = Rebuild();
        }

        var scheduler = state.Scheduler;
        if (scheduler is null)
        {
            return null;
        }

        var host = scheduler.Pick();
        if (context is null)
        {
            return host;
        }

        // Envoy asks the context up to host_selection_retry_max_attempts times, then settles for
        // the last pick.
        for (var attempt = 0; attempt < context.HostSelectionRetryCount && context.ShouldSelectAnotherHost(host); attempt++)
        {
            host = scheduler.Pick();
        }

        return host;
    }

    private State Rebuild()
    {
        lock (_rebuildLock)
        {
            // Another thread may have rebuilt while this one waited.
            var snapshot = _prioritySet.Current;
            var state = _state;
            if (!ReferenceEquals(state.Snapshot, snapshot))
            {
                state = Build(snapshot);
                _state = state;
            }

            return state;
        }
    }

    /// <summary>
    /// Chooses the hosts that take traffic: the healthy hosts of the highest priority that has any;
    /// failing that, the degraded hosts of the highest priority that has any (Envoy sends traffic
    /// to degraded hosts only when no healthy capacity is left); failing that, nobody.
    /// </summary>
    /// <remarks>
    /// The seam for Envoy's full priority handling: with overprovisioning (1.4) and the panic
    /// threshold, load is spread across priorities by their healthy share and a panicking
    /// priority uses all of its hosts. Then this state keeps one scheduler per (priority,
    /// healthy|degraded) plus the priority load, and a pick first draws the priority.
    /// </remarks>
    private State Build(PrioritySnapshot snapshot)
    {
        var hosts = FirstNonEmpty(snapshot, static set => set.HealthyHosts);
        if (hosts.IsEmpty)
        {
            hosts = FirstNonEmpty(snapshot, static set => set.DegradedHosts);
        }

        if (hosts.IsEmpty)
        {
            return new State(snapshot, null);
        }

        HostScheduler scheduler = EdfSchedule.BuildTable(hosts, _maxTableLength) is { } table
            ? new TableScheduler(table, _seed)
            : new LockedEdfScheduler(hosts, _seed);
        return new State(snapshot, scheduler);
    }

    private static ImmutableArray<Host> FirstNonEmpty(PrioritySnapshot snapshot, Func<HostSet, ImmutableArray<Host>> select)
    {
        foreach (var set in snapshot.HostSets)
        {
            var hosts = select(set);
            if (!hosts.IsEmpty)
            {
                return hosts;
            }
        }

        return [];
    }

    /// <summary>What picks use for one snapshot: built once per update, never changed.</summary>
    private sealed class State(PrioritySnapshot snapshot, HostScheduler? scheduler)
    {
        public PrioritySnapshot Snapshot { get; } = snapshot;

        public HostScheduler? Scheduler { get; } = scheduler;
    }
}
