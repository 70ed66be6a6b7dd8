using System.Globalization;
using System.Text.RegularExpressions;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Type.V3;
using Legate.Config;

namespace Legate.Router.Matching;

/// <summary>
/// One route's <c>match</c>, compiled. Conditions are checked in Envoy's order (path specifier,
/// runtime fraction, headers, query parameters, grpc, tls_context); the result of the route
/// (its action) stays on <see cref="Route"/>.
/// </summary>
internal sealed class CompiledRoute
{
    private readonly Regex? _regex;
    private readonly UriTemplate? _template;
    private readonly uint _fractionNumerator;
    private readonly uint _fractionDenominator;
    private readonly string _fractionRuntimeKey = string.Empty;
    private readonly CompiledHeaderMatcher[] _headers;
    private readonly CompiledQueryParameterMatcher[] _queryParameters;
    private readonly bool _grpc;
    private readonly bool? _tlsPresented;
    private readonly bool? _tlsValidated;

    private CompiledRoute(int index, Route route, Regex? regex, UriTemplate? template, CompiledHeaderMatcher[] headers, CompiledQueryParameterMatcher[] queryParameters)
    {
        _template = template;
        Index = index;
        Route = route;
        var match = route.Match;
        Kind = match.PathSpecifierCase;
        Literal = Kind switch
        {
            RouteMatch.PathSpecifierOneofCase.Prefix => match.Prefix,
            RouteMatch.PathSpecifierOneofCase.Path => match.Path,
            RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix => match.PathSeparatedPrefix,
            RouteMatch.PathSpecifierOneofCase.SafeRegex => match.SafeRegex.Regex,
            RouteMatch.PathSpecifierOneofCase.PathMatchPolicy => template?.Template ?? string.Empty,
            _ => string.Empty,
        };
        CaseSensitive = match.CaseSensitive ?? true;
        _regex = regex;
        _headers = headers;
        _queryParameters = queryParameters;
        _grpc = match.Grpc is not null;
        _tlsPresented = match.TlsContext?.Presented;
        _tlsValidated = match.TlsContext?.Validated;
        if (match.RuntimeFraction is { } fraction)
        {
            var value = fraction.DefaultValue ?? new FractionalPercent();
            _fractionNumerator = value.Numerator;
            _fractionDenominator = Legate.Runtime.RuntimeSnapshot.DenominatorValue(value.Denominator);
            _fractionRuntimeKey = fraction.RuntimeKey;
        }
    }

    /// <summary>Position in the virtual host's route list; lower wins.</summary>
    public int Index { get; }

    public Route Route { get; }

    public string Name => Route.Name;

    public RouteMatch.PathSpecifierOneofCase Kind { get; }

    /// <summary>The prefix, path or path_separated_prefix text (the regex for safe_regex).</summary>
    public string Literal { get; }

    /// <summary>case_sensitive; it has no effect on safe_regex, as in Envoy.</summary>
    public bool CaseSensitive { get; }

    /// <summary>
    /// The literal every matching path starts with, for the index; null when the route has to be
    /// evaluated for every request (connect_matcher, and regexes without a literal start).
    /// </summary>
    public string? IndexKey => Kind switch
    {
        RouteMatch.PathSpecifierOneofCase.Prefix or RouteMatch.PathSpecifierOneofCase.Path or RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix => Literal,
        RouteMatch.PathSpecifierOneofCase.SafeRegex => RouteRegex.LiteralPrefix(Literal),
        RouteMatch.PathSpecifierOneofCase.PathMatchPolicy => _template?.LiteralPrefix,
        _ => null,
    };

    /// <summary>Whether <see cref="IndexKey"/> compares case-sensitively; regexes and URI templates ignore case_sensitive.</summary>
    public bool IndexCaseSensitive => CaseSensitive || Kind is RouteMatch.PathSpecifierOneofCase.SafeRegex or RouteMatch.PathSpecifierOneofCase.PathMatchPolicy;

