using System.Text;
using System.Text.RegularExpressions;
using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Router.Matching;

namespace Legate.Router.Actions;

/// <summary>
/// A route's path rewrite (<c>prefix_rewrite</c> or <c>regex_rewrite</c>), for forwarding and for
/// redirects. Envoy's rules: a prefix rewrite swaps the matched prefix (or, for <c>path</c> and
/// <c>safe_regex</c> matches, the whole path) and keeps the rest, query included; a regex rewrite
/// substitutes every match in the path (not the query) and keeps the query.
/// </summary>
internal sealed class PathRewrite
{
    private readonly string? _prefix;
    private readonly int _matchedLength;
    private readonly Regex? _regex;
    private readonly string? _substitution;

    private PathRewrite(string? prefix, int matchedLength, Regex? regex, string? substitution)
    {
        _prefix = prefix;
        _matchedLength = matchedLength;
        _regex = regex;
        _substitution = substitution;
    }

    /// <summary>For messages and explain: what the rewrite does.</summary>
    public string Description => _regex is null
        ? (_matchedLength < 0 ? $"path replaced by \"{_prefix}\"" : $"prefix rewritten to \"{_prefix}\"")
        : $"regex_rewrite /{_regex}/ → \"{_substitution}\"";

    /// <summary>A prefix rewrite for a route matched by <paramref name="match"/>.</summary>
    public static PathRewrite ForPrefix(string replacement, RouteMatch match) => match.PathSpecifierCase switch
    {
        RouteMatch.PathSpecifierOneofCase.Prefix => new PathRewrite(replacement, match.Prefix.Length, null, null),
        RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix => new PathRewrite(replacement, match.PathSeparatedPrefix.Length, null, null),

        // path and safe_regex: the whole path (the query stays).
        _ => new PathRewrite(replacement, -1, null, null),
    };

    public static PathRewrite? ForRegex(Envoy.Type.Matcher.V3.RegexMatchAndSubstitute config, string path, ConfigErrors errors)
    {
        var regex = RouteRegex.CompileSearch(config.Pattern?.Regex ?? string.Empty, errors, FieldPath.Field(FieldPath.Field(path, "pattern"), "regex"));
        return regex is null ? null : new PathRewrite(null, 0, regex, ToDotNetSubstitution(config.Substitution));
    }

    /// <summary>Rewrites <paramref name="pathAndQuery"/> (the :path, query included).</summary>
    public string Apply(string pathAndQuery)
    {
        var queryStart = pathAndQuery.IndexOf('?');
        if (_regex is not null)
        {
            var path = queryStart < 0 ? pathAndQuery : pathAndQuery[..queryStart];
            var rewritten = _regex.Replace(path, _substitution!);
            return queryStart < 0 ? rewritten : string.Concat(rewritten, pathAndQuery.AsSpan(queryStart));
        }

        if (_matchedLength < 0)
        {
            return queryStart < 0 ? _prefix! : string.Concat(_prefix, pathAndQuery.AsSpan(queryStart));
        }

        var keep = Math.Min(_matchedLength, pathAndQuery.Length);
        return string.Concat(_prefix, pathAndQuery.AsSpan(keep));
    }

    /// <summary>RE2's substitution syntax (<c>\1</c>, <c>\\</c>) in .NET's (<c>${1}</c>, <c>$$</c> for a literal dollar).</summary>
    internal static string ToDotNetSubstitution(string substitution)
    {
        var result = new StringBuilder(substitution.Length + 8);
        for (var i = 0; i < substitution.Length; i++)
        {
            var c = substitution[i];
            if (c == '\\' && i + 1 < substitution.Length)
            {
                var next = substitution[i + 1];
                if (char.IsAsciiDigit(next))
                {
                    result.Append("${").Append(next).Append('}');
                    i++;
                    continue;
                }

                if (next == '\\')
                {
                    result.Append('\\');
                    i++;
                    continue;
                }
            }

            result.Append(c == '$' ? "$$" : c.ToString());
        }

        return result.ToString();
    }
}
