using Legate.Router.Matching;

namespace Legate.Lint;

/// <summary>
/// Shadowing analysis for URI-template routes (<c>path_match_policy</c> with Envoy's
/// <c>uri_template_matcher</c>): a template read as its path segments (variables replaced by
/// what they match), and whether every path one pattern matches is matched by another. Only
/// decided when certain: anything this does not model answers "not covered".
/// </summary>
internal static class TemplateCoverage
{
    /// <summary>One path segment of a template: a literal, <c>*</c> (with an optional literal suffix), or <c>**</c> (the rest).</summary>
    internal readonly record struct Segment(SegmentKind Kind, string Text);

    internal enum SegmentKind
    {
        /// <summary>Exactly <see cref="Segment.Text"/> (empty: the segment after a trailing '/').</summary>
        Literal,

        /// <summary>One non-empty segment ending with <see cref="Segment.Text"/> (usually empty).</summary>
        Star,

        /// <summary>The rest of the path, slashes included, possibly empty (a suffix makes it unmodelled).</summary>
        Globstar,
    }

    /// <summary>The template of a route's <c>path_match_policy</c>, or null when it is not a (readable) URI template matcher.</summary>
    public static string? TemplateOf(Envoy.Config.Core.V3.TypedExtensionConfig? policy)
    {
        var config = policy?.TypedConfig;
        if (config is null || !config.Is(Envoy.Extensions.Path.Match.UriTemplate.V3.UriTemplateMatchConfig.Descriptor))
        {
            return null;
        }

        try
        {
            return config.Unpack<Envoy.Extensions.Path.Match.UriTemplate.V3.UriTemplateMatchConfig>().PathTemplate;
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            return null;
        }
    }

    /// <summary>The segments of a valid template, or null (invalid: the load reports it).</summary>
    public static Segment[]? Segments(string template)
    {
        if (UriTemplate.Parse(template, out _, out _) is not null)
        {
            return null;
        }

        var segments = new List<Segment>();
        var parts = template[1..].Split('/');
        for (var p = 0; p < parts.Length; p++)
        {
            var part = parts[p];
            if (part.StartsWith('{'))
            {
                // {name} = *, {name=a/*/**} = its own segments; a suffix may follow the closing brace.
                var close = part.IndexOf('}');
                if (close < 0)
                {
                    // The variable's match spans segments: join them back up to the closing brace.
                    var joined = part;
                    while (close < 0 && ++p < parts.Length)
                    {
                        joined += "/" + parts[p];
                        close = joined.IndexOf('}');
                    }

                    part = joined;
                }

                var body = part[1..close];
                var suffix = part[(close + 1)..];
                var equals = body.IndexOf('=');
                var match = equals < 0 ? ["*"] : body[(equals + 1)..].Split('/');
                for (var m = 0; m < match.Length; m++)
                {
                    segments.Add(Operator(match[m], m == match.Length - 1 ? suffix : string.Empty));
                }
            }
            else if (part.StartsWith('*'))
            {
                var globstar = part.StartsWith("**", StringComparison.Ordinal);
                segments.Add(Operator(globstar ? "**" : "*", part[(globstar ? 2 : 1)..]));
            }
            else
            {
                segments.Add(new Segment(SegmentKind.Literal, part));
            }
        }

        return segments.ToArray();
    }

    private static Segment Operator(string text, string suffix) => text switch
    {
        "**" => new Segment(SegmentKind.Globstar, suffix),
        "*" => new Segment(SegmentKind.Star, suffix),
        _ => new Segment(SegmentKind.Literal, text + suffix),
    };

    /// <summary>True when every path <paramref name="later"/> matches is matched by <paramref name="earlier"/>.</summary>
    public static bool Covers(Segment[] earlier, Segment[] later) => Covers(earlier, 0, later, 0);

    private static bool Covers(Segment[] earlier, int i, Segment[] later, int j)
    {
        for (; i < earlier.Length; i++, j++)
        {
            var e = earlier[i];
            if (e.Kind == SegmentKind.Globstar)
            {
                // "/a/**" takes anything after "/a/", but not "/a" itself: the later path must have a
                // segment here (even an empty one after a trailing '/').
                return i == earlier.Length - 1 && e.Text.Length == 0 && j < later.Length;
            }

            if (j >= later.Length || !SegmentCovers(e, later[j]))
            {
                return false;
            }
        }

        return j == later.Length;
    }

    private static bool SegmentCovers(Segment earlier, Segment later)
    {
        if (later.Kind == SegmentKind.Globstar)
        {
            return false;
        }

        return earlier.Kind switch
        {
            SegmentKind.Literal => later.Kind == SegmentKind.Literal && later.Text == earlier.Text,

            // A non-empty segment ending with the suffix: a literal long enough, or a star whose suffix ends with it.
            SegmentKind.Star => later.Kind == SegmentKind.Literal
                ? later.Text.Length > earlier.Text.Length && later.Text.EndsWith(earlier.Text, StringComparison.Ordinal)
                : later.Text.EndsWith(earlier.Text, StringComparison.Ordinal),
            _ => false,
        };
    }

    /// <summary>
    /// The literal path every match of <paramref name="template"/> starts with when it is
    /// <c>/literal/…/**</c> (then every path with that start matches), else null.
    /// </summary>
    public static string? GlobstarPrefix(Segment[] template)
    {
        if (template.Length == 0 || template[^1] is not { Kind: SegmentKind.Globstar, Text.Length: 0 })
        {
            return null;
        }

        var prefix = "/";
        for (var i = 0; i < template.Length - 1; i++)
        {
            if (template[i].Kind != SegmentKind.Literal || template[i].Text.Length == 0)
            {
                return null;
            }

            prefix += template[i].Text + "/";
        }

        return prefix;
    }
}
