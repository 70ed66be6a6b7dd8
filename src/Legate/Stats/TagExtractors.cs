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

    public TagExtractors(bool useAllDefaultTags)
    {
        _extractors = useAllDefaultTags
            ? Defaults.Select(d => (d.Tag, new Regex(d.Regex, RegexOptions.CultureInvariant | RegexOptions.Compiled))).ToArray()
            : [];
    }

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

        return new StatName(fullName, name, tags);
    }
}