    public static CompiledRoute? Create(int index, Route route, ConfigErrors errors, string path)
    {
        var matchPath = FieldPath.Field(path, "match");
        var match = route.Match;
        if (match is null)
        {
            errors.Add(matchPath, "value is required");
            return null;
        }

        var before = errors.Errors.Count;
        Regex? regex = null;
        UriTemplate? template = null;
        switch (match.PathSpecifierCase)
        {
            case RouteMatch.PathSpecifierOneofCase.Prefix:
            case RouteMatch.PathSpecifierOneofCase.Path:
            case RouteMatch.PathSpecifierOneofCase.ConnectMatcher:
                break;
            case RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix:
                var psp = match.PathSeparatedPrefix;
                if (psp.Length == 0 || psp[0] != '/' || psp.AsSpan().IndexOfAny('?', '#') >= 0 || (psp.Length > 1 && psp[^1] == '/'))
                {
                    errors.Add(FieldPath.Field(matchPath, "path_separated_prefix"), "path_separated_prefix must start with '/', must not end with '/' and must not contain '?' or '#': '" + psp + "'");
                }

                break;
            case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                regex = RouteRegex.Compile(match.SafeRegex.Regex, errors, FieldPath.Field(FieldPath.Field(matchPath, "safe_regex"), "regex"));
                break;
            case RouteMatch.PathSpecifierOneofCase.PathMatchPolicy:
                template = UriTemplate.FromMatchPolicy(match.PathMatchPolicy, FieldPath.Field(matchPath, "path_match_policy"), errors);
                break;
            default:
                errors.Add(matchPath, "one of prefix, path, safe_regex, connect_matcher, path_separated_prefix or path_match_policy must be set");
                break;
        }

        if (match.DynamicMetadata.Count > 0)
        {
            errors.Add(FieldPath.Field(matchPath, "dynamic_metadata"), "dynamic_metadata route matching is not supported yet");
        }

        if (match.RuntimeFraction is { } rf && rf.DefaultValue is null)
        {
            errors.Add(FieldPath.Field(FieldPath.Field(matchPath, "runtime_fraction"), "default_value"), "value is required");
        }

        var headers = new CompiledHeaderMatcher[match.Headers.Count];
        for (var i = 0; i < headers.Length; i++)
        {
            headers[i] = CompiledHeaderMatcher.Create(match.Headers[i], errors, FieldPath.Index(FieldPath.Field(matchPath, "headers"), i))!;
        }

        var query = new CompiledQueryParameterMatcher[match.QueryParameters.Count];
        for (var i = 0; i < query.Length; i++)
        {
            query[i] = CompiledQueryParameterMatcher.Create(match.QueryParameters[i], errors, FieldPath.Index(FieldPath.Field(matchPath, "query_parameters"), i))!;
        }

        return errors.Errors.Count > before ? null : new CompiledRoute(index, route, regex, template, headers, query);
    }

    public bool Matches(in RouteMatchInput input) => Miss(input, out _) is null;

    /// <summary>
    /// runtime_fraction as Envoy's featureEnabled: the runtime key's value (a percentage or a
    /// FractionalPercent) replaces default_value when the live runtime has it.
    /// </summary>
    private bool FractionSelected(in RouteMatchInput input) =>
        input.Runtime is { } runtime && _fractionRuntimeKey.Length > 0
            ? runtime.FeatureEnabled(_fractionRuntimeKey, _fractionNumerator, _fractionDenominator, input.RandomValue)
            : input.RandomValue % _fractionDenominator < _fractionNumerator;

