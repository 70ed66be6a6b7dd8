using System.Text;
using System.Text.RegularExpressions;
using Legate.Config;

namespace Legate.Router.Matching;

/// <summary>
/// A <c>path_template</c> of Envoy's <c>envoy.path.match.uri_template.uri_template_matcher</c>,
/// compiled to an anchored regex on .NET's non-backtracking engine. Grammar (Envoy's): the
/// template starts with <c>/</c> and is printable ASCII without spaces; segments split by
/// <c>/</c> are a literal (RFC 3986 pchar without <c>*</c> and <c>=</c>), <c>*</c> (one non-empty
/// segment), <c>**</c> (any rest of the path, slashes included, possibly empty), or a variable
/// <c>{name}</c> (= <c>{name=*}</c>) / <c>{name=a/*/**}</c> capturing what its own sub-pattern
/// matches; the last segment may carry a literal suffix (<c>/{file}.txt</c>); nothing that can
/// match may follow <c>**</c>; at most 5 variables, names 1–16 characters
/// (<c>[a-zA-Z][a-zA-Z0-9_]*</c>), each once. The path is matched without its query string.
/// </summary>
internal sealed class UriTemplate
{
    internal const int MaxVariables = 5;
    internal const int MaxVariableNameLength = 16;

    // RFC 3986 pchar without '*' and '=' (sub-delims that the grammar uses); '%' for escapes.
    private const string LiteralClass = @"a-zA-Z0-9\-._~%!$&'()+,;:@";

    private readonly Regex _regex;

    private UriTemplate(string template, Regex regex, string[] variables, string literalPrefix)
    {
        Template = template;
        _regex = regex;
        Variables = variables;
        LiteralPrefix = literalPrefix;
    }

    public string Template { get; }

    /// <summary>The variable names, in template order.</summary>
    public string[] Variables { get; }

    /// <summary>The literal text every matching path starts with (up to the first operator or variable), for the route index.</summary>
    public string LiteralPrefix { get; }

    public bool IsMatch(ReadOnlySpan<char> pathOnly) => _regex.IsMatch(pathOnly);

    /// <summary>The captured variables of <paramref name="pathOnly"/>, or null when it does not match.</summary>
    public Match? Capture(string pathOnly)
    {
        var match = _regex.Match(pathOnly);
        return match.Success ? match : null;
    }

    /// <summary>
    /// The route's <c>match.path_match_policy</c> (at <paramref name="path"/>): Envoy's only
    /// built-in path matcher, the URI template one; anything else is an error.
    /// </summary>
    public static UriTemplate? FromMatchPolicy(Envoy.Config.Core.V3.TypedExtensionConfig policy, string path, ConfigErrors errors)
    {
        var config = policy.TypedConfig;
        if (config is null || !config.Is(Envoy.Extensions.Path.Match.UriTemplate.V3.UriTemplateMatchConfig.Descriptor))
        {
            errors.Add(FieldPath.Field(path, "typed_config"), $"path_match_policy '{policy.Name}' ({config?.TypeUrl ?? "no typed_config"}) is not supported: only {MatcherName} (envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig)");
            return null;
        }

        var template = config.Unpack<Envoy.Extensions.Path.Match.UriTemplate.V3.UriTemplateMatchConfig>().PathTemplate;
        return Compile(template, FieldPath.Field(FieldPath.Field(path, "typed_config"), "path_template"), errors);
    }

    public const string MatcherName = "envoy.path.match.uri_template.uri_template_matcher";

    public const string RewriterName = "envoy.path.rewrite.uri_template.uri_template_rewriter";

    /// <summary>Compiles <paramref name="template"/>; a bad one adds one precise error at <paramref name="path"/> and gives null.</summary>
    public static UriTemplate? Compile(string template, string path, ConfigErrors errors)
    {
        var error = Parse(template, out var regex, out var variables);
        if (error is not null)
        {
            errors.Add(path, "invalid path_template '" + template + "': " + error);
            return null;
        }

        var end = template.AsSpan().IndexOfAny('*', '{');
        var prefix = end < 0 ? template : template[..end];
        return new UriTemplate(template, new Regex(regex!, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant), variables!, prefix);
    }

