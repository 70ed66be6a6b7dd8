using Legate.Config;
using Legate.Config.Semantic;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;
using CommonLocality = Envoy.Extensions.LoadBalancingPolicies.Common.V3.LocalityLbConfig;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;
using TypedLeastRequest = Envoy.Extensions.LoadBalancingPolicies.LeastRequest.V3.LeastRequest;
using TypedMaglev = Envoy.Extensions.LoadBalancingPolicies.Maglev.V3.Maglev;
using TypedRandom = Envoy.Extensions.LoadBalancingPolicies.Random.V3.Random;
using TypedRingHash = Envoy.Extensions.LoadBalancingPolicies.RingHash.V3.RingHash;
using TypedRoundRobin = Envoy.Extensions.LoadBalancingPolicies.RoundRobin.V3.RoundRobin;
using TypedSubset = Envoy.Extensions.LoadBalancingPolicies.Subset.V3.Subset;

namespace Legate.Upstream;

/// <summary>
/// Compiles a cluster's load balancing configuration, either form, into
/// <see cref="LoadBalancerSettings"/>: <c>lb_policy</c> with <c>least_request_lb_config</c>,
/// <c>ring_hash_lb_config</c>, <c>maglev_lb_config</c> and <c>common_lb_config</c>, or the typed
/// <c>load_balancing_policy</c> (<c>envoy.load_balancing_policies.*</c>; the first policy of the list
/// Legate knows is used, as Envoy). Envoy's load-time errors are reported with field paths.
/// </summary>
internal static class LoadBalancerSettingsFactory
{
    public static LoadBalancerSettings Create(ClusterConfig config, string path, ConfigErrors errors, ulong seed)
    {
        var settings = LoadBalancerSettings.Default with { Seed = seed };
        if (config.CommonLbConfig is { } common)
        {
            if (common.HealthyPanicThreshold is { } threshold)
            {
                // Envoy rounds the percentage to an integer.
                settings = settings with { PanicThreshold = (int)Math.Round(Math.Clamp(threshold.Value, 0, 100)) };
            }

            if (common.LocalityWeightedLbConfig is not null)
            {
                settings = settings with { LocalityWeighted = true };
            }

            if (common.ZoneAwareLbConfig is { } zoneAware)
            {
                settings = WithZoneAware(settings, zoneAware.RoutingEnabled?.Value, zoneAware.MinClusterSize, zoneAware.FailTrafficOnPanic);
            }

            if (common.ConsistentHashingLbConfig is { } hashing)
            {
                settings = settings with { UseHostnameForHashing = hashing.UseHostnameForHashing, HashBalanceFactor = hashing.HashBalanceFactor ?? 0 };
            }
        }

        settings = config.LoadBalancingPolicy is not null
            ? FromTypedPolicy(config.LoadBalancingPolicy, settings, FieldPath.Field(path, "load_balancing_policy"), errors)
            : FromLbPolicy(config, settings, path, errors);
        return settings;
    }

