using System.Collections.Immutable;
using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using FallbackPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbSubsetConfig.Types.LbSubsetFallbackPolicy;
using SelectorFallbackPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbSubsetConfig.Types.LbSubsetSelector.Types.LbSubsetSelectorFallbackPolicy;

namespace Legate.Upstream;

/// <summary>
/// Envoy's subset load balancer (<c>lb_subset_config</c>): each selector's keys group the hosts
/// whose <c>envoy.lb</c> metadata has all of them into subsets by their values (a list value is one
/// subset per element with <c>list_as_any</c>); a request whose <c>metadata_match</c> (the route's,
/// merged with its weighted cluster's) names a subset that has hosts is balanced by the cluster's
/// policy over that subset, or given its one host (<c>single_host_per_subset</c>). Otherwise the
/// selector's own <c>fallback_policy</c> applies when it defines one (ANY_ENDPOINT, DEFAULT_SUBSET,
/// NO_FALLBACK, or KEYS_SUBSET: the lookup again with only <c>fallback_keys_subset</c>), else the
/// cluster's (NO_FALLBACK, ANY_ENDPOINT, DEFAULT_SUBSET), and <c>panic_mode_any</c> takes any host
/// when that fallback finds none. With <c>metadata_fallback_policy: FALLBACK_LIST</c>, the criteria's
/// <c>fallback_list</c> variants are tried in order until one gives a host.
/// </summary>
/// <remarks>
/// Subsets are rebuilt (under a lock, once) by the first pick that sees a new cluster snapshot: each
/// keeps its own <see cref="PrioritySet"/> and balancer, so a host set change updates them in
/// place and their rotation state carries on. Subsets balance without locality weights unless
/// <c>locality_weight_aware</c> (then with the cluster's, or scaled by the share of each locality's
/// hosts in the subset with <c>scale_locality_weight</c>), as Envoy's; they are zone aware.
/// </remarks>
internal sealed class SubsetLoadBalancer : ILoadBalancer
{
    private readonly PrioritySet _cluster;
    private readonly SubsetLoadBalancerSettings _config;
    private readonly LoadBalancerSettings _settings;
    private readonly ClusterStats? _stats;
    private readonly LbRandom? _random;
    private readonly TimeProvider? _time;
    private readonly LocalClusterSource? _localCluster;
    private readonly Legate.Runtime.RuntimeLoader? _runtime;

    // Per selector key set, the fallback of the selector that defined it (Envoy's selector trie:
    // the first selector whose keys end at a node not made by an earlier selector).
    private readonly Dictionary<string, SubsetLoadBalancerSettings.Selector> _selectorFallbacks = new(StringComparer.Ordinal);
    private readonly ILoadBalancer _any;
    private readonly PrioritySubset? _default;
    private readonly ILoadBalancer? _fallback;
    private readonly Lock _rebuildLock = new();

    // allow_redundant_keys: the selectors, most keys first; default when off.
    private readonly ImmutableArray<SubsetLoadBalancerSettings.Selector> _selectorsByKeyCount;
    private readonly Dictionary<string, Subset> _subsets = new(StringComparer.Ordinal);
    private volatile State _state = new(PrioritySnapshot.Empty, new Dictionary<string, Subset>(StringComparer.Ordinal));

    public SubsetLoadBalancer(PrioritySet cluster, LoadBalancerSettings settings, SubsetLoadBalancerSettings config, ClusterStats? stats, LbRandom? random,
        TimeProvider? time, LocalClusterSource? localCluster = null, Legate.Runtime.RuntimeLoader? runtime = null)
    {
        _cluster = cluster;
        _config = config;
        // Envoy's subsets (the any-endpoint one too) have locality weights only when locality_weight_aware.
        _settings = settings with { LocalityWeighted = settings.LocalityWeighted && config.LocalityWeightAware };
        _stats = stats;
        _random = random;
        _time = time;
        _localCluster = localCluster;
        _runtime = runtime;
        _selectorsByKeyCount = config.AllowRedundantKeys ? config.SelectorsByKeyCount : default;
        var prefixes = new HashSet<string>(StringComparer.Ordinal);
        var needDefault = config.Fallback == FallbackPolicy.DefaultSubset;
        foreach (var selector in config.Selectors)
        {
            var prefix = string.Empty;
            var created = false;
            foreach (var key in selector.Keys)
            {
                prefix += key + "\n";
                created = prefixes.Add(prefix);
            }

            if (created)
            {
                _selectorFallbacks[prefix] = selector;
            }

            needDefault |= selector.Fallback == SelectorFallbackPolicy.DefaultSubset;
        }

        _any = CreateBalancer(cluster);
        if (needDefault && !config.DefaultSubset.IsEmpty)
        {
            _default = new PrioritySubset(this);
        }

        _fallback = config.Fallback switch
        {
            FallbackPolicy.AnyEndpoint => _any,
            FallbackPolicy.DefaultSubset => DefaultBalancer,
            _ => null,
        };
    }

