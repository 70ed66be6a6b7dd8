using System.Collections.Immutable;
using System.Runtime.CompilerServices;

namespace Legate.Upstream;

/// <summary>
/// What every load balancing policy shares (Envoy's LoadBalancerBase and ZoneAwareLoadBalancerBase):
/// priority load with overprovisioning and panic mode, locality-weighted choice, and the
/// host-selection retries of the request's context. A policy only says how to choose within one
/// host list (<see cref="CreatePicker"/>); hashing policies also override <see cref="ChooseOnce"/>.
/// </summary>
/// <remarks>
/// All state derives from one <see cref="PrioritySnapshot"/> and is rebuilt, once, by the first pick
/// that sees a new snapshot; a pick is then a few reads, one random number and the policy's own
/// pick. What was built for a <see cref="HostSet"/> that an update did not touch is reused, so an
/// update to one priority does not rebuild the others' schedulers or hash tables. Pickers are
/// created on first use: the all-hosts list of a priority costs nothing until it panics.
/// </remarks>
internal abstract class LoadBalancerBase : ILoadBalancer
{
    private readonly PrioritySet _prioritySet;
    private readonly Lock _rebuildLock = new();
    private volatile LbState _state;
    private Legate.Runtime.RuntimeLoader? _runtime;

    protected LoadBalancerBase(PrioritySet prioritySet, LoadBalancerSettings settings, ClusterStats? stats, LbRandom? random, TimeProvider? time = null)
    {
        _prioritySet = prioritySet;
        Settings = settings;
        Stats = stats;
        Random = random ?? LbRandom.Shared;
        SlowStart = settings.SlowStart is { } slowStart ? new SlowStart(slowStart, time ?? TimeProvider.System) : null;
        _state = Build(PrioritySnapshot.Empty, null);
    }

    /// <summary>The cluster's slow start, when configured (round robin and least request apply it).</summary>
    protected SlowStart? SlowStart { get; }

    /// <summary>
    /// <paramref name="steady"/>, or while some of <paramref name="hosts"/> are in their slow start
    /// window a <see cref="SlowStartPicker"/> that falls back to it when the window ends.
    /// </summary>
    protected HostPicker WithSlowStart(ImmutableArray<Host> hosts, HostPicker steady, Func<Host, double> baseWeight) =>
        SlowStart is { } slowStart && slowStart.WindowEnd(hosts) != 0 ? new SlowStartPicker(hosts, steady, slowStart, baseWeight) : steady;

    public LoadBalancerSettings Settings { get; }

    protected ClusterStats? Stats { get; }

    protected LbRandom Random { get; }

    /// <summary>
    /// The local cluster for zone-aware routing (<c>cluster_manager.local_cluster_name</c>), set by
    /// the factory before the first pick; null: no zone-aware routing.
    /// </summary>
    internal LocalClusterSource? LocalCluster { get; set; }

    /// <summary>The runtime (<c>upstream.zone_routing.*</c> keys, slow start's aggression key); null reads the config values only.</summary>
    internal Legate.Runtime.RuntimeLoader? Runtime
    {
        get => _runtime;
        set
        {
            _runtime = value;
            if (SlowStart is { } slowStart)
            {
                slowStart.Runtime = value;
            }
        }
    }

    /// <summary>Whether the policy does zone-aware routing (Envoy's ZoneAwareLoadBalancerBase: round robin, least request, random).</summary>
    protected virtual bool SupportsZoneRouting => true;

    /// <summary>The zone routing of the current snapshot, when a local cluster is set (tests).</summary>
    internal ZoneRouting? CurrentZoneRouting => CurrentState().Zone;

    /// <summary>The priority load of the current snapshot (tests, admin).</summary>
    internal PriorityLoad CurrentLoad => CurrentState().Load;

    public Host? ChooseHost(ILoadBalancerContext? context)
    {
        var state = CurrentState();
        if (context is not null && context.DeterminePriorityLoad(state.Snapshot, state.Load) is var load && !ReferenceEquals(load, state.Load))
        {
            // A retry priority moved the load for this pick only.
            state = new LbState(state.Snapshot, load, state.Priorities) { LocalSnapshot = state.LocalSnapshot, Zone = state.Zone };
        }

        var host = ChooseOnce(state, context, 0);
        if (context is null || host is null)
        {
            return host;
        }

        // Envoy asks the context up to host_selection_retry_max_attempts times, then settles for
        // the last pick.
        for (var attempt = 1; attempt <= context.HostSelectionRetryCount && host is not null && context.ShouldSelectAnotherHost(host); attempt++)
        {
            host = ChooseOnce(state, context, attempt);
        }

        return host;
    }

    /// <summary>The policy's way of choosing among <paramref name="hosts"/> (never empty).</summary>
    protected abstract HostPicker CreatePicker(ImmutableArray<Host> hosts);

