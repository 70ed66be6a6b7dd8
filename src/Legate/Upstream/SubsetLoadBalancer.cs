using System.Collections.Immutable;
using Google.Protobuf.WellKnownTypes;
using Legate.Stats;
using FallbackPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbSubsetConfig.Types.LbSubsetFallbackPolicy;

namespace Legate.Upstream;

/// <summary>
/// Envoy's subset load balancer (<c>lb_subset_config</c>), first cut: each selector's keys group the
/// hosts whose <c>envoy.lb</c> metadata has all of them into subsets by their values; a request whose
/// route <c>metadata_match</c> names exactly a selector's keys is balanced (by the cluster's policy,
/// with priorities and panic) over that subset. Without criteria, or when no subset has hosts for
/// them, the <c>fallback_policy</c> applies: NO_FALLBACK (no host: 503 UH), ANY_ENDPOINT (the whole
/// cluster), DEFAULT_SUBSET (the hosts matching <c>default_subset</c>; an empty one = every host).
/// </summary>
/// <remarks>
/// Subsets are rebuilt (under a lock, once) by the first pick that sees a new cluster snapshot: each
/// keeps its own <see cref="PrioritySet"/> and balancer, so a host set change updates them in
/// place and their rotation state carries on.
/// </remarks>
internal sealed class SubsetLoadBalancer : ILoadBalancer
{
    private readonly PrioritySet _cluster;
    private readonly LoadBalancerSettings _settings;
    private readonly ClusterStats? _stats;
    private readonly LbRandom? _random;
    private readonly TimeProvider? _time;
    private readonly ImmutableArray<ImmutableArray<string>> _selectors;
    private readonly FallbackPolicy _fallback;
    private readonly ImmutableArray<(string Name, Value Value)> _defaultSubset;
    private readonly ILoadBalancer _any;
    private readonly Subset _default;
    private readonly Lock _rebuildLock = new();
    private readonly Dictionary<string, Subset> _subsets = new(StringComparer.Ordinal);
    private volatile State _state = new(PrioritySnapshot.Empty, new Dictionary<string, Subset>(StringComparer.Ordinal));

    public SubsetLoadBalancer(PrioritySet cluster, LoadBalancerSettings settings, ClusterStats? stats, LbRandom? random, TimeProvider? time,
        ImmutableArray<ImmutableArray<string>> selectors, FallbackPolicy fallback, ImmutableArray<(string Name, Value Value)> defaultSubset)
    {
        _cluster = cluster;
        _settings = settings;
        _stats = stats;
        _random = random;
        _time = time;
        _selectors = selectors;
        _fallback = fallback;
        _defaultSubset = defaultSubset;
        _any = LoadBalancerFactory.Create(cluster, settings, stats, random, time);
        _default = new Subset(this);
    }

    public Host? ChooseHost(ILoadBalancerContext? context)
    {
        var state = CurrentState();
        if (context?.MetadataMatch is { } criteria && state.Subsets.TryGetValue(criteria.SubsetKey, out var subset))
        {
            _stats?.LbSubsetsSelected.Inc();
            return subset.Balancer.ChooseHost(context);
        }

        _stats?.LbSubsetsFallback.Inc();
        return _fallback switch
        {
            FallbackPolicy.AnyEndpoint => _any.ChooseHost(context),
            FallbackPolicy.DefaultSubset => _defaultSubset.IsEmpty ? _any.ChooseHost(context) : _default.Balancer.ChooseHost(context),
            _ => null,
        };
    }

    private State CurrentState()
    {
        var state = _state;
        return ReferenceEquals(state.Snapshot, _cluster.Current) ? state : Rebuild();
    }

    private State Rebuild()
    {
        lock (_rebuildLock)
        {
            var snapshot = _cluster.Current;
            if (ReferenceEquals(_state.Snapshot, snapshot))
            {
                return _state;
            }

            var members = new Dictionary<string, List<Host>>(StringComparer.Ordinal);
            var defaults = new List<Host>();
            foreach (var host in snapshot.Hosts)
            {
                var lb = host.Metadata is { } metadata && metadata.FilterMetadata.TryGetValue(MetadataMatchCriteria.LbFilter, out var s) ? s : null;
                foreach (var keys in _selectors)
                {
                    if (KeyOf(lb, keys) is { } key)
                    {
                        if (!members.TryGetValue(key, out var list))
                        {
                            list = [];
                            members.Add(key, list);
                        }

                        list.Add(host);
                    }
                }

                if (!_defaultSubset.IsEmpty && Matches(lb, _defaultSubset))
                {
                    defaults.Add(host);
                }
            }

            foreach (var (key, hosts) in members)
            {
                if (!_subsets.TryGetValue(key, out var subset))
                {
                    subset = new Subset(this);
                    _subsets.Add(key, subset);
                    _stats?.LbSubsetsCreated.Inc();
                }

                subset.Update(hosts, snapshot);
            }

            foreach (var key in _subsets.Keys.Where(k => !members.ContainsKey(k)).ToList())
            {
                _subsets.Remove(key);
                _stats?.LbSubsetsRemoved.Inc();
            }

            _default.Update(defaults, snapshot);
            _stats?.LbSubsetsActive.Set(_subsets.Count);
            var state = new State(snapshot, new Dictionary<string, Subset>(_subsets, StringComparer.Ordinal));
            _state = state;
            return state;
        }
    }

    /// <summary>The subset key of a host for one selector, or null when it lacks one of the keys.</summary>
    private static string? KeyOf(Struct? lb, ImmutableArray<string> keys)
    {
        if (lb is null)
        {
            return null;
        }

        var pairs = new (string, Value)[keys.Length];
        for (var i = 0; i < keys.Length; i++)
        {
            if (!lb.Fields.TryGetValue(keys[i], out var value))
            {
                return null;
            }

            pairs[i] = (keys[i], value);
        }

        return MetadataMatchCriteria.KeyOf(pairs);
    }

    private static bool Matches(Struct? lb, ImmutableArray<(string Name, Value Value)> criteria)
    {
        foreach (var (name, value) in criteria)
        {
            if (lb is null || !lb.Fields.TryGetValue(name, out var actual) || !actual.Equals(value))
            {
                return false;
            }
        }

        return true;
    }

    private sealed class State(PrioritySnapshot snapshot, Dictionary<string, Subset> subsets)
    {
        public PrioritySnapshot Snapshot { get; } = snapshot;

        public Dictionary<string, Subset> Subsets { get; } = subsets;
    }

    /// <summary>One subset: its own priority set (the cluster's Host objects) and the policy's balancer over it.</summary>
    private sealed class Subset
    {
        private readonly PrioritySet _set = new();

        public Subset(SubsetLoadBalancer owner)
        {
            Balancer = LoadBalancerFactory.Create(_set, owner._settings, owner._stats, owner._random, owner._time);
        }

        public ILoadBalancer Balancer { get; }

        public void Update(List<Host> hosts, PrioritySnapshot cluster)
        {
            _set.Update(hosts, cluster.OverprovisioningFactor, cluster.WeightedPriorityHealth);
            // Health changes of the same hosts do not change membership: republish their health too.
            _set.RefreshHealth();
        }
    }
}
