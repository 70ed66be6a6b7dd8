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
    /// <summary>Envoy's tag names and regexes, in Envoy's order (which is also the label order).</summary>
    private static readonly (string Tag, string Regex)[] Defaults =
    [
        ("envoy.cluster_name", @"^cluster\.((.*?)\.)"),
        ("envoy.http_conn_manager_prefix", @"^http\.((.*?)\.)"),
        ("envoy.response_code", @"_rq(_(\d{3}))$"),
        ("envoy.response_code_class", @"_rq_((\d))xx$"),
        ("envoy.listener_address", @"^listener\.(((?:[_.\d]*|[_\[\]aAbBcCdDeEfF\d]*))\.)"),
        ("envoy.worker_id", @"^listener_manager\.((worker_\d+)\.)"),
        ("envoy.virtual_host", @"^vhost\.((.+?)\.)"),
        ("envoy.tcp_prefix", @"^tcp\.((.*?)\.)\w+?$"),
    ];

    private readonly (string Tag, Regex Regex)[] _extractors;
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
        var extractors = new List<(string, Regex)>();
        foreach (var (tag, regex) in options.RegexTags)
        {
            var pattern = regex?.ToString() ?? Array.Find(Defaults, d => d.Tag == tag).Regex;
            extractors.Add((tag, regex ?? new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled)));
        }

        if (options.UseAllDefaultTags)
        {
            foreach (var (tag, pattern) in Defaults)
            {
                if (!extractors.Exists(e => e.Item1 == tag))
                {
                    extractors.Add((tag, new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled)));
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
        foreach (var (tag, regex) in _extractors)
        {
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