    private static LoadBalancerSettings FromLbPolicy(ClusterConfig config, LoadBalancerSettings settings, string path, ConfigErrors errors)
    {
        var policy = config.LbPolicy;
        var policyPath = FieldPath.Field(path, "lb_policy");
        switch (policy)
        {
            case LbPolicy.RoundRobin:
                return settings with
                {
                    Policy = policy,
                    SlowStart = SlowStartOf(config.RoundRobinLbConfig?.SlowStartConfig is { } rr ? (rr.SlowStartWindow, rr.Aggression?.DefaultValue, rr.MinWeightPercent?.Value, rr.Aggression?.RuntimeKey) : null,
                        FieldPath.Field(FieldPath.Field(path, "round_robin_lb_config"), "slow_start_config"), errors),
                };
            case LbPolicy.Random:
                return settings with { Policy = policy };
            case LbPolicy.LeastRequest:
                settings = settings with
                {
                    Policy = policy,
                    SlowStart = SlowStartOf(config.LeastRequestLbConfig?.SlowStartConfig is { } lr ? (lr.SlowStartWindow, lr.Aggression?.DefaultValue, lr.MinWeightPercent?.Value, lr.Aggression?.RuntimeKey) : null,
                        FieldPath.Field(FieldPath.Field(path, "least_request_lb_config"), "slow_start_config"), errors),
                };
                if (config.LeastRequestLbConfig is { } leastRequest)
                {
                    settings = LeastRequest(settings, leastRequest.ChoiceCount, leastRequest.ActiveRequestBias?.DefaultValue,
                        FieldPath.Field(FieldPath.Field(path, "least_request_lb_config"), "active_request_bias"), errors);
                }

                return settings;
            case LbPolicy.RingHash:
                settings = settings with { Policy = policy };
                if (config.RingHashLbConfig is { } ring)
                {
                    settings = RingHash(settings, ring.MinimumRingSize, ring.MaximumRingSize,
                        ring.HashFunction == ClusterConfig.Types.RingHashLbConfig.Types.HashFunction.MurmurHash2,
                        FieldPath.Field(path, "ring_hash_lb_config"), errors);
                }

                return settings;
            case LbPolicy.Maglev:
                settings = settings with { Policy = policy };
                return config.MaglevLbConfig is { } maglev
                    ? Maglev(settings, maglev.TableSize, FieldPath.Field(FieldPath.Field(path, "maglev_lb_config"), "table_size"), errors)
                    : settings;
            case LbPolicy.ClusterProvided when config.Type == ClusterConfig.Types.DiscoveryType.OriginalDst
                || config.ClusterDiscoveryTypeCase == ClusterConfig.ClusterDiscoveryTypeOneofCase.ClusterType:
                return settings with { Policy = policy };
            case LbPolicy.ClusterProvided:
                errors.Add(policyPath, $"LB policy CLUSTER_PROVIDED is only valid for cluster type ORIGINAL_DST or a custom cluster type, not {config.Type.ToEnumName()}");
                return settings;
            case LbPolicy.LoadBalancingPolicyConfig:
                errors.Add(policyPath, "LB policy LOAD_BALANCING_POLICY_CONFIG needs load_balancing_policy");
                return settings;
            default:
                errors.Add(policyPath, $"LB policy {policy.ToEnumName()} is not supported yet");
                return settings;
        }
    }

