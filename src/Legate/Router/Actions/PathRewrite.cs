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

    // path_rewrite_policy (URI template): the route's match template and the rewrite's pieces,
    // each a literal or (Variable = true) the name of a captured variable.
    private readonly UriTemplate? _template;
    private readonly (string Text, bool Variable)[]? _templateRewrite;

    private PathRewrite(string? prefix, int matchedLength, Regex? regex, string? substitution)
    {
        _prefix = prefix;
        _matchedLength = matchedLength;
        _regex = regex;
        _substitution = substitution;
    }

    private PathRewrite(UriTemplate template, (string Text, bool Variable)[] rewrite, string text)
    {
        _template = template;
        _templateRewrite = rewrite;
        _prefix = text;
    }

    /// <summary>For messages and explain: what the rewrite does.</summary>
    public string Description => _template is not null
        ? $"path_template_rewrite \"{_prefix}\" (variables of \"{_template.Template}\")"
        : _regex is null
        ? (_matchedLength < 0 ? $"path replaced by \"{_prefix}\"" : $"prefix rewritten to \"{_prefix}\"")
        : $"regex_rewrite /{_regex}/ → \"{_substitution}\"";

    /// <summary>
    /// <c>path_rewrite_policy</c> with Envoy's <c>envoy.path.rewrite.uri_template.uri_template_rewriter</c>:
    /// <c>path_template_rewrite</c> starts with '/', has no '//', and is literals (path characters and
    /// '/') and <c>{variable}</c>s, each captured by the route's <c>path_match_policy</c> template,
    /// which must be the URI template matcher.
    /// </summary>
    public static PathRewrite? ForTemplate(Envoy.Config.Core.V3.TypedExtensionConfig policy, RouteMatch match, string path, ConfigErrors errors)
    {
        var config = policy.TypedConfig;
        if (config is null || !config.Is(Envoy.Extensions.Path.Rewrite.UriTemplate.V3.UriTemplateRewriteConfig.Descriptor))
        {
            errors.Add(FieldPath.Field(path, "typed_config"), $"path_rewrite_policy '{policy.Name}' ({config?.TypeUrl ?? "no typed_config"}) is not supported: only {UriTemplate.RewriterName} (envoy.extensions.path.rewrite.uri_template.v3.UriTemplateRewriteConfig)");
            return null;
        }

        var text = config.Unpack<Envoy.Extensions.Path.Rewrite.UriTemplate.V3.UriTemplateRewriteConfig>().PathTemplateRewrite;
        var textPath = FieldPath.Field(FieldPath.Field(path, "typed_config"), "path_template_rewrite");
        if (match.PathSpecifierCase != RouteMatch.PathSpecifierOneofCase.PathMatchPolicy)
        {
            errors.Add(path, $"{UriTemplate.RewriterName} needs the route's match to be path_match_policy with {UriTemplate.MatcherName}");
            return null;
        }

        // The match template's own errors are reported by the route matcher.
        var template = UriTemplate.FromMatchPolicy(match.PathMatchPolicy, string.Empty, new ConfigErrors());
        if (template is null)
        {
            return null;
        }

        var pieces = ParseTemplateRewrite(text, template, out var error);
        if (pieces is null)
        {
            errors.Add(textPath, "invalid path_template_rewrite '" + text + "': " + error);
            return null;
        }

        return new PathRewrite(template, pieces, text);
    }

    private static (string Text, bool Variable)[]? ParseTemplateRewrite(string text, UriTemplate template, out string error)
    {
        error = string.Empty;
        if (text.Length == 0 || text[0] != '/')
        {
            error = "it must start with '/'";
            return null;
        }

        if (text.Contains("//", StringComparison.Ordinal))
        {
            error = "'//' is not allowed";
            return null;
        }

        var pieces = new List<(string, bool)>();
        var rest = text.AsSpan();
        while (!rest.IsEmpty)
        {
            var open = rest.IndexOf('{');
            var literal = open < 0 ? rest : rest[..open];
            foreach (var c in literal)
            {
                if (c != '/' && !UriTemplate.IsLiteralChar(c))
                {
                    error = "'" + c + "' is not allowed in the literal '" + literal.ToString() + "'";
                    return null;
                }
            }

            if (!literal.IsEmpty)
            {
                pieces.Add((literal.ToString(), false));
            }

            if (open < 0)
            {
                break;
            }

            rest = rest[(open + 1)..];
            var close = rest.IndexOf('}');
            if (close < 0)
            {
                error = "unmatched '{'";
                return null;
            }

            var name = rest[..close].ToString();
            rest = rest[(close + 1)..];
            if (!UriTemplate.IsVariableName(name))
            {
                error = "invalid variable name '" + name + "'";
                return null;
            }

            if (Array.IndexOf(template.Variables, name) < 0)
            {
                error = "variable '" + name + "' is not captured by path_match_policy's path_template '" + template.Template + "'";
                return null;
            }

            pieces.Add((name, true));
        }

        return pieces.ToArray();
    }

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
        if (_template is not null)
        {
            return ApplyTemplate(pathAndQuery, queryStart);
        }

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

    /// <summary>The rewrite from the path's captured variables, query kept; a path the template does not match stays as it is (Envoy's fallback).</summary>
    private string ApplyTemplate(string pathAndQuery, int queryStart)
    {
        var end = pathAndQuery.AsSpan().IndexOfAny('?', '#');
        var path = end < 0 ? pathAndQuery : pathAndQuery[..end];
        if (_template!.Capture(path) is not { } captured)
        {
            return pathAndQuery;
        }

        var result = new StringBuilder(pathAndQuery.Length + 16);
        foreach (var (text, variable) in _templateRewrite!)
        {
            result.Append(variable ? captured.Groups[text].ValueSpan : text);
        }

        if (queryStart >= 0)
        {
            result.Append(pathAndQuery.AsSpan(queryStart));
        }

        return result.ToString();
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
