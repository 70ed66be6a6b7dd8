using System.Text.RegularExpressions;
using Envoy.Type.Matcher.V3;
using Legate.Config;

namespace Legate.Router.Matching;

/// <summary>An <c>envoy.type.matcher.v3.StringMatcher</c>, compiled once.</summary>
internal sealed class CompiledStringMatcher
{
    private readonly StringMatcher.MatchPatternOneofCase _kind;
    private readonly string _value;
    private readonly bool _ignoreCase;
    private readonly Regex? _regex;

    private CompiledStringMatcher(StringMatcher.MatchPatternOneofCase kind, string value, bool ignoreCase, Regex? regex)
    {
        _kind = kind;
        _value = value;
        _ignoreCase = ignoreCase;
        _regex = regex;
    }

    /// <summary>Compiles <paramref name="m"/>, or returns null after adding errors.</summary>
    public static CompiledStringMatcher? Create(StringMatcher m, ConfigErrors errors, string path)
    {
        switch (m.MatchPatternCase)
        {
            case StringMatcher.MatchPatternOneofCase.Exact:
                return new CompiledStringMatcher(m.MatchPatternCase, m.Exact, m.IgnoreCase, null);
            case StringMatcher.MatchPatternOneofCase.Prefix:
                return new CompiledStringMatcher(m.MatchPatternCase, m.Prefix, m.IgnoreCase, null);
            case StringMatcher.MatchPatternOneofCase.Suffix:
                return new CompiledStringMatcher(m.MatchPatternCase, m.Suffix, m.IgnoreCase, null);
            case StringMatcher.MatchPatternOneofCase.Contains:
                return new CompiledStringMatcher(m.MatchPatternCase, m.Contains, m.IgnoreCase, null);
            case StringMatcher.MatchPatternOneofCase.SafeRegex:
                if (m.IgnoreCase)
                {
                    // Envoy refuses this rather than silently ignoring the flag.
                    errors.Add(FieldPath.Field(path, "ignore_case"), "ignore_case has no effect for safe_regex.");
                    return null;
                }

                var regex = RouteRegex.Compile(m.SafeRegex.Regex, errors, FieldPath.Field(FieldPath.Field(path, "safe_regex"), "regex"));
                return regex is null ? null : new CompiledStringMatcher(m.MatchPatternCase, m.SafeRegex.Regex, false, regex);
            case StringMatcher.MatchPatternOneofCase.Custom:
                errors.Add(FieldPath.Field(path, "custom"), "custom string matchers are not supported");
                return null;
            default:
                errors.Add(path, "one of exact, prefix, suffix, contains or safe_regex must be set");
                return null;
        }
    }

    public bool Match(ReadOnlySpan<char> s)
    {
        switch (_kind)
        {
            case StringMatcher.MatchPatternOneofCase.Exact:
                return _ignoreCase ? AsciiCase.Equals(s, _value) : s.SequenceEqual(_value);
            case StringMatcher.MatchPatternOneofCase.Prefix:
                return _ignoreCase ? AsciiCase.StartsWith(s, _value) : s.StartsWith(_value, StringComparison.Ordinal);
            case StringMatcher.MatchPatternOneofCase.Suffix:
                return _ignoreCase ? AsciiCase.EndsWith(s, _value) : s.EndsWith(_value, StringComparison.Ordinal);
            case StringMatcher.MatchPatternOneofCase.Contains:
                return _ignoreCase ? AsciiCase.Contains(s, _value) : s.IndexOf(_value, StringComparison.Ordinal) >= 0;
            default:
                return _regex!.IsMatch(s);
        }
    }

    public override string ToString() => _kind.ToString().ToLowerInvariant() + " '" + _value + "'" + (_ignoreCase ? " (ignore_case)" : string.Empty);
}
