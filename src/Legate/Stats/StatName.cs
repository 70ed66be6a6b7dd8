namespace Legate.Stats;

/// <summary>One extracted tag, e.g. <c>envoy.cluster_name</c> = <c>foo</c>.</summary>
internal readonly record struct StatTag(string Name, string Value);

/// <summary>
/// A stat's full Envoy name (<c>cluster.foo.upstream_rq_200</c>) with, computed once at creation, its
/// tag-extracted name (<c>cluster.upstream_rq</c>) and tags, which the Prometheus output needs.
/// </summary>
internal sealed record StatName(string Full, string TagExtracted, IReadOnlyList<StatTag> Tags)
{
    public override string ToString() => Full;
}
