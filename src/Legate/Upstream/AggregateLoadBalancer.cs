using System.Collections.Immutable;
using System.Net;
using Legate.Http.Http1;

namespace Legate.Upstream;

/// <summary>
/// The load balancer of an aggregate cluster (Envoy's AggregateClusterLoadBalancer): the priority
/// sets of the listed clusters are linearized, the first cluster's priorities first, and Envoy's
/// priority load (overprovisioning, spill-over, panic with the aggregate's own
/// healthy_panic_threshold) chooses a cluster and one of its priorities; that cluster's own load
/// balancer then picks the host within that priority. So traffic fails over to the next cluster as
/// the first one loses healthy hosts, and comes back as they recover.
/// </summary>
/// <remarks>
/// The linearized view is rebuilt by the first pick that sees a listed cluster replaced, added,
/// removed or holding a new snapshot (a few reference comparisons per pick), so CDS updates,
/// health changes and EDS updates of the listed clusters need no subscriptions. A cluster that
/// does not exist (yet) is skipped, as Envoy skips it. A pick allocates the small context that
/// tells the chosen cluster which priority to use.
/// </remarks>
internal sealed class AggregateLoadBalancer : ILoadBalancer
{
    private readonly AggregateCluster _owner;
    private readonly int _panicThreshold;
    private readonly LbRandom _random;
    private readonly Lock _rebuildLock = new();
    private volatile State _state;

    public AggregateLoadBalancer(AggregateCluster owner, int panicThreshold, LbRandom? random)
    {
        _owner = owner;
        _panicThreshold = panicThreshold;
        _random = random ?? LbRandom.Shared;
        _state = State.Empty(owner.ClusterNames.Length);
    }

    /// <summary>The aggregate's priority load over the linearized priorities (tests, admin).</summary>
    internal PriorityLoad CurrentLoad => CurrentState().Load;

    public Host? ChooseHost(ILoadBalancerContext? context) => ChooseHost(context, out _);

    /// <summary>A host and the listed cluster it belongs to (its pools, circuit breakers and TLS apply), or null.</summary>
    public Host? ChooseHost(ILoadBalancerContext? context, out Cluster? target)
    {
        var state = CurrentState();
        target = null;
        if (state.Snapshot.HostSets.IsEmpty)
        {
            return null;
        }

        var load = context?.DeterminePriorityLoad(state.Snapshot, state.Load) ?? state.Load;
        var (index, degraded) = load.Single ?? load.Choose(_random.Next());
        var chosen = state.Owners[index];
        target = chosen;
        return chosen.LoadBalancer.ChooseHost(new DelegatedContext(context, state.Snapshot.HostSets[index], degraded));
    }

    private State CurrentState()
    {
        var state = _state;
        var manager = _owner.Manager;
        if (manager is null)
        {
            return state;
        }

        var names = _owner.ClusterNames;
        for (var i = 0; i < names.Length; i++)
        {
            var cluster = manager.Find(names[i]);
            if (!ReferenceEquals(cluster, state.Clusters[i]) || !ReferenceEquals(cluster?.PrioritySet.Current, state.Snapshots[i]))
            {
                return Rebuild(manager);
            }
        }

        return state;
    }

    private State Rebuild(ClusterManager manager)
    {
        lock (_rebuildLock)
        {
            var names = _owner.ClusterNames;
            var clusters = new Cluster?[names.Length];
            var snapshots = new PrioritySnapshot?[names.Length];
            var sets = ImmutableArray.CreateBuilder<HostSet>();
            var owners = ImmutableArray.CreateBuilder<Cluster>();
            for (var i = 0; i < names.Length; i++)
            {
                var cluster = manager.Find(names[i]);
                clusters[i] = cluster;
                if (cluster is null || ReferenceEquals(cluster, _owner))
                {
                    continue;
                }

                var snapshot = cluster.PrioritySet.Current;
                snapshots[i] = snapshot;
                foreach (var set in snapshot.HostSets)
                {
                    // Priorities without hosts are not in a snapshot: Envoy skips them too.
                    sets.Add(set);
                    owners.Add(cluster);
                }
            }

            var linearized = PrioritySnapshot.Linearized(sets.ToImmutable(), _state.Snapshot.Version + 1);
            var state = new State(clusters, snapshots, linearized, PriorityLoad.Compute(linearized, _panicThreshold), owners.ToImmutable());
            _state = state;
            return state;
        }
    }

    private sealed class State(Cluster?[] clusters, PrioritySnapshot?[] snapshots, PrioritySnapshot snapshot, PriorityLoad load, ImmutableArray<Cluster> owners)
    {
        /// <summary>The listed clusters as last seen (null: not found), in list order.</summary>
        public Cluster?[] Clusters { get; } = clusters;

        /// <summary>Their snapshots as last seen.</summary>
        public PrioritySnapshot?[] Snapshots { get; } = snapshots;

        /// <summary>The linearized priorities.</summary>
        public PrioritySnapshot Snapshot { get; } = snapshot;

        public PriorityLoad Load { get; } = load;

        /// <summary>The cluster of each linearized priority.</summary>
        public ImmutableArray<Cluster> Owners { get; } = owners;

        public static State Empty(int count) =>
            new(new Cluster?[count], new PrioritySnapshot?[count], PrioritySnapshot.Empty, PriorityLoad.Compute(PrioritySnapshot.Empty, 0), []);
    }

    /// <summary>
    /// What the chosen cluster's load balancer sees: the caller's context (hash, host predicates,
    /// original destination), with all the load on the priority the aggregate chose.
    /// </summary>
    private sealed class DelegatedContext(ILoadBalancerContext? inner, HostSet chosen, bool degraded) : ILoadBalancerContext
    {
        public ulong? HashKey => inner?.HashKey;

        public int HostSelectionRetryCount => inner?.HostSelectionRetryCount ?? 0;

        public bool ShouldSelectAnotherHost(Host host) => inner?.ShouldSelectAnotherHost(host) ?? false;

        public IPEndPoint? DownstreamOriginalDestination => inner?.DownstreamOriginalDestination;

        public HttpHeaderMap? DownstreamHeaders => inner?.DownstreamHeaders;

        public MetadataMatchCriteria? MetadataMatch => inner?.MetadataMatch;

        public Envoy.Config.Core.V3.Metadata? DownstreamDynamicMetadata => inner?.DownstreamDynamicMetadata;

        public Envoy.Config.Core.V3.Metadata? DownstreamConnectionDynamicMetadata => inner?.DownstreamConnectionDynamicMetadata;

        public PriorityLoad DeterminePriorityLoad(PrioritySnapshot snapshot, PriorityLoad original)
        {
            var sets = snapshot.HostSets;
            var index = -1;
            for (var i = 0; i < sets.Length; i++)
            {
                if (ReferenceEquals(sets[i], chosen))
                {
                    index = i;
                    break;
                }
            }

            for (var i = 0; index < 0 && i < sets.Length; i++)
            {
                // The cluster moved on to a new snapshot since the aggregate looked: the same priority.
                if (sets[i].Priority == chosen.Priority)
                {
                    index = i;
                }
            }

            return index < 0 ? original : PriorityLoad.Only(original, index, degraded);
        }
    }
}
