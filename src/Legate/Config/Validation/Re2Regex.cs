using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;

namespace Legate.Config.Validation;

/// <summary>
/// Compiles the RE2 patterns of <c>(validate.rules).string.pattern</c> into .NET regexes, once
/// per pattern. NonBacktracking gives RE2's linear-time guarantee. The syntax is translated
/// where the two dialects read the same text differently:
/// <list type="bullet">
/// <item><c>$</c> is the end of the text in RE2, but also matches before a final <c>\n</c> in
/// .NET, so <c>^[^\n]*$</c> would accept <c>"a\n"</c>; it becomes <c>\z</c>.</item>
/// <item><c>\d</c>, <c>\w</c>, <c>\s</c> are ASCII-only in RE2, Unicode in .NET.</item>
/// <item><c>[</c> inside a class is literal in RE2, but starts a subtraction in .NET.</item>
/// <item><c>(?P&lt;name&gt;</c>, <c>\pL</c> and <c>\x{41}</c> are RE2 spellings .NET lacks.</item>
/// </list>
/// </summary>
internal static class Re2Regex
{
    private static readonly ConcurrentDictionary<string, Regex?> s_cache = new(StringComparer.Ordinal);

    /// <summary>The compiled pattern, or null when .NET cannot compile it.</summary>
    public static Regex? Get(string pattern) => s_cache.GetOrAdd(pattern, Compile);

    private static Regex? Compile(string pattern)
    {
        try
        {
            return new Regex(Translate(pattern), RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    internal static string Translate(string re2)
    {
        var sb = new StringBuilder(re2.Length + 8);
        var inClass = false;
        var classStart = -1; // index in re2 just after "[" or "[^"
        var multiline = false;
        for (var i = 0; i < re2.Length; i++)
        {
            var c = re2[i];
            if (c == '\\' && i + 1 < re2.Length)
            {
                i = TranslateEscape(re2, i + 1, inClass, sb);
                continue;
            }

            if (inClass)
            {
                if (c == ']' && i != classStart)
                {
                    inClass = false;
                    sb.Append(c);
                }
                else if (c == '[' && PosixClass(re2, i) is { } posix)
                {
                    sb.Append(posix.Replacement);
                    i = posix.Last;
                }
                else if (c == '[')
                {
                    sb.Append("\\[");
                }
                else if (c == ']')
                {
                    sb.Append("\\]"); // a leading ']' is literal in RE2
                }
                else
                {
                    sb.Append(c);
                }

                continue;
            }

            switch (c)
            {
                case '[':
                    inClass = true;
                    sb.Append(c);
                    if (i + 1 < re2.Length && re2[i + 1] == '^')
                    {
                        sb.Append('^');
                        i++;
                    }

                    classStart = i + 1;
                    break;
                case '$':
                    sb.Append(multiline ? "$" : "\\z");
                    break;
                case '(' when string.CompareOrdinal(re2, i, "(?P<", 0, 4) == 0:
                    sb.Append("(?<");
                    i += 3;
                    break;
                case '(' when i + 1 < re2.Length && re2[i + 1] == '?':
                    // A flag group such as (?m) or (?sm:...) switches '$' to end-of-line.
                    var end = i + 2;
                    while (end < re2.Length && char.IsAsciiLetter(re2[end]))
                    {
                        end++;
                    }

                    if (re2.AsSpan(i + 2, end - i - 2).Contains('m'))
                    {
                        multiline = true;
                    }

                    sb.Append(c);
                    break;
                default:
                    sb.Append(c);
                    break;
            }
        }

        return sb.ToString();
    }

    /// <summary>Appends the translation of the escape whose letter is at <paramref name="i"/>; returns the last index used.</summary>
    private static int TranslateEscape(string re2, int i, bool inClass, StringBuilder sb)
    {
        var n = re2[i];
        switch (n)
        {
            case 'd':
                sb.Append(inClass ? "0-9" : "[0-9]");
                return i;
            case 'w':
                sb.Append(inClass ? "0-9A-Za-z_" : "[0-9A-Za-z_]");
                return i;
            case 's':
                sb.Append(inClass ? "\\t\\n\\f\\r " : "[\\t\\n\\f\\r ]");
                return i;
            case 'D' when !inClass:
                sb.Append("[^0-9]");
                return i;
            case 'W' when !inClass:
                sb.Append("[^0-9A-Za-z_]");
                return i;
            case 'S' when !inClass:
                sb.Append("[^\\t\\n\\f\\r ]");
                return i;
            case 'p' or 'P' when i + 1 < re2.Length && re2[i + 1] != '{':
                sb.Append('\\').Append(n).Append('{').Append(re2[i + 1]).Append('}');
                return i + 1;
            case 'x' when i + 1 < re2.Length && re2[i + 1] == '{':
                var close = re2.IndexOf('}', i);
                if (close > 0 && int.TryParse(re2.AsSpan(i + 2, close - i - 2), System.Globalization.NumberStyles.HexNumber, null, out var code) && code <= 0x10FFFF)
                {
                    foreach (var ch in char.ConvertFromUtf32(code))
                    {
                        sb.Append("\\u").Append(((int)ch).ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
                    }

                    return close;
                }

                sb.Append("\\x");
                return i;
            case 'Q':
                // \Q...\E quotes everything up to \E (or the end).
                var stop = re2.IndexOf("\\E", i + 1, StringComparison.Ordinal);
                var literal = stop < 0 ? re2[(i + 1)..] : re2[(i + 1)..stop];
                foreach (var ch in literal)
                {
                    sb.Append(inClass && ch is '[' or ']' or '\\' or '^' or '-' ? "\\" + ch : Regex.Escape(ch.ToString()));
                }

                return stop < 0 ? re2.Length - 1 : stop + 1;
            default:
                sb.Append('\\').Append(n);
                return i;
        }
    }

    /// <summary>RE2's <c>[:alpha:]</c>-style classes inside brackets, which .NET does not know.</summary>
    private static (string Replacement, int Last)? PosixClass(string re2, int i)
    {
        if (i + 1 >= re2.Length || re2[i + 1] != ':')
        {
            return null;
        }

        var end = re2.IndexOf(":]", i + 2, StringComparison.Ordinal);
        if (end < 0)
        {
            return null;
        }

        string? replacement = re2[(i + 2)..end] switch
        {
            "alnum" => "0-9A-Za-z",
            "alpha" => "A-Za-z",
            "ascii" => "\\x00-\\x7F",
            "blank" => "\\t ",
            "cntrl" => "\\x00-\\x1F\\x7F",
            "digit" => "0-9",
            "graph" => "!-~",
            "lower" => "a-z",
            "print" => " -~",
            "punct" => "!-/:-@\\[-`{-~",
            "space" => "\\t\\n\\v\\f\\r ",
            "upper" => "A-Z",
            "word" => "0-9A-Za-z_",
            "xdigit" => "0-9A-Fa-f",
            _ => null,
        };
        return replacement is null ? null : (replacement, end + 1);
    }
}
