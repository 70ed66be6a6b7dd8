using System.Globalization;
using System.Text.RegularExpressions;
using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Router.Matching;

// The deprecated exact_match/prefix_match/... forms are still accepted by Envoy, so they are read here.
#pragma warning disable CS0612

/// <summary>
/// A <c>config.route.v3.HeaderMatcher</c>, with Envoy's semantics: all values of the header are
/// joined with ","; a missing header matches only a present_match that expects absence (or its
/// inversion), unless treat_missing_header_as_empty makes it the empty string.
/// </summary>
internal sealed class CompiledHeaderMatcher
{
    private readonly HeaderMatcher.HeaderMatchSpecifierOneofCase _kind;
    private readonly string _value;
    private readonly Regex? _regex;
    private readonly CompiledStringMatcher? _stringMatch;
    private readonly long _rangeStart;
    private readonly long _rangeEnd;
    private readonly bool _present;

    private CompiledHeaderMatcher(HeaderMatcher m, CompiledStringMatcher? stringMatch, Regex? regex)
    {
        Name = AsciiCase.Lower(m.Name);
        _kind = m.HeaderMatchSpecifierCase;
        InvertMatch = m.InvertMatch;
        TreatMissingAsEmpty = m.TreatMissingHeaderAsEmpty;
        _stringMatch = stringMatch;
        _regex = regex;
        _value = _kind switch
        {
            HeaderMatcher.HeaderMatchSpecifierOneofCase.ExactMatch => m.ExactMatch,
            HeaderMatcher.HeaderMatchSpecifierOneofCase.PrefixMatch => m.PrefixMatch,
            HeaderMatcher.HeaderMatchSpecifierOneofCase.SuffixMatch => m.SuffixMatch,
            HeaderMatcher.HeaderMatchSpecifierOneofCase.ContainsMatch => m.ContainsMatch,
            HeaderMatcher.HeaderMatchSpecifierOneofCase.SafeRegexMatch => m.SafeRegexMatch.Regex,
            _ => string.Empty,
        };
        if (_kind == HeaderMatcher.HeaderMatchSpecifierOneofCase.RangeMatch)
        {
            _rangeStart = m.RangeMatch.Start;
            _rangeEnd = m.RangeMatch.End;
        }

        // With no specifier at all Envoy checks presence.
        _present = _kind switch
        {
            HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch => m.PresentMatch,
            HeaderMatcher.HeaderMatchSpecifierOneofCase.None => true,
            _ => false,
        };
        if (_kind == HeaderMatcher.HeaderMatchSpecifierOneofCase.None)
        {
            _kind = HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch;
        }
    }

    public string Name { get; }

    public bool InvertMatch { get; }

    public bool TreatMissingAsEmpty { get; }

    public static CompiledHeaderMatcher? Create(HeaderMatcher m, ConfigErrors errors, string path)
    {
        if (m.Name.Length == 0)
        {
            errors.Add(FieldPath.Field(path, "name"), "header name must not be empty");
            return null;
        }

        switch (m.HeaderMatchSpecifierCase)
        {
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.StringMatch:
                var sm = CompiledStringMatcher.Create(m.StringMatch, errors, FieldPath.Field(path, "string_match"));
                return sm is null ? null : new CompiledHeaderMatcher(m, sm, null);
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.SafeRegexMatch:
                var regex = RouteRegex.Compile(m.SafeRegexMatch.Regex, errors, FieldPath.Field(FieldPath.Field(path, "safe_regex_match"), "regex"));
                return regex is null ? null : new CompiledHeaderMatcher(m, null, regex);
            default:
                return new CompiledHeaderMatcher(m, null, null);
        }
    }

    public bool Matches(in RouteMatchInput input) => Evaluate(input, out _);

    /// <summary>Evaluates the matcher; <paramref name="seen"/> is the header value looked at (null when missing).</summary>
    public bool Evaluate(in RouteMatchInput input, out string? seen)
    {
        seen = HeaderValue(input, Name);
        if (seen is null && !TreatMissingAsEmpty)
        {
            return _kind == HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch && _present == InvertMatch;
        }

        var value = seen ?? string.Empty;
        bool match;
        switch (_kind)
        {
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.ExactMatch:
                // An empty exact_match accepts any value, as in Envoy.
                match = _value.Length == 0 || string.Equals(value, _value, StringComparison.Ordinal);
                break;
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.PrefixMatch:
                match = value.StartsWith(_value, StringComparison.Ordinal);
                break;
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.SuffixMatch:
                match = value.EndsWith(_value, StringComparison.Ordinal);
                break;
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.ContainsMatch:
                match = value.Contains(_value, StringComparison.Ordinal);
                break;
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.SafeRegexMatch:
                match = _regex!.IsMatch(value);
                break;
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.RangeMatch:
                // absl::SimpleAtoi: optional sign, digits, surrounding whitespace allowed; range is [start, end).
                match = long.TryParse(value.AsSpan().Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= _rangeStart && n < _rangeEnd;
                break;
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.StringMatch:
                match = _stringMatch!.Match(value);
                break;
            default:
                match = _present;
                break;
        }

        return match != InvertMatch;
    }

    /// <summary>The header's values joined with ",", or null when absent. Pseudo-headers come from the input.</summary>
    internal static string? HeaderValue(in RouteMatchInput input, string name)
    {
        switch (name)
        {
            case ":method":
                return input.Method;
            case ":path":
                return input.Path;
            case ":authority":
            case "host":
                if (input.Headers is null || input.Headers.Count(name) == 0)
                {
                    return input.Authority.Length == 0 ? null : input.Authority;
                }

                break;
        }

        var headers = input.Headers;
        if (headers is null)
        {
            return null;
        }

        var count = headers.Count(name);
        if (count == 0)
        {
            return null;
        }

        if (count == 1)
        {
            return headers.Get(name, 0);
        }

        var joined = headers.Get(name, 0);
        for (var i = 1; i < count; i++)
        {
            joined = string.Concat(joined, ",", headers.Get(name, i));
        }

        return joined;
    }

    public override string ToString()
    {
        var what = _kind switch
        {
            HeaderMatcher.HeaderMatchSpecifierOneofCase.ExactMatch => "exact_match '" + _value + "'",
            HeaderMatcher.HeaderMatchSpecifierOneofCase.PrefixMatch => "prefix_match '" + _value + "'",
            HeaderMatcher.HeaderMatchSpecifierOneofCase.SuffixMatch => "suffix_match '" + _value + "'",
            HeaderMatcher.HeaderMatchSpecifierOneofCase.ContainsMatch => "contains_match '" + _value + "'",
            HeaderMatcher.HeaderMatchSpecifierOneofCase.SafeRegexMatch => "safe_regex_match '" + _value + "'",
            HeaderMatcher.HeaderMatchSpecifierOneofCase.RangeMatch => "range_match [" + _rangeStart.ToString(CultureInfo.InvariantCulture) + ", " + _rangeEnd.ToString(CultureInfo.InvariantCulture) + ")",
            HeaderMatcher.HeaderMatchSpecifierOneofCase.StringMatch => "string_match " + _stringMatch,
            _ => _present ? "present" : "absent",
        };
        return Name + " " + what + (InvertMatch ? " (inverted)" : string.Empty);
    }
}
