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

    private MetadataMatchCriteria(ImmutableArray<(string Name, Value Value)> criteria)
    {
        Criteria = criteria;
        SubsetKey = KeyOf(criteria);
    }

    public ImmutableArray<(string Name, Value Value)> Criteria { get; }

    /// <summary>The subset these criteria select: "name=value" pairs in key order (values as JSON).</summary>
    public string SubsetKey { get; }

    /// <summary>The criteria of <c>envoy.lb</c> in <paramref name="metadata"/>, or null when it has none.</summary>
    public static MetadataMatchCriteria? From(Envoy.Config.Core.V3.Metadata? metadata)
    {
        if (metadata is null || !metadata.FilterMetadata.TryGetValue(LbFilter, out var lb) || lb.Fields.Count == 0)
        {
            return null;
        }

        return new MetadataMatchCriteria([.. lb.Fields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => (f.Key, f.Value))]);
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
}
