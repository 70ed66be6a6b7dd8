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
