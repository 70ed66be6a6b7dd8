namespace Legate.Stats;

/// <summary>One extracted tag, e.g. <c>envoy.cluster_name</c> = <c>foo</c>.</summary>
internal readonly record struct StatTag(string Name, string Value);

/// <summary>
/// A stat's full Envoy name (<c>cluster.foo.upstream_rq_200</c>) with, computed once at creation, its
/// tag-extracted name (<c>cluster.upstream_rq</c>) and tags, which the Prometheus output needs.
/// The full name is kept as two shared strings, the scope's prefix (<c>cluster.foo.</c>, one per
/// cluster) and the stat's own suffix (<c>upstream_rq_200</c>, a literal), a small symbol table:
/// a string per stat was a fifth of what a CDS cluster's stats held. <see cref="Full"/> joins them
/// when asked (the admin output and sinks, never the update path).
/// </summary>
internal sealed class StatName
{
    public StatName(string prefix, string suffix, string tagExtracted, IReadOnlyList<StatTag> tags)
    {
        Prefix = prefix;
        Suffix = suffix;
        TagExtracted = tagExtracted;
        Tags = tags;
    }

    /// <summary>The scope part of the name, e.g. <c>cluster.foo.</c>; empty when the name was given whole.</summary>
    public string Prefix { get; }

    /// <summary>The rest of the name.</summary>
    public string Suffix { get; }

    /// <summary>The full name (allocated on each call unless the name was given whole).</summary>
    public string Full => Prefix.Length == 0 ? Suffix : string.Concat(Prefix, Suffix);

    public string TagExtracted { get; }

    public IReadOnlyList<StatTag> Tags { get; }

    public override string ToString() => Full;
}
