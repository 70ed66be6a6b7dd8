using System.Text.RegularExpressions;
using Legate.Config.Validation;

namespace Legate.Router.Matching;

/// <summary>
/// Compiles the RE2 patterns of route and header matchers. Envoy full-matches them
/// (RE2::FullMatch), so the translated pattern is anchored at both ends. NonBacktracking keeps
/// RE2's linear time, and the constructs RE2 refuses (and NonBacktracking cannot run) are
/// rejected up front with RE2's own wording instead of .NET's exception text.
/// </summary>
internal static class RouteRegex
{
    /// <summary>The compiled full-match regex, or null after adding an error at <paramref name="path"/>.</summary>
    public static Regex? Compile(string pattern, Legate.Config.ConfigErrors errors, string path)
    {
        if (Unsupported(pattern) is { } reason)
        {
            errors.Add(path, "invalid regex '" + pattern + "': " + reason);
            return null;
        }

        try
        {
            return new Regex(@"\A(?:" + Re2Regex.Translate(pattern) + @")\z", RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            errors.Add(path, "invalid regex '" + pattern + "': " + e.Message);
            return null;
        }
    }

    /// <summary>
    /// The same pattern unanchored, for substitutions (RE2::GlobalReplace in regex_rewrite and
    /// host_rewrite_path_regex replaces every match, not a full match).
    /// </summary>
    public static Regex? CompileSearch(string pattern, Legate.Config.ConfigErrors errors, string path)
    {
        if (Unsupported(pattern) is { } reason)
        {
            errors.Add(path, "invalid regex '" + pattern + "': " + reason);
            return null;
        }

        try
        {
            return new Regex(Re2Regex.Translate(pattern), RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            errors.Add(path, "invalid regex '" + pattern + "': " + e.Message);
            return null;
        }
    }

    /// <summary>RE2's error for a construct it does not support, or null.</summary>
    internal static string? Unsupported(string pattern)
    {
        var inClass = false;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                var n = pattern[i + 1];
                if (!inClass && (n is >= '1' and <= '9' || n == 'k'))
                {
                    return "invalid escape sequence: \\" + n; // backreferences
                }

                i++;
                continue;
            }

            if (inClass)
            {
                inClass = c != ']';
                continue;
            }

            if (c == '[')
            {
                inClass = true;
                if (i + 1 < pattern.Length && pattern[i + 1] == '^')
                {
                    i++;
                }

                if (i + 1 < pattern.Length && pattern[i + 1] == ']')
                {
                    i++; // a leading ']' is literal
                }

                continue;
            }

            if (c == '(' && i + 2 < pattern.Length && pattern[i + 1] == '?')
            {
                var op = pattern[i + 2];
                if (op is '=' or '!' or '>' or '(' || (op == '<' && i + 3 < pattern.Length && pattern[i + 3] is '=' or '!'))
                {
                    return "invalid perl operator: " + pattern.Substring(i, op == '<' ? 4 : 3);
                }
            }

            if (c is '*' or '+' or '?' or '}' && i + 1 < pattern.Length && pattern[i + 1] == '+')
            {
                return "bad repetition operator: " + pattern.Substring(i, 2); // possessive quantifiers
            }
        }

        return null;
    }

    /// <summary>
    /// The plain text every full match of <paramref name="pattern"/> starts with, or null, so the
    /// route index can skip the regex for paths that cannot match. Deliberately conservative: any
    /// alternation gives up, and a literal followed by a quantifier loses that last character.
    /// </summary>
    internal static string? LiteralPrefix(string pattern)
    {
        if (pattern.Contains('|'))
        {
            return null;
        }

        var end = 0;
        while (end < pattern.Length && (char.IsAsciiLetterOrDigit(pattern[end]) || pattern[end] is '/' or '-' or '_' or '~' or '%' or '=' or ',' or ';' or ':' or '@' or '&' or '!' or '\'' or '<' or '>' or '"'))
        {
            end++;
        }

        if (end < pattern.Length && pattern[end] is '*' or '+' or '?' or '{')
        {
            end--;
        }

        return end <= 0 ? null : pattern[..end];
    }
}