    /// <summary>Null when valid (with the regex and variable names), else what is wrong.</summary>
    internal static string? Parse(string template, out string? regex, out string[]? variables)
    {
        regex = null;
        variables = null;
        if (template.Length == 0 || template[0] != '/')
        {
            return "it must start with '/'";
        }

        foreach (var c in template)
        {
            if (c <= ' ' || c > '~')
            {
                return "only printable ASCII characters without spaces are allowed";
            }
        }

        var pattern = new StringBuilder(@"\A/");
        var names = new List<string>();
        var sawTextGlob = false;
        var rest = template.AsSpan(1);
        var first = true;
        while (!rest.IsEmpty)
        {
            if (!first)
            {
                pattern.Append('/');
            }

            first = false;
            string? error;
            if (rest[0] == '*')
            {
                var text = rest.StartsWith("**");
                error = Glob(text, pattern, ref sawTextGlob);
                rest = rest[(text ? 2 : 1)..];
            }
            else if (rest[0] == '{')
            {
                error = Variable(ref rest, pattern, names, ref sawTextGlob);
            }
            else
            {
                var slash = rest.IndexOf('/');
                var literal = slash < 0 ? rest : rest[..slash];
                error = Literal(literal, "segment", pattern);
                rest = rest[literal.Length..];
            }

            if (error is not null)
            {
                return error;
            }

            if (rest.IsEmpty)
            {
                break;
            }

            if (rest.SequenceEqual("/"))
            {
                // A trailing '/' is part of the template: "/a/" does not match "/a".
                pattern.Append('/');
                break;
            }

            if (rest[0] == '/')
            {
                rest = rest[1..];
                continue;
            }

            // Text right after an operator or variable: a literal suffix, only at the very end.
            if (rest.IndexOf('/') >= 0)
            {
                return "'" + rest.ToString() + "' follows an operator or variable without a '/': only a literal suffix of the last segment is allowed";
            }

            error = Literal(rest, "suffix", pattern);
            if (error is not null)
            {
                return error;
            }

            break;
        }

        pattern.Append(@"\z");
        regex = pattern.ToString();
        variables = names.ToArray();
        return null;
    }

    private static string? Glob(bool text, StringBuilder pattern, ref bool sawTextGlob)
    {
        if (sawTextGlob)
        {
            return "no operator or variable may follow '**'";
        }

        sawTextGlob = text;
        pattern.Append(text ? "[" + LiteralClass + "/]*" : "[" + LiteralClass + "]+");
        return null;
    }

    private static string? Literal(ReadOnlySpan<char> literal, string what, StringBuilder pattern)
    {
        if (literal.IsEmpty)
        {
            return "empty path segment ('//')";
        }

        foreach (var c in literal)
        {
            if (!IsLiteralChar(c))
            {
                return "'" + c + "' is not allowed in the " + what + " '" + literal.ToString() + "' (literals are RFC 3986 path characters without '*', '=', '{' and '}')";
            }
        }

        pattern.Append(Regex.Escape(literal.ToString()));
        return null;
    }

    private static string? Variable(ref ReadOnlySpan<char> rest, StringBuilder pattern, List<string> names, ref bool sawTextGlob)
    {
        var close = rest.IndexOf('}');
        if (close < 0)
        {
            return "unmatched '{'";
        }

        var body = rest[1..close];
        rest = rest[(close + 1)..];
        var equals = body.IndexOf('=');
        var name = (equals < 0 ? body : body[..equals]).ToString();
        if (!IsVariableName(name))
        {
            return "invalid variable name '" + name + "' (a letter, then letters, digits or '_')";
        }

        if (name.Length > MaxVariableNameLength)
        {
            return "variable name '" + name + "' is longer than " + MaxVariableNameLength + " characters";
        }

        if (names.Contains(name))
        {
            return "variable '" + name + "' is repeated";
        }

        names.Add(name);
        if (names.Count > MaxVariables)
        {
            return "more than " + MaxVariables + " variables";
        }

        pattern.Append("(?<").Append(name).Append('>');
        if (equals < 0)
        {
            var error = Glob(false, pattern, ref sawTextGlob);
            if (error is not null)
            {
                return error;
            }
        }
        else
        {
            var match = body[(equals + 1)..];
            if (match.IsEmpty)
            {
                return "variable '" + name + "' has an empty match after '='";
            }

            var firstPart = true;
            foreach (var range in match.Split('/'))
            {
                var part = match[range];
                if (!firstPart)
                {
                    pattern.Append('/');
                }

                firstPart = false;
                string? error;
                if (part.SequenceEqual("*") || part.SequenceEqual("**"))
                {
                    error = Glob(part.Length == 2, pattern, ref sawTextGlob);
                }
                else if (part.IsEmpty)
                {
                    error = "variable '" + name + "' has an empty segment in its match '" + match.ToString() + "'";
                }
                else
                {
                    error = Literal(part, "variable match", pattern);
                }

                if (error is not null)
                {
                    return error;
                }
            }
        }

        pattern.Append(')');
        return null;
    }

    internal static bool IsVariableName(ReadOnlySpan<char> name)
    {
        if (name.IsEmpty || !char.IsAsciiLetter(name[0]))
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_')
            {
                return false;
            }
        }

        return true;
    }

    internal static bool IsLiteralChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~' or '%' or '!' or '$' or '&' or '\'' or '(' or ')' or '+' or ',' or ';' or ':' or '@';
}