    /// <summary>The default subset's balancer (an empty <c>default_subset</c> matches every host).</summary>
    private ILoadBalancer DefaultBalancer => _default?.Balancer ?? _any;

    public Host? ChooseHost(ILoadBalancerContext? context)
    {
        var state = CurrentState();
        var criteria = context?.MetadataMatch;
        if (_config.FallbackList && criteria?.FallbackList() is { } variants)
        {
            // metadata_fallback_policy FALLBACK_LIST: each variant in turn, the whole lookup each time.
            foreach (var variant in variants)
            {
                if (ChooseHost(state, context, variant) is { } host)
                {
                    return host;
                }
            }

            return null;
        }

        return ChooseHost(state, context, criteria);
    }

    /// <summary>One lookup (Envoy's chooseHostIteration): the subset, else the selector's fallback, else the cluster's.</summary>
    private Host? ChooseHost(State state, ILoadBalancerContext? context, MetadataMatchCriteria? criteria)
    {
        if (criteria is not null && !_selectorsByKeyCount.IsDefault)
        {
            criteria = WithoutRedundantKeys(criteria);
        }

        if (criteria is not null)
        {
            if (state.Subsets.TryGetValue(criteria.SubsetKey, out var subset))
            {
                // A subset with hosts answers even when its balancer finds none (all unhealthy, no panic).
                _stats?.LbSubsetsSelected.Inc();
                return subset.Choose(context);
            }

            if (_selectorFallbacks.TryGetValue(criteria.NamesKey, out var selector) && selector.Fallback != SelectorFallbackPolicy.NotDefined)
            {
                return selector.Fallback switch
                {
                    SelectorFallbackPolicy.AnyEndpoint => _any.ChooseHost(context),
                    SelectorFallbackPolicy.DefaultSubset => DefaultBalancer.ChooseHost(context),
                    SelectorFallbackPolicy.KeysSubset => ChooseHost(state, context, criteria.Filter(selector.FallbackKeys)),
                    _ => null,
                };
            }
        }

        if (_fallback is null)
        {
            return null;
        }

        if (_fallback.ChooseHost(context) is { } fallback)
        {
            _stats?.LbSubsetsFallback.Inc();
            return fallback;
        }

        if (_config.PanicModeAny && _any.ChooseHost(context) is { } any)
        {
            _stats?.LbSubsetsFallbackPanic.Inc();
            return any;
        }

        return null;
    }

    /// <summary>allow_redundant_keys: the criteria cut down to the first selector (most keys first) whose keys they all have.</summary>
    private MetadataMatchCriteria WithoutRedundantKeys(MetadataMatchCriteria criteria)
    {
        foreach (var selector in _selectorsByKeyCount)
        {
            if (selector.Keys.Length > criteria.Criteria.Length)
            {
                continue;
            }

            var covered = true;
            foreach (var key in selector.Keys)
            {
                covered &= HasName(criteria, key);
            }

            if (covered)
            {
                return selector.Keys.Length == criteria.Criteria.Length ? criteria : criteria.Filter(selector.Keys) ?? criteria;
            }
        }

        return criteria;
    }

    private static bool HasName(MetadataMatchCriteria criteria, string name)
    {
        foreach (var (n, _) in criteria.Criteria)
        {
            if (n == name)
            {
                return true;
            }
        }

        return false;
    }