    /// <summary>
    /// As <see cref="CreatePicker(ImmutableArray{Host})"/>, knowing the priority's <paramref name="set"/>
    /// the list comes from (its locality weights, which a subset may have scaled); null for a
    /// locality's list.
    /// </summary>
    protected virtual HostPicker CreatePicker(ImmutableArray<Host> hosts, HostSet? set) => CreatePicker(hosts);

    /// <summary>
    /// One pick: a priority by load, then (unless it panics) a locality by weight when configured,
    /// then the policy's pick among that list.
    /// </summary>
    /// <param name="attempt">0 for the first pick, then the host-selection retry number (hashing policies move along their table).</param>
    protected virtual Host? ChooseOnce(LbState state, ILoadBalancerContext? context, int attempt)
    {
        if (state.Priorities.IsEmpty)
        {
            return null;
        }

        var (index, degraded) = state.Load.Single ?? state.Load.Choose(Random.Next());
        var priority = state.Priorities[index];
        HostSource source;
        if (state.Load.Panic[index])
        {
            Stats?.LbHealthyPanic.Inc();
            if (Settings.FailTrafficOnPanic)
            {
                return null;
            }

            source = priority.All;
        }
        else if (Settings.LocalityWeighted && priority.ChooseLocality(degraded, Random.Next()) is { } locality)
        {
            source = locality;
        }
        else if (state.Zone is { RoutingMode: not ZoneRouting.Mode.None } zone && priority.Set.Priority == 0 && ZoneRoutingEnabled())
        {
            if (zone.LocalInPanic)
            {
                // The local proxies themselves are mostly unhealthy: their zone shares mean nothing.
                Stats?.LbLocalClusterNotOk.Inc();
                if (Settings.FailTrafficOnPanic)
                {
                    return null;
                }

                source = degraded ? priority.Degraded : priority.Healthy;
            }
            else
            {
                var zoneIndex = zone.ChooseLocality(Random, Stats);
                source = degraded ? zone.Degraded[zoneIndex] : zone.Healthy[zoneIndex];
            }
        }
        else
        {
            source = degraded ? priority.Degraded : priority.Healthy;
        }

        var picker = source.Picker(this);
        return picker?.Pick(picker.UsesRandom ? Random.Next() : 0, context);
    }