    private static LoadBalancerSettings FromTypedPolicy(Envoy.Config.Cluster.V3.LoadBalancingPolicy policy, LoadBalancerSettings settings, string path, ConfigErrors errors, bool inSubset = false)
    {
        var policies = policy.Policies;
        for (var i = 0; i < policies.Count; i++)
        {
            var typed = policies[i].TypedExtensionConfig?.TypedConfig;
            if (typed is null)
            {
                continue;
            }

            var at = FieldPath.Field(FieldPath.Field(FieldPath.Index(FieldPath.Field(path, "policies"), i), "typed_extension_config"), "typed_config");
            if (typed.Is(TypedSubset.Descriptor) && !inSubset)
            {
                // Envoy's subset policy: subsets picked as lb_subset_config picks them, each balanced by subset_lb_policy.
                var subset = typed.Unpack<TypedSubset>();
                var subsetSettings = SubsetLoadBalancerSettings.From(subset, at, errors);
                if (subset.SubsetLbPolicy is null)
                {
                    errors.Add(FieldPath.Field(at, "subset_lb_policy"), "subset_lb_policy is required");
                    return settings;
                }

                return FromTypedPolicy(subset.SubsetLbPolicy, settings, FieldPath.Field(at, "subset_lb_policy"), errors, inSubset: true) with { Subset = subsetSettings };
            }

            if (typed.Is(TypedRoundRobin.Descriptor))
            {
                var roundRobin = typed.Unpack<TypedRoundRobin>();
                return WithLocality(settings with { Policy = LbPolicy.RoundRobin, SlowStart = TypedSlowStart(roundRobin.SlowStartConfig, at, errors) }, roundRobin.LocalityLbConfig);
            }

            if (typed.Is(TypedRandom.Descriptor))
            {
                return WithLocality(settings with { Policy = LbPolicy.Random }, typed.Unpack<TypedRandom>().LocalityLbConfig);
            }

            if (typed.Is(TypedLeastRequest.Descriptor))
            {
                var leastRequest = typed.Unpack<TypedLeastRequest>();
                settings = WithLocality(settings with { Policy = LbPolicy.LeastRequest, SlowStart = TypedSlowStart(leastRequest.SlowStartConfig, at, errors) }, leastRequest.LocalityLbConfig);
                return LeastRequest(settings, leastRequest.ChoiceCount, leastRequest.ActiveRequestBias?.DefaultValue, FieldPath.Field(at, "active_request_bias"), errors);
            }

            if (typed.Is(TypedRingHash.Descriptor))
            {
                var ring = typed.Unpack<TypedRingHash>();
#pragma warning disable CS0612 // Deprecated in favour of consistent_hashing_lb_config, still honoured by Envoy.
                settings = settings with
                {
                    Policy = LbPolicy.RingHash,
                    LocalityWeighted = ring.LocalityWeightedLbConfig is not null || settings.LocalityWeighted,
                    UseHostnameForHashing = ring.ConsistentHashingLbConfig?.UseHostnameForHashing ?? ring.UseHostnameForHashing,
                    HashBalanceFactor = ring.ConsistentHashingLbConfig is { } hashing ? hashing.HashBalanceFactor ?? 0 : ring.HashBalanceFactor ?? 0,
                };
#pragma warning restore CS0612
                return RingHash(settings, ring.MinimumRingSize, ring.MaximumRingSize,
                    ring.HashFunction == TypedRingHash.Types.HashFunction.MurmurHash2, at, errors);
            }

            if (typed.Is(TypedMaglev.Descriptor))
            {
                var maglev = typed.Unpack<TypedMaglev>();
                settings = settings with
                {
                    Policy = LbPolicy.Maglev,
                    LocalityWeighted = maglev.LocalityWeightedLbConfig is not null || settings.LocalityWeighted,
                    UseHostnameForHashing = maglev.ConsistentHashingLbConfig?.UseHostnameForHashing ?? false,
                    HashBalanceFactor = maglev.ConsistentHashingLbConfig?.HashBalanceFactor ?? 0,
                };
                return Maglev(settings, maglev.TableSize, FieldPath.Field(at, "table_size"), errors);
            }
        }

        errors.Add(FieldPath.Field(path, "policies"), inSubset
            ? "no load balancing policy in the list is supported inside a subset (supported: envoy.load_balancing_policies.round_robin, least_request, random, ring_hash, maglev)"
            : "no load balancing policy in the list is supported (supported: envoy.load_balancing_policies.round_robin, least_request, random, ring_hash, maglev, subset)");
        return settings;
    }

    private static SlowStartSettings? TypedSlowStart(Envoy.Extensions.LoadBalancingPolicies.Common.V3.SlowStartConfig? config, string at, ConfigErrors errors) =>
        SlowStartOf(config is null ? null : (config.SlowStartWindow, config.Aggression?.DefaultValue, config.MinWeightPercent?.Value, config.Aggression?.RuntimeKey), FieldPath.Field(at, "slow_start_config"), errors);