    private ILoadBalancer CreateBalancer(PrioritySet set) =>
        LoadBalancerFactory.Create(set, _settings, _stats, _random, _time, _localCluster, _runtime);

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

            var members = new Dictionary<string, Members>(StringComparer.Ordinal);
            var defaults = new List<Host>();
            var duplicates = 0;
            var anySingleHost = false;
            foreach (var host in snapshot.Hosts)
            {
                var lb = host.Metadata is { } metadata && metadata.FilterMetadata.TryGetValue(MetadataMatchCriteria.LbFilter, out var s) ? s : null;
                foreach (var selector in _config.Selectors)
                {
                    anySingleHost |= selector.SingleHostPerSubset;
                    foreach (var key in KeysOf(lb, selector.Keys, _config.ListAsAny))
                    {
                        if (!members.TryGetValue(key, out var entry))
                        {
                            // The first selector to make a subset decides whether it holds a single host.
                            entry = new Members(selector.SingleHostPerSubset);
                            members.Add(key, entry);
                        }

                        duplicates += entry.Add(host);
                    }
                }

                if (_default is not null && Matches(lb, _config.DefaultSubset, _config.ListAsAny))
                {
                    defaults.Add(host);
                }
            }

            foreach (var (key, entry) in members)
            {
                if (!_subsets.TryGetValue(key, out var subset) || subset.SingleHost != entry.SingleHost)
                {
                    if (subset is not null)
                    {
                        _stats?.LbSubsetsRemoved.Inc();
                    }

                    subset = entry.SingleHost ? new SingleHostSubset() : new PrioritySubset(this);
                    _subsets[key] = subset;
                    _stats?.LbSubsetsCreated.Inc();
                }

                subset.Update(entry, snapshot);
            }

            foreach (var key in _subsets.Keys.Where(k => !members.ContainsKey(k)).ToList())
            {
                _subsets.Remove(key);
                _stats?.LbSubsetsRemoved.Inc();
            }

            _default?.Update(defaults, snapshot);
            _stats?.LbSubsetsActive.Set(_subsets.Count);
            if (anySingleHost && _stats is { } stats)
            {
                stats.LbSubsetsSingleHostPerSubsetDuplicate.Set(duplicates);
            }

