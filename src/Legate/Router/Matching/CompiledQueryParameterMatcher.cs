using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Router.Matching;

/// <summary>
/// A <c>config.route.v3.QueryParameterMatcher</c>. Like Envoy, only the first occurrence of a
/// parameter is considered, names and values are percent-decoded ('+' stays '+'), and a missing
/// parameter never matches.
/// </summary>
internal sealed class CompiledQueryParameterMatcher
{
    private readonly CompiledStringMatcher? _stringMatch;
    private readonly bool? _presentMatch;

    private CompiledQueryParameterMatcher(string name, CompiledStringMatcher? stringMatch, bool? presentMatch)
    {
        Name = name;
        _stringMatch = stringMatch;
        _presentMatch = presentMatch;
    }

    public string Name { get; }

    public static CompiledQueryParameterMatcher? Create(QueryParameterMatcher m, ConfigErrors errors, string path)
    {
        if (m.Name.Length == 0)
        {
            errors.Add(FieldPath.Field(path, "name"), "query parameter name must not be empty");
            return null;
        }

        switch (m.QueryParameterMatchSpecifierCase)
        {
            case QueryParameterMatcher.QueryParameterMatchSpecifierOneofCase.StringMatch:
                var sm = CompiledStringMatcher.Create(m.StringMatch, errors, FieldPath.Field(path, "string_match"));
                return sm is null ? null : new CompiledQueryParameterMatcher(m.Name, sm, null);
            case QueryParameterMatcher.QueryParameterMatchSpecifierOneofCase.PresentMatch:
                return new CompiledQueryParameterMatcher(m.Name, null, m.PresentMatch);
            default:
                // No specifier: the parameter only has to be present.
                return new CompiledQueryParameterMatcher(m.Name, null, null);
        }
    }

    /// <summary>Matches against the raw :path (the query string is found and parsed here).</summary>
    public bool Matches(string rawPath)
    {
        var value = FirstValue(rawPath, Name);
        if (value is null)
        {
            return false;
        }

        if (_presentMatch is { } present)
        {
            return present;
        }

        return _stringMatch is null || _stringMatch.Match(value);
    }

    /// <summary>The decoded value of the first <paramref name="name"/> parameter, "" when it has no '=', null when absent.</summary>
    internal static string? FirstValue(string rawPath, string name)
    {
        var q = rawPath.IndexOf('?');
        if (q < 0)
        {
            return null;
        }

        var query = rawPath.AsSpan(q + 1);
        var hash = query.IndexOf('#');
        if (hash >= 0)
        {
            query = query[..hash];
        }

        while (query.Length > 0)
        {
            var amp = query.IndexOf('&');
            var pair = amp < 0 ? query : query[..amp];
            query = amp < 0 ? ReadOnlySpan<char>.Empty : query[(amp + 1)..];
            if (pair.Length == 0)
            {
                continue;
            }

            var eq = pair.IndexOf('=');
            var key = eq < 0 ? pair : pair[..eq];
            if (PercentDecode(key).AsSpan().SequenceEqual(name))
            {
                return eq < 0 ? string.Empty : PercentDecode(pair[(eq + 1)..]);
            }
        }

        return null;
    }

    /// <summary>Decodes %XX escapes; malformed escapes are kept as they are, like Envoy's PercentEncoding::decode.</summary>
    internal static string PercentDecode(ReadOnlySpan<char> s)
    {
        if (s.IndexOf('%') < 0)
        {
            return s.ToString();
        }

        // Escapes decode to UTF-8 bytes, so decode everything as bytes and turn it back into text once.
        var bytes = new List<byte>(s.Length);
        var i = 0;
        while (i < s.Length)
        {
            if (s[i] == '%' && i + 2 < s.Length && IsHex(s[i + 1]) && IsHex(s[i + 2]))
            {
                bytes.Add((byte)((HexValue(s[i + 1]) << 4) | HexValue(s[i + 2])));
                i += 3;
                continue;
            }

            // Copy the run up to the next '%' (or a lone '%') as UTF-8.
            var next = s[(i + 1)..].IndexOf('%');
            var run = next < 0 ? s[i..] : s.Slice(i, next + 1);
            bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(run.ToArray()));
            i += run.Length;
        }

        return System.Text.Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    public override string ToString() =>
        Name + (_presentMatch is { } p ? (p ? " present" : " present_match false") : _stringMatch is null ? " present" : " " + _stringMatch);
}
