using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text;
using Google.Protobuf.WellKnownTypes;

namespace Legate.Upstream;

/// <summary>
/// A route's <c>metadata_match</c> (<c>filter_metadata["envoy.lb"]</c>): the key/value pairs a host
/// must carry to be in the subset the request asks for, sorted by key as Envoy sorts them, with
/// the subset's lookup key computed once (<see cref="SubsetKey"/>).
/// </summary>
internal sealed class MetadataMatchCriteria
{
    public const string LbFilter = "envoy.lb";

    /// <summary>The key <c>metadata_fallback_policy: FALLBACK_LIST</c> reads its variants from.</summary>
    public const string FallbackListKey = "fallback_list";

    // KEYS_SUBSET fallbacks, by the selector's fallback_keys_subset array (compared by reference):
    // computed once per route and selector, not per request.
    private ConcurrentDictionary<ImmutableArray<string>, MetadataMatchCriteria?>? _filtered;
    private FallbackVariants? _fallbackList;

    private MetadataMatchCriteria(ImmutableArray<(string Name, Value Value)> criteria)
    {
        Criteria = criteria;
        SubsetKey = KeyOf(criteria);
        var names = new StringBuilder();
        foreach (var (name, _) in criteria)
        {
            names.Append(name).Append('\n');
        }

        NamesKey = names.ToString();
    }

    public ImmutableArray<(string Name, Value Value)> Criteria { get; }

    /// <summary>The subset these criteria select: "name=value" pairs in key order (values as JSON).</summary>
    public string SubsetKey { get; }

    /// <summary>The criteria's names in key order, one per line: the selector whose keys they are.</summary>
    public string NamesKey { get; }

    /// <summary>The criteria of <c>envoy.lb</c> in <paramref name="metadata"/>, or null when it has none.</summary>
    public static MetadataMatchCriteria? From(Envoy.Config.Core.V3.Metadata? metadata)
    {
        if (metadata is null || !metadata.FilterMetadata.TryGetValue(LbFilter, out var lb) || lb.Fields.Count == 0)
        {
            return null;
        }

        return new MetadataMatchCriteria([.. lb.Fields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => (f.Key, f.Value))]);
    }

    /// <summary>
    /// A weighted cluster's criteria (Envoy's mergeMatchCriteria): the route's, with the cluster's
    /// <c>envoy.lb</c> values added and replacing the route's for the same keys.
    /// </summary>
    public static MetadataMatchCriteria? Merge(MetadataMatchCriteria? route, Envoy.Config.Core.V3.Metadata? cluster)
    {
        if (cluster is null || !cluster.FilterMetadata.TryGetValue(LbFilter, out var lb) || lb.Fields.Count == 0)
        {
            return route;
        }

        return route is null ? From(cluster) : route.MergedWith(lb);
    }

    /// <summary>These criteria with <paramref name="overrides"/>' fields added or replacing the same keys.</summary>
    public MetadataMatchCriteria MergedWith(Struct overrides)
    {
        var merged = new SortedDictionary<string, Value>(StringComparer.Ordinal);
        foreach (var (name, value) in Criteria)
        {
            merged[name] = value;
        }

        foreach (var (name, value) in overrides.Fields)
        {
            merged[name] = value;
        }

        return new MetadataMatchCriteria([.. merged.Select(f => (f.Key, f.Value))]);
    }

    /// <summary>
    /// Only the criteria named in <paramref name="names"/> (sorted), as Envoy's filterMatchCriteria;
    /// null when none is left. Cached per <paramref name="names"/> array.
    /// </summary>
    public MetadataMatchCriteria? Filter(ImmutableArray<string> names)
    {
        var cache = _filtered ?? Interlocked.CompareExchange(ref _filtered, new(), null) ?? _filtered;
        return cache.GetOrAdd(names, static (keys, self) =>
        {
            var kept = self.Criteria.Where(c => keys.Contains(c.Name)).ToImmutableArray();
            return kept.IsEmpty ? null : new MetadataMatchCriteria(kept);
        }, this);
    }

    /// <summary>
    /// For <c>metadata_fallback_policy: FALLBACK_LIST</c>: the criteria to try in order (each
    /// <c>fallback_list</c> struct merged over these criteria without <c>fallback_list</c>, or just
    /// the latter when the list is empty), or null when there is no <c>fallback_list</c> list.
    /// </summary>
    public ImmutableArray<MetadataMatchCriteria?>? FallbackList()
    {
        var list = _fallbackList;
        if (list is null)
        {
            list = new FallbackVariants(ComputeFallbackList());
            _fallbackList = list;
        }

        return list.Variants;
    }

    private ImmutableArray<MetadataMatchCriteria?>? ComputeFallbackList()
    {
        var at = -1;
        for (var i = 0; i < Criteria.Length; i++)
        {
            if (Criteria[i].Name == FallbackListKey)
            {
                at = i;
            }
        }

        if (at < 0)
        {
            return null;
        }

        var rest = Criteria.RemoveAt(at);
        var without = rest.IsEmpty ? null : new MetadataMatchCriteria(rest);
        // A value that is not a list is an empty one to Envoy: the criteria without it.
        var values = Criteria[at].Value.ListValue?.Values;
        if (values is null || values.Count == 0)
        {
            return [without];
        }

        var variants = ImmutableArray.CreateBuilder<MetadataMatchCriteria?>(values.Count);
        foreach (var value in values)
        {
            var overrides = value.KindCase == Value.KindOneofCase.StructValue ? value.StructValue : new Struct();
            var merged = without is null ? new MetadataMatchCriteria([]).MergedWith(overrides) : without.MergedWith(overrides);
            variants.Add(merged.Criteria.IsEmpty ? null : merged);
        }

        return variants.MoveToImmutable();
    }

    /// <summary>The subset key of <paramref name="pairs"/> (already in key order).</summary>
    public static string KeyOf(IEnumerable<(string Name, Value Value)> pairs)
    {
        var key = new StringBuilder();
        foreach (var (name, value) in pairs)
        {
            key.Append(name).Append('=').Append(value.ToString()).Append('\n');
        }

        return key.ToString();
    }

    private sealed class FallbackVariants(ImmutableArray<MetadataMatchCriteria?>? variants)
    {
        public ImmutableArray<MetadataMatchCriteria?>? Variants { get; } = variants;
    }
}
