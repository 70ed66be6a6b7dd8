using System.Text.RegularExpressions;

namespace Legate.Stats;

/// <summary>
/// Envoy's default tag extractors (<c>stats_config.use_all_default_tags</c>). Each is a regex whose
/// first capture group is cut out of the name and whose second capture group is the tag's value,
/// e.g. <c>^cluster\.((.*?)\.)</c> turns <c>cluster.foo.upstream_rq</c> into <c>cluster.upstream_rq</c>
/// with <c>envoy.cluster_name=foo</c>. Adding a family is one line in <see cref="Defaults"/>.
/// </summary>
internal sealed class TagExtractors
{
    /// <summary>
    /// Envoy's tag names and regexes, in Envoy's order (which is also the label order), each with
    /// a literal that a name must start with or contain for the regex to match (Envoy's extractor
    /// prefix and substring hints): most regexes are then never run for a name. Creating the
    /// ~100 stats of each of 1,000 CDS clusters ran all eight regexes on every name.
    /// </summary>
    private static readonly (string Tag, string Regex, string? Prefix, string? Substring)[] Defaults =
    [
        ("envoy.cluster_name", @"^cluster\.((.*?)\.)", "cluster.", null),
        ("envoy.http_conn_manager_prefix", @"^http\.((.*?)\.)", "http.", null),
        ("envoy.response_code", @"_rq(_(\d{3}))$", null, "_rq_"),
        ("envoy.response_code_class", @"_rq_((\d))xx$", null, "_rq_"),
        ("envoy.listener_address", @"^listener\.(((?:[_.\d]*|[_\[\]aAbBcCdDeEfF\d]*))\.)", "listener.", null),
        ("envoy.worker_id", @"^listener_manager\.((worker_\d+)\.)", "listener_manager.worker_", null),
        ("envoy.virtual_host", @"^vhost\.((.+?)\.)", "vhost.", null),
        ("envoy.tcp_prefix", @"^tcp\.((.*?)\.)\w+?$", "tcp.", null),
    ];

    private readonly (string Tag, Regex Regex, string? Prefix, string? Substring)[] _extractors;
    private readonly StatTag[] _fixed;

    public TagExtractors(bool useAllDefaultTags)
        : this(new StatsOptions { UseAllDefaultTags = useAllDefaultTags })
    {
    }

    /// <summary>
    /// Custom <c>stats_tags</c> first, in config order (one naming a default tag without a regex
    /// uses the default regex), then the default extractors the custom ones did not replace, as
    /// Envoy's tag producer; fixed-value tags are added to every stat.
    /// </summary>
    public TagExtractors(StatsOptions options)
    {
        var extractors = new List<(string, Regex, string?, string?)>();
        foreach (var (tag, regex) in options.RegexTags)
        {
            if (regex is not null)
            {
                // An operator's own regex: no hint, always run.
                extractors.Add((tag, regex, null, null));
                continue;
            }

            var known = Array.Find(Defaults, d => d.Tag == tag);
            extractors.Add((tag, new Regex(known.Regex, RegexOptions.CultureInvariant | RegexOptions.Compiled), known.Prefix, known.Substring));
        }

        if (options.UseAllDefaultTags)
        {
            foreach (var (tag, pattern, prefix, substring) in Defaults)
            {
                if (!extractors.Exists(e => e.Item1 == tag))
                {
                    extractors.Add((tag, new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled), prefix, substring));
                }
            }
        }

        _extractors = extractors.ToArray();
        _fixed = [.. options.FixedTags];
    }

    /// <summary>Whether <paramref name="tag"/> is one of Envoy's default tag names Legate extracts.</summary>
    public static bool IsDefaultTag(string tag) => Array.Exists(Defaults, d => d.Tag == tag);

    /// <summary>Runs every extractor once on the name, each on what the previous ones left.</summary>
    public StatName Extract(string fullName)
    {
        var name = fullName;
        var tags = new List<StatTag>();
        foreach (var (tag, regex, prefix, substring) in _extractors)
        {
            if ((prefix is not null && !name.StartsWith(prefix, StringComparison.Ordinal))
                || (substring is not null && !name.Contains(substring, StringComparison.Ordinal)))
            {
                continue;
            }

            var match = regex.Match(name);
            if (!match.Success || match.Groups.Count < 3)
            {
                continue;
            }

            var cut = match.Groups[1];
            tags.Add(new StatTag(tag, match.Groups[2].Value));
            name = name.Remove(cut.Index, cut.Length);
        }

        tags.AddRange(_fixed);
        return new StatName(fullName, name, tags);
    }
}