    /// <summary>Null when the route matches; otherwise the first condition that failed, with a detail for explain.</summary>
    public RouteMissKind? Miss(in RouteMatchInput input, out string detail)
    {
        detail = string.Empty;
        if (!PathMatches(input))
        {
            if (Kind == RouteMatch.PathSpecifierOneofCase.ConnectMatcher)
            {
                detail = "method " + input.Method + " is not CONNECT";
                return RouteMissKind.ConnectMethod;
            }

            detail = DescribePath() + " does not match path '" + input.PathOnly.ToString() + "'";
            return RouteMissKind.Path;
        }

        if (_fractionDenominator != 0 && !FractionSelected(input))
        {
            var runtimeValue = _fractionRuntimeKey.Length > 0 ? input.Runtime?.Get(_fractionRuntimeKey) : null;
            detail = "runtime_fraction " + (runtimeValue is null
                         ? _fractionNumerator.ToString(CultureInfo.InvariantCulture) + "/" + _fractionDenominator.ToString(CultureInfo.InvariantCulture) +
                           " not selected (random value % denominator = " + (input.RandomValue % _fractionDenominator).ToString(CultureInfo.InvariantCulture) + ")"
                         : "runtime key '" + _fractionRuntimeKey + "' = '" + runtimeValue + "' not selected (random value " + input.RandomValue.ToString(CultureInfo.InvariantCulture) + ")");
            return RouteMissKind.RuntimeFraction;
        }

        foreach (var h in _headers)
        {
            if (!h.Evaluate(input, out var seen))
            {
                detail = "header " + h + (seen is null ? " (header missing)" : " (value '" + seen + "')");
                return RouteMissKind.Header;
            }
        }

        foreach (var q in _queryParameters)
        {
            if (!q.Matches(input.Path))
            {
                detail = "query parameter " + q;
                return RouteMissKind.QueryParameter;
            }
        }

        if (_grpc && !IsGrpc(input))
        {
            detail = "content-type is not application/grpc";
            return RouteMissKind.Grpc;
        }

        if ((_tlsPresented is { } presented && presented != input.PeerCertificatePresented) ||
            (_tlsValidated is { } validated && validated != input.PeerCertificateValidated))
        {
            detail = "tls_context: certificate presented=" + (input.PeerCertificatePresented ? "true" : "false") + ", validated=" + (input.PeerCertificateValidated ? "true" : "false");
            return RouteMissKind.TlsContext;
        }

        return null;
    }

    private bool PathMatches(in RouteMatchInput input)
    {
        var path = input.PathOnly;
        switch (Kind)
        {
            case RouteMatch.PathSpecifierOneofCase.Prefix:
                return CaseSensitive ? path.StartsWith(Literal, StringComparison.Ordinal) : AsciiCase.StartsWith(path, Literal);
            case RouteMatch.PathSpecifierOneofCase.Path:
                return CaseSensitive ? path.SequenceEqual(Literal) : AsciiCase.Equals(path, Literal);
            case RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix:
                if (!(CaseSensitive ? path.StartsWith(Literal, StringComparison.Ordinal) : AsciiCase.StartsWith(path, Literal)))
                {
                    return false;
                }

                return path.Length == Literal.Length || path[Literal.Length] == '/';
            case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                return _regex!.IsMatch(path);
            case RouteMatch.PathSpecifierOneofCase.PathMatchPolicy:
                return _template!.IsMatch(path);
            case RouteMatch.PathSpecifierOneofCase.ConnectMatcher:
                return string.Equals(input.Method, "CONNECT", StringComparison.Ordinal);
            default:
                return false;
        }
    }

    /// <summary>Envoy's Grpc::Common::hasGrpcContentType: exactly application/grpc or application/grpc+something.</summary>
    private static bool IsGrpc(in RouteMatchInput input)
    {
        var ct = CompiledHeaderMatcher.HeaderValue(input, "content-type");
        const string Grpc = "application/grpc";
        return ct is not null && ct.StartsWith(Grpc, StringComparison.Ordinal) && (ct.Length == Grpc.Length || ct[Grpc.Length] == '+');
    }

    private string DescribePath() => Kind switch
    {
        RouteMatch.PathSpecifierOneofCase.Prefix => "prefix '" + Literal + "'",
        RouteMatch.PathSpecifierOneofCase.Path => "path '" + Literal + "'",
        RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix => "path_separated_prefix '" + Literal + "'",
        RouteMatch.PathSpecifierOneofCase.SafeRegex => "safe_regex '" + Literal + "'",
        RouteMatch.PathSpecifierOneofCase.PathMatchPolicy => "path_template '" + Literal + "'",
        _ => Kind.ToString(),
    } + (CaseSensitive || Kind is RouteMatch.PathSpecifierOneofCase.SafeRegex or RouteMatch.PathSpecifierOneofCase.PathMatchPolicy ? string.Empty : " (case-insensitive)");
}