    /// <summary>A slow_start_config (either API's): no window or a zero one means no slow start, as Envoy.</summary>
    private static SlowStartSettings? SlowStartOf((Google.Protobuf.WellKnownTypes.Duration? Window, double? Aggression, double? MinWeightPercent, string? RuntimeKey)? config, string path, ConfigErrors errors)
    {
        if (config is not { } c || c.Window is null)
        {
            return null;
        }

        var window = c.Window.ToTimeSpan();
        if (window <= TimeSpan.Zero)
        {
            return null;
        }

        var aggression = c.Aggression ?? 1.0;
        if (aggression <= 0 || double.IsNaN(aggression))
        {
            // Envoy logs this and runs with 1.0; a config error is clearer.
            errors.Add(FieldPath.Field(FieldPath.Field(path, "aggression"), "default_value"), $"invalid aggression {aggression}: it must be greater than 0");
            aggression = 1.0;
        }

        return new SlowStartSettings(window, aggression, (c.MinWeightPercent ?? 10.0) / 100.0, c.RuntimeKey is { Length: > 0 } key ? key : null);
    }

    private static LoadBalancerSettings WithLocality(LoadBalancerSettings settings, CommonLocality? locality) =>
        locality?.LocalityWeightedLbConfig is not null ? settings with { LocalityWeighted = true }
        : locality?.ZoneAwareLbConfig is { } zoneAware ? WithZoneAware(settings, zoneAware.RoutingEnabled?.Value, zoneAware.MinClusterSize, zoneAware.FailTrafficOnPanic)
        : settings;

    /// <summary>zone_aware_lb_config: routing_enabled is rounded to a whole percent, as Envoy's PROTOBUF_PERCENT_TO_ROUNDED_INTEGER_OR_DEFAULT.</summary>
    private static LoadBalancerSettings WithZoneAware(LoadBalancerSettings settings, double? routingEnabled, ulong? minClusterSize, bool failTrafficOnPanic) =>
        settings with
        {
            ZoneRoutingEnabled = routingEnabled is { } percent ? (int)Math.Round(Math.Clamp(percent, 0, 100)) : 100,
            ZoneMinClusterSize = minClusterSize ?? 6,
            FailTrafficOnPanic = failTrafficOnPanic,
        };

    private static LoadBalancerSettings LeastRequest(LoadBalancerSettings settings, uint? choiceCount, double? bias, string biasPath, ConfigErrors errors)
    {
        if (bias is { } value && (double.IsNaN(value) || value < 0))
        {
            errors.Add(biasPath, $"invalid active_request_bias {value}: it must be a non-negative number");
        }

        return settings with
        {
            ChoiceCount = (int)Math.Min(choiceCount ?? 2, 1_000_000),
            ActiveRequestBias = bias is { } b && !double.IsNaN(b) && b >= 0 ? b : 1.0,
        };
    }

    private static LoadBalancerSettings RingHash(LoadBalancerSettings settings, ulong? minimum, ulong? maximum, bool murmur, string path, ConfigErrors errors)
    {
        settings = settings with
        {
            MinimumRingSize = minimum ?? settings.MinimumRingSize,
            MaximumRingSize = maximum ?? settings.MaximumRingSize,
            RingHashMurmur2 = murmur,
        };
        if (settings.MinimumRingSize > settings.MaximumRingSize)
        {
            errors.Add(FieldPath.Field(path, "minimum_ring_size"), $"ring hash: minimum_ring_size ({settings.MinimumRingSize}) > maximum_ring_size ({settings.MaximumRingSize})");
        }

        return settings;
    }

    private static LoadBalancerSettings Maglev(LoadBalancerSettings settings, ulong? tableSize, string path, ConfigErrors errors)
    {
        if (tableSize is { } size)
        {
            if (!IsPrime(size))
            {
                errors.Add(path, $"the table size of maglev must be a prime number (got {size})");
            }
            else
            {
                settings = settings with { MaglevTableSize = size };
            }
        }

        return settings;
    }

    private static bool IsPrime(ulong n)
    {
        if (n < 2)
        {
            return false;
        }

        for (ulong d = 2; d * d <= n; d++)
        {
            if (n % d == 0)
            {
                return false;
            }
        }

        return true;
    }
}