            var state = new State(snapshot, new Dictionary<string, Subset>(_subsets, StringComparer.Ordinal));
            _state = state;
            return state;
        }
    }

    /// <summary>
    /// The subset keys of a host for one selector: none when it lacks one of the keys; with
    /// <c>list_as_any</c>, one per combination of a list value's elements (Envoy's extractSubsetMetadata).
    /// </summary>
    private static List<string> KeysOf(Struct? lb, ImmutableArray<string> keys, bool listAsAny)
    {
        if (lb is null)
        {
            return [];
        }

        var combinations = new List<(string Name, Value Value)[]> { new (string, Value)[keys.Length] };
        for (var i = 0; i < keys.Length; i++)
        {
            if (!lb.Fields.TryGetValue(keys[i], out var value))
            {
                return [];
            }

            if (listAsAny && value.KindCase == Value.KindOneofCase.ListValue)
            {
                var branched = new List<(string, Value)[]>();
                foreach (var combination in combinations)
                {
                    foreach (var element in value.ListValue.Values)
                    {
                        var copy = ((string, Value)[])combination.Clone();
                        copy[i] = (keys[i], element);
                        branched.Add(copy);
                    }
                }

                combinations = branched;
            }
            else
            {
                foreach (var combination in combinations)
                {
                    combination[i] = (keys[i], value);
                }
            }
        }

        var result = new List<string>(combinations.Count);
        foreach (var combination in combinations)
        {
            result.Add(MetadataMatchCriteria.KeyOf(combination));
        }

        return result;
    }

    /// <summary>Envoy's metadataLabelMatch: every criterion equal (or, with list_as_any, an element of a list value).</summary>
    private static bool Matches(Struct? lb, ImmutableArray<(string Name, Value Value)> criteria, bool listAsAny)
    {
        foreach (var (name, value) in criteria)
        {
            if (lb is null || !lb.Fields.TryGetValue(name, out var actual))
            {
                return false;
            }

            if (actual.Equals(value))
            {
                continue;
            }

            if (!listAsAny || actual.KindCase != Value.KindOneofCase.ListValue || !actual.ListValue.Values.Contains(value))
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

    /// <summary>The hosts one rebuild puts in a subset.</summary>
    private sealed class Members(bool singleHost)
    {
        public bool SingleHost { get; } = singleHost;

        public List<Host> Hosts { get; } = [];

        /// <summary>Adds <paramref name="host"/>; returns 1 when a single-host subset leaves it out (a duplicate).</summary>
        public int Add(Host host)
        {
            if (Hosts.Count > 0 && ReferenceEquals(Hosts[^1], host))
            {
                // The same host through another selector with the same keys (or a repeated list element).
                return 0;
            }

            if (!SingleHost)
            {
                Hosts.Add(host);
                return 0;
            }

            // One host per priority (the first), and the highest priority's is the subset's host.
            foreach (var kept in Hosts)
            {
                if (ReferenceEquals(kept, host))
                {
                    return 0;
                }

                if (kept.Priority == host.Priority)
                {
                    return 1;
                }
            }

            Hosts.Add(host);
            return 0;
        }
    }

    private abstract class Subset
    {
        public abstract bool SingleHost { get; }

        public abstract Host? Choose(ILoadBalancerContext? context);

        public abstract void Update(Members members, PrioritySnapshot cluster);
    }

    /// <summary><c>single_host_per_subset</c>: the subset's host, whatever its health, as Envoy's SingleHostLbSubset.</summary>
    private sealed class SingleHostSubset : Subset
    {
        private volatile Host? _host;

        public override bool SingleHost => true;

        public override Host? Choose(ILoadBalancerContext? context) => _host;

        public override void Update(Members members, PrioritySnapshot cluster)
        {
            Host? best = null;
            foreach (var host in members.Hosts)
            {
                if (best is null || host.Priority < best.Priority)
                {
                    best = host;
                }
            }

            _host = best;
        }
    }

    /// <summary>One subset: its own priority set (the cluster's Host objects) and the policy's balancer over it.</summary>
    private sealed class PrioritySubset : Subset
    {
        private readonly SubsetLoadBalancer _owner;
        private readonly PrioritySet _set = new();

        public PrioritySubset(SubsetLoadBalancer owner)
        {
            _owner = owner;
            Balancer = owner.CreateBalancer(_set);
        }

        public ILoadBalancer Balancer { get; }

        public override bool SingleHost => false;

        public override Host? Choose(ILoadBalancerContext? context) => Balancer.ChooseHost(context);

        public override void Update(Members members, PrioritySnapshot cluster) => Update(members.Hosts, cluster);

        public void Update(List<Host> hosts, PrioritySnapshot cluster)
        {
            if (_owner._settings.LocalityWeighted && _owner._config.ScaleLocalityWeight)
            {
                _set.LocalityWeightOf = ScaledLocalityWeights(hosts, cluster);
            }

            _set.Update(hosts, cluster.OverprovisioningFactor, cluster.WeightedPriorityHealth);
            // Health changes of the same hosts do not change membership: republish their health too.
            _set.RefreshHealth();
        }

        /// <summary>
        /// <c>scale_locality_weight</c>: a locality's weight times the share of its hosts (of that
        /// priority) in the subset, rounded as Envoy rounds it; 0 for a locality without hosts.
        /// </summary>
        private static Func<uint, Locality?, uint, uint> ScaledLocalityWeights(List<Host> hosts, PrioritySnapshot cluster)
        {
            var counts = new Dictionary<(uint, Locality?), int>();
            foreach (var host in hosts)
            {
                var key = (host.Priority, host.Locality);
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }

            return (priority, locality, weight) =>
            {
                var set = cluster.Find(priority);
                var index = set is null ? -1 : set.Localities.IndexOf(locality);
                if (set is null || index < 0 || set.HostsPerLocality[index].Length == 0)
                {
                    return 0;
                }

                var scaled = (float)((double)set.LocalityWeights[index] * counts.GetValueOrDefault((priority, locality))) / set.HostsPerLocality[index].Length;
                return (uint)MathF.Round(scaled, MidpointRounding.AwayFromZero);
            };
        }
    }
}