    /// <summary>Envoy's featureEnabled("upstream.zone_routing.enabled", routing_enabled) for one pick.</summary>
    private bool ZoneRoutingEnabled()
    {
        if (Runtime is { } runtime)
        {
            return runtime.Snapshot.FeatureEnabled("upstream.zone_routing.enabled", (uint)Settings.ZoneRoutingEnabled, 100, Random.Next());
        }

        return Settings.ZoneRoutingEnabled >= 100 || (int)(Random.Next() % 100) < Settings.ZoneRoutingEnabled;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    protected LbState CurrentState()
    {
        var state = _state;
        return ReferenceEquals(state.Snapshot, _prioritySet.Current) && ReferenceEquals(state.LocalSnapshot, LocalCluster?.PrioritySet?.Current) ? state : Rebuild();
    }

    private LbState Rebuild()
    {
        lock (_rebuildLock)
        {
            // Another thread may have rebuilt while this one waited.
            var snapshot = _prioritySet.Current;
            var state = _state;
            if (!ReferenceEquals(state.Snapshot, snapshot) || !ReferenceEquals(state.LocalSnapshot, LocalCluster?.PrioritySet?.Current))
            {
                state = Build(snapshot, state);
                _state = state;
            }

            return state;
        }
    }

    private LbState Build(PrioritySnapshot snapshot, LbState? previous)
    {
        // Hosts seen healthy for the first time start their slow start window now.
        SlowStart?.Stamp(snapshot);
        var priorities = ImmutableArray.CreateBuilder<PriorityState>(snapshot.HostSets.Length);
        foreach (var set in snapshot.HostSets)
        {
            priorities.Add(previous?.Find(set) ?? new PriorityState(set));
        }

        var local = LocalCluster;
        var localSnapshot = local?.PrioritySet?.Current;
        ZoneRouting? zone = null;
        if (local is not null && localSnapshot is not null && SupportsZoneRouting)
        {
            // Zone-aware routing is for priority 0 only, as Envoy's (the local cluster's priority 0 too).
            var minClusterSize = Runtime?.Snapshot.GetInteger("upstream.zone_routing.min_cluster_size", Settings.ZoneMinClusterSize) ?? Settings.ZoneMinClusterSize;
            zone = ZoneRouting.Compute(snapshot.Find(0), localSnapshot.Find(0), local.Locality, minClusterSize, Settings.PanicThreshold, Stats);
        }

        return new LbState(snapshot, PriorityLoad.Compute(snapshot, Settings.PanicThreshold), priorities.MoveToImmutable()) { LocalSnapshot = localSnapshot, Zone = zone };
    }

    /// <summary>What picks use for one snapshot: built once per update, never changed.</summary>
    protected internal sealed class LbState(PrioritySnapshot snapshot, PriorityLoad load, ImmutableArray<PriorityState> priorities)
    {
        public PrioritySnapshot Snapshot { get; } = snapshot;

        /// <summary>The local cluster's snapshot this state was built with (zone-aware routing), or null.</summary>
        public PrioritySnapshot? LocalSnapshot { get; init; }

        /// <summary>Zone-aware routing for priority 0, when a local cluster is set.</summary>
        public ZoneRouting? Zone { get; init; }

        public PriorityLoad Load { get; } = load;

        /// <summary>Parallel to <see cref="PrioritySnapshot.HostSets"/>.</summary>
        public ImmutableArray<PriorityState> Priorities { get; } = priorities;

        public PriorityState? Find(HostSet set)
        {
            foreach (var priority in Priorities)
            {
                if (ReferenceEquals(priority.Set, set))
                {
                    return priority;
                }
            }

            return null;
        }
    }

    /// <summary>The host lists of one priority and their pickers; lives as long as its <see cref="HostSet"/>.</summary>
    protected internal sealed class PriorityState
    {
        private readonly LocalityChooser? _healthyLocalities;
        private readonly LocalityChooser? _degradedLocalities;

        public PriorityState(HostSet set)
        {
            Set = set;
            Healthy = new HostSource(set.HealthyHosts, set);
            Degraded = new HostSource(set.DegradedHosts, set);
            All = new HostSource(set.Hosts, set);
            _healthyLocalities = LocalityChooser.Create(set, set.HealthyHostsPerLocality);
            _degradedLocalities = LocalityChooser.Create(set, set.DegradedHostsPerLocality);
        }

        public HostSet Set { get; }

        public HostSource Healthy { get; }

        public HostSource Degraded { get; }

        public HostSource All { get; }

        /// <summary>A locality's healthy (or degraded) hosts, by effective locality weight; null when no locality has weight.</summary>
        public HostSource? ChooseLocality(bool degraded, ulong random) =>
            (degraded ? _degradedLocalities : _healthyLocalities)?.Choose(random);
    }

    /// <summary>One host list and the policy's picker for it, created on first use.</summary>
    protected internal sealed class HostSource(ImmutableArray<Host> hosts, HostSet? set = null)
    {
        private HostPicker? _picker;

        public ImmutableArray<Host> Hosts { get; } = hosts;

        public HostPicker? Picker(LoadBalancerBase owner)
        {
            if (_picker is { } picker)
            {
                return picker;
            }

            if (Hosts.IsEmpty)
            {
                return null;
            }

            var created = owner.CreatePicker(Hosts, set);
            return Interlocked.CompareExchange(ref _picker, created, null) ?? created;
        }
    }

    /// <summary>
    /// Envoy's locality-weighted choice: a locality's effective weight is its configured weight
    /// times its share of eligible hosts scaled by the overprovisioning factor (at most 1), so a
    /// locality losing hosts sheds load to the others before it is empty. Drawn by weight from a
    /// cumulative table (Envoy interleaves with EDF; the shares are the same).
    /// </summary>
    private sealed class LocalityChooser
    {
        private readonly double[] _cumulative;
        private readonly HostSource[] _sources;

        private LocalityChooser(double[] cumulative, HostSource[] sources)
        {
            _cumulative = cumulative;
            _sources = sources;
        }

        public static LocalityChooser? Create(HostSet set, ImmutableArray<ImmutableArray<Host>> eligiblePerLocality)
        {
            var cumulative = new List<double>();
            var sources = new List<HostSource>();
            var sum = 0.0;
            for (var i = 0; i < set.Localities.Length; i++)
            {
                var all = set.HostsPerLocality[i].Length;
                var eligible = eligiblePerLocality[i].Length;
                var weight = set.LocalityWeights[i];
                if (all == 0 || eligible == 0 || weight == 0)
                {
                    continue;
                }

                var availability = Math.Min(1.0, set.OverprovisioningFactor / 100.0 * eligible / all);
                sum += weight * availability;
                cumulative.Add(sum);
                sources.Add(new HostSource(eligiblePerLocality[i]));
            }

            return sources.Count == 0 ? null : new LocalityChooser([.. cumulative], [.. sources]);
        }

        public HostSource Choose(ulong random)
        {
            if (_sources.Length == 1)
            {
                return _sources[0];
            }

            var point = (random >> 11) * (1.0 / (1UL << 53)) * _cumulative[^1];
            var index = Array.BinarySearch(_cumulative, point);
            index = index < 0 ? ~index : index + 1;
            return _sources[Math.Min(index, _sources.Length - 1)];
        }
    }
}
