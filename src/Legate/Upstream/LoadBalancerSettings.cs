using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>
/// A cluster's load balancing configuration, compiled from <c>lb_policy</c> with its
/// <c>*_lb_config</c> and <c>common_lb_config</c>, or from a typed <c>load_balancing_policy</c>:
/// both forms end here, so one implementation serves each policy. Defaults are Envoy's.
/// </summary>
internal sealed record LoadBalancerSettings
{
    /// <summary>
    /// The typed <c>envoy.load_balancing_policies.subset</c> policy: subsets balanced by the rest
    /// of these settings (its <c>subset_lb_policy</c>); null otherwise (<c>lb_subset_config</c> is read by the cluster factory).
    /// </summary>
    public SubsetLoadBalancerSettings? Subset { get; init; }

    public static readonly LoadBalancerSettings Default = new();

    public LbPolicy Policy { get; init; } = LbPolicy.RoundRobin;

    /// <summary><c>healthy_panic_threshold</c> in percent; 0 disables panic mode.</summary>
    public int PanicThreshold { get; init; } = 50;

    /// <summary><c>locality_weighted_lb_config</c>: pick a locality by weight first (not for hashing policies).</summary>
    public bool LocalityWeighted { get; init; }

    /// <summary>LEAST_REQUEST <c>choice_count</c>: hosts compared per pick when weights are equal.</summary>
    public int ChoiceCount { get; init; } = 2;

    /// <summary>LEAST_REQUEST <c>active_request_bias</c>: weight / (active + 1)^bias when weights differ.</summary>
    public double ActiveRequestBias { get; init; } = 1.0;

    /// <summary>RING_HASH <c>minimum_ring_size</c>.</summary>
    public ulong MinimumRingSize { get; init; } = 1024;

    /// <summary>RING_HASH <c>maximum_ring_size</c>.</summary>
    public ulong MaximumRingSize { get; init; } = 8 * 1024 * 1024;

    /// <summary>RING_HASH <c>hash_function</c>: MurmurHash2 instead of the default xxHash64.</summary>
    public bool RingHashMurmur2 { get; init; }

    /// <summary>MAGLEV <c>table_size</c> (a prime).</summary>
    public ulong MaglevTableSize { get; init; } = 65537;

    /// <summary><c>consistent_hashing_lb_config.use_hostname_for_hashing</c>.</summary>
    public bool UseHostnameForHashing { get; init; }

    /// <summary><c>consistent_hashing_lb_config.hash_balance_factor</c> (0 = no bound on a host's load).</summary>
    public uint HashBalanceFactor { get; init; }

    /// <summary><c>slow_start_config</c> of ROUND_ROBIN or LEAST_REQUEST with a window; null = none.</summary>
    public SlowStartSettings? SlowStart { get; init; }

    /// <summary><c>zone_aware_lb_config.routing_enabled</c>: percent of picks that may use zone-aware routing (default 100).</summary>
    public int ZoneRoutingEnabled { get; init; } = 100;

    /// <summary><c>zone_aware_lb_config.min_cluster_size</c>: fewer healthy hosts than this disable zone-aware routing (default 6).</summary>
    public ulong ZoneMinClusterSize { get; init; } = 6;

    /// <summary><c>zone_aware_lb_config.fail_traffic_on_panic</c>: no host instead of all hosts when a priority (or the local cluster) panics.</summary>
    public bool FailTrafficOnPanic { get; init; }

    /// <summary>Where round robin starts (Envoy starts at a random place); tests pass 0.</summary>
    public ulong Seed { get; init; }
}
