using System.Collections.Concurrent;
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
    /// <c>Segment</c> marks the regexes of the form <c>^prefix\.((.*?)\.)</c> (0: the value may be
    /// empty) or <c>^prefix\.((.+?)\.)</c> (1): their match is the prefix and the text up to the next
    /// dot, found without the regex (a Match and its groups were most of what creating a cluster's
    /// stats allocated); -1: run the regex.
    /// </summary>
    private static readonly (string Tag, string Regex, string? Prefix, string? Substring, int Segment)[] Defaults =
    [
        ("envoy.cluster_name", @"^cluster\.((.*?)\.)", "cluster.", null, 0),
        ("envoy.http_conn_manager_prefix", @"^http\.((.*?)\.)", "http.", null, 0),
        ("envoy.response_code", @"_rq(_(\d{3}))$", null, "_rq_", -1),
        ("envoy.response_code_class", @"_rq_((\d))xx$", null, "_rq_", -1),
        ("envoy.listener_address", @"^listener\.(((?:[_.\d]*|[_\[\]aAbBcCdDeEfF\d]*))\.)", "listener.", null, -1),
        ("envoy.worker_id", @"^listener_manager\.((worker_\d+)\.)", "listener_manager.worker_", null, -1),
        ("envoy.virtual_host", @"^vhost\.((.+?)\.)", "vhost.", null, 1),
        ("envoy.tcp_prefix", @"^tcp\.((.*?)\.)\w+?$", "tcp.", null, -1),
    ];

    private readonly (string Tag, Regex Regex, string? Prefix, string? Substring, int Segment)[] _extractors;
    private readonly StatTag[] _fixed;

    // The last value each extractor produced: a cluster's ~100 stats share one cluster-name string.
    private readonly string?[] _lastValues;

    // Tag-extracted names are few (cluster.upstream_rq_total for every cluster): one string each.
    private readonly ConcurrentDictionary<string, string> _extractedNames = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _extractedNameLookup;

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
        var extractors = new List<(string, Regex, string?, string?, int)>();
        foreach (var (tag, regex) in options.RegexTags)
        {
            if (regex is not null)
            {
                // An operator's own regex: no hint, always run.
                extractors.Add((tag, regex, null, null, -1));
                continue;
            }

            var known = Array.Find(Defaults, d => d.Tag == tag);
            extractors.Add((tag, new Regex(known.Regex, RegexOptions.CultureInvariant | RegexOptions.Compiled), known.Prefix, known.Substring, known.Segment));
        }

        if (options.UseAllDefaultTags)
        {
            foreach (var (tag, pattern, prefix, substring, segment) in Defaults)
            {
                if (!extractors.Exists(e => e.Item1 == tag))
                {
                    extractors.Add((tag, new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled), prefix, substring, segment));
                }
            }
        }

        _extractors = extractors.ToArray();
        _fixed = [.. options.FixedTags];
        _lastValues = new string?[_extractors.Length];
        _extractedNameLookup = _extractedNames.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Whether <paramref name="tag"/> is one of Envoy's default tag names Legate extracts.</summary>
    public static bool IsDefaultTag(string tag) => Array.Exists(Defaults, d => d.Tag == tag);

    /// <summary>Runs every extractor once on the name, each on what the previous ones left.</summary>
    public StatName Extract(string fullName) => Extract("", fullName);

    /// <summary>
    /// <see cref="Extract(string)"/> of the name <paramref name="prefix"/> + <paramref name="suffix"/>,
    /// kept as the two strings. A cluster's stats share their tag array and every tag-extracted name
    /// (also the names left between two extractors) is one shared string, so what the result holds
    /// beyond the two given strings is the <see cref="StatName"/> itself.
    /// </summary>
    public StatName Extract(string prefix, string suffix)
    {
        // The name being cut, as text; its string only when a regex has to read it or it ends up
        // as the tag-extracted name (a cluster stat's joined name is never made: the cluster
        // extractor cuts it first, on the stack).
        var length = prefix.Length + suffix.Length;
        Span<char> joined = length <= 256 ? stackalloc char[length] : new char[length];
        prefix.AsSpan().CopyTo(joined);
        suffix.AsSpan().CopyTo(joined[prefix.Length..]);
        ReadOnlySpan<char> name = joined;
        var nameString = prefix.Length == 0 ? suffix : null;
        var tags = t_scratch ??= new StatTag[16];
        var count = 0;
        for (var i = 0; i < _extractors.Length; i++)
        {
            var (tag, regex, hintPrefix, substring, segment) = _extractors[i];
            if ((hintPrefix is not null && !name.StartsWith(hintPrefix, StringComparison.Ordinal))
                || (substring is not null && !name.Contains(substring, StringComparison.Ordinal)))
            {
                continue;
            }

            int cutIndex, cutLength;
            scoped ReadOnlySpan<char> value;
            if (segment >= 0)
            {
                // ^prefix\.((.*?)\.): the shortest value (at least `segment` chars) followed by a dot.
                var dot = segment < name.Length - hintPrefix!.Length ? name[(hintPrefix.Length + segment)..].IndexOf('.') : -1;
                if (dot < 0)
                {
                    continue;
                }

                cutIndex = hintPrefix.Length;
                cutLength = segment + dot + 1;
                value = name.Slice(cutIndex, cutLength - 1);
            }
            else
            {
                nameString ??= name.ToString();
                var match = regex.Match(nameString);
                if (!match.Success || match.Groups.Count < 3)
                {
                    continue;
                }

                var cut = match.Groups[1];
                (cutIndex, cutLength) = (cut.Index, cut.Length);
                value = match.Groups[2].ValueSpan;
            }

            if (count == tags.Length)
            {
                Array.Resize(ref tags, tags.Length * 2);
                t_scratch = tags;
            }

            tags[count++] = new StatTag(tag, ValueOf(i, value));
            nameString = Intern(name[..cutIndex], name[(cutIndex + cutLength)..]);
            name = nameString;
        }

        if (count == 0)
        {
            return new StatName(prefix, suffix, nameString ?? name.ToString(), _fixed);
        }

        return new StatName(prefix, suffix, nameString!, Shared(tags.AsSpan(0, count)));
    }

    // Per thread: the tags of the name being extracted, before they are known to be new.
    [ThreadStatic]
    private static StatTag[]? t_scratch;

    // The last tag array handed out: the next stat of the same cluster has the same tags.
    private StatTag[]? _lastTags;

    /// <summary>The extracted tags followed by the fixed ones, as the previous stat's array when equal.</summary>
    private StatTag[] Shared(ReadOnlySpan<StatTag> extracted)
    {
        var last = Volatile.Read(ref _lastTags);
        if (last is not null && last.Length == extracted.Length + _fixed.Length && extracted.SequenceEqual(last.AsSpan(0, extracted.Length)))
        {
            // The fixed tags are the same for every stat.
            return last;
        }

        var tags = new StatTag[extracted.Length + _fixed.Length];
        extracted.CopyTo(tags);
        _fixed.CopyTo(tags, extracted.Length);
        Volatile.Write(ref _lastTags, tags);
        return tags;
    }

    private string ValueOf(int extractor, ReadOnlySpan<char> value)
    {
        var last = Volatile.Read(ref _lastValues[extractor]);
        if (last is not null && value.SequenceEqual(last))
        {
            return last;
        }

        var text = value.ToString();
        Volatile.Write(ref _lastValues[extractor], text);
        return text;
    }

    /// <summary>The name <paramref name="head"/> + <paramref name="tail"/> as its shared string, joined on the stack when known.</summary>
    private string Intern(ReadOnlySpan<char> head, ReadOnlySpan<char> tail)
    {
        var length = head.Length + tail.Length;
        var buffer = length <= 256 ? stackalloc char[length] : new char[length];
        head.CopyTo(buffer);
        tail.CopyTo(buffer[head.Length..]);
        if (_extractedNameLookup.TryGetValue(buffer, out var known))
        {
            return known;
        }

        var name = buffer.ToString();
        return _extractedNames.GetOrAdd(name, name);
    }
}
