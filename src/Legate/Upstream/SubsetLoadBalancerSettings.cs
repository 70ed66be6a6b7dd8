using System.Collections.Immutable;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using FallbackPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbSubsetConfig.Types.LbSubsetFallbackPolicy;
using LbSubsetConfig = Envoy.Config.Cluster.V3.Cluster.Types.LbSubsetConfig;
using MetadataFallbackPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbSubsetConfig.Types.LbSubsetMetadataFallbackPolicy;
using SelectorFallbackPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbSubsetConfig.Types.LbSubsetSelector.Types.LbSubsetSelectorFallbackPolicy;

namespace Legate.Upstream;

/// <summary>A cluster's <c>lb_subset_config</c>, validated as Envoy validates it.</summary>
internal sealed class SubsetLoadBalancerSettings
{
    public ImmutableArray<Selector> Selectors { get; init; } = [];

    public FallbackPolicy Fallback { get; init; }

    /// <summary><c>default_subset</c> in key order (empty: every host).</summary>
    public ImmutableArray<(string Name, Value Value)> DefaultSubset { get; init; } = [];

    public bool LocalityWeightAware { get; init; }

    public bool ScaleLocalityWeight { get; init; }

    public bool PanicModeAny { get; init; }

    public bool ListAsAny { get; init; }

    /// <summary><c>metadata_fallback_policy: FALLBACK_LIST</c>.</summary>
    public bool FallbackList { get; init; }

    /// <summary>
    /// <c>allow_redundant_keys</c> (the typed <c>envoy.load_balancing_policies.subset</c> only): a
    /// request's criteria are cut down to the keys of the selector with the most keys that they
    /// all cover (the first such selector on a tie), so extra keys do not miss the subset.
    /// </summary>
    public bool AllowRedundantKeys { get; init; }

    /// <summary>The selectors by key count, most first, config order kept on ties (for <see cref="AllowRedundantKeys"/>).</summary>
    public ImmutableArray<Selector> SelectorsByKeyCount => [.. Selectors.OrderByDescending(s => s.Keys.Length)];

    /// <summary>
    /// The typed <c>envoy.extensions.load_balancing_policies.subset.v3.Subset</c>: the same
    /// fields as <c>lb_subset_config</c> (same numbers and enum values, so its bytes read as one),
    /// plus <c>allow_redundant_keys</c>; <c>subset_lb_policy</c> is compiled by the caller.
    /// </summary>
    public static SubsetLoadBalancerSettings From(Envoy.Extensions.LoadBalancingPolicies.Subset.V3.Subset typed, string path, ConfigErrors errors)
    {
        var legacy = LbSubsetConfig.Parser.ParseFrom(Google.Protobuf.MessageExtensions.ToByteArray(typed));
        var settings = From(legacy, path, errors);
        return new SubsetLoadBalancerSettings
        {
            Selectors = settings.Selectors,
            Fallback = settings.Fallback,
            DefaultSubset = settings.DefaultSubset,
            LocalityWeightAware = settings.LocalityWeightAware,
            ScaleLocalityWeight = settings.ScaleLocalityWeight,
            PanicModeAny = settings.PanicModeAny,
            ListAsAny = settings.ListAsAny,
            FallbackList = settings.FallbackList,
            AllowRedundantKeys = typed.AllowRedundantKeys,
        };
    }

    /// <summary>Compiles <paramref name="config"/>; errors name the field, with Envoy's messages.</summary>
    public static SubsetLoadBalancerSettings From(LbSubsetConfig config, string path, ConfigErrors errors)
    {
        var selectors = ImmutableArray.CreateBuilder<Selector>();
        for (var i = 0; i < config.SubsetSelectors.Count; i++)
        {
            var selector = config.SubsetSelectors[i];
            var selectorPath = FieldPath.Index(FieldPath.Field(path, "subset_selectors"), i);
            var keys = selector.Keys.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToImmutableArray();
            var fallbackKeys = selector.FallbackKeysSubset.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToImmutableArray();
            var keysPath = FieldPath.Field(selectorPath, "fallback_keys_subset");
            if (selector.FallbackPolicy != SelectorFallbackPolicy.KeysSubset)
            {
                if (!fallbackKeys.IsEmpty)
                {
                    errors.Add(keysPath, "fallback_keys_subset can be set only for KEYS_SUBSET fallback_policy");
                }
            }
            else if (fallbackKeys.IsEmpty)
            {
                errors.Add(keysPath, "fallback_keys_subset cannot be empty");
            }
            else if (!fallbackKeys.All(k => keys.Contains(k)))
            {
                errors.Add(keysPath, "fallback_keys_subset must be a subset of selector keys");
            }
            else if (fallbackKeys.Length == keys.Length)
            {
                errors.Add(keysPath, "fallback_keys_subset cannot be equal to keys");
            }

            if (!keys.IsEmpty)
            {
                // A selector without keys selects nothing (Envoy's trie has no entry for it).
                selectors.Add(new Selector(keys, selector.FallbackPolicy, fallbackKeys, selector.SingleHostPerSubset));
            }
        }

        return new SubsetLoadBalancerSettings
        {
            Selectors = selectors.ToImmutable(),
            Fallback = config.FallbackPolicy,
            DefaultSubset = config.DefaultSubset?.Fields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => (f.Key, f.Value)).ToImmutableArray() ?? [],
            LocalityWeightAware = config.LocalityWeightAware,
            ScaleLocalityWeight = config.ScaleLocalityWeight,
            PanicModeAny = config.PanicModeAny,
            ListAsAny = config.ListAsAny,
            FallbackList = config.MetadataFallbackPolicy == MetadataFallbackPolicy.FallbackList,
        };
    }

    /// <summary>One <c>subset_selectors</c> entry: keys and fallback keys sorted, as Envoy keeps them.</summary>
    internal sealed record Selector(ImmutableArray<string> Keys, SelectorFallbackPolicy Fallback, ImmutableArray<string> FallbackKeys, bool SingleHostPerSubset);
}
