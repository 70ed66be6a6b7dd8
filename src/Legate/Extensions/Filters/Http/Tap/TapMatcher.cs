using Legate.Config;
using Legate.Http.Http1;
using Legate.Router.Matching;
using MatchPredicate = Envoy.Config.Common.Matcher.V3.MatchPredicate;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>What a tap match predicate says of a stream so far.</summary>
internal enum TapMatchResult
{
    NoMatch,
    Match,

    /// <summary>Depends on a part of the stream that has not arrived yet (response headers, trailers).</summary>
    Undecided,
}

/// <summary>
/// A compiled <c>config.common.matcher.v3.MatchPredicate</c> (or the legacy
/// <c>config.tap.v3.MatchPredicate</c>, which has the same shape): any/and/or/not and header
/// matches on request or response headers and trailers. The tree is evaluated against what the
/// stream has seen so far; a leaf whose part has not arrived is <see cref="TapMatchResult.Undecided"/>
/// until the stream ends, when it is a non-match (Envoy's matcher leaves <c>matches_</c> false for
/// data it never saw, so a <c>not_match</c> of it matches).
/// </summary>
internal abstract class TapMatcher
{
    /// <summary>True when a leaf looks at <c>:authority</c> (the request's authority string is then built for it).</summary>
    public bool NeedsAuthority { get; protected init; }

    public abstract TapMatchResult Evaluate(in TapMatchInput input);

    /// <summary>Compiles <paramref name="predicate"/>; null (with errors added) when it has unsupported or invalid parts.</summary>
    public static TapMatcher? Compile(MatchPredicate predicate, string path, ConfigErrors errors)
    {
        switch (predicate.RuleCase)
        {
            case MatchPredicate.RuleOneofCase.AnyMatch:
                if (!predicate.AnyMatch)
                {
                    errors.Add(FieldPath.Field(path, "any_match"), "must be true");
                    return null;
                }

                return AnyMatcher.Instance;
            case MatchPredicate.RuleOneofCase.AndMatch:
            case MatchPredicate.RuleOneofCase.OrMatch:
            {
                var isAnd = predicate.RuleCase == MatchPredicate.RuleOneofCase.AndMatch;
                var setPath = FieldPath.Field(FieldPath.Field(path, isAnd ? "and_match" : "or_match"), "rules");
                var rules = isAnd ? predicate.AndMatch.Rules : predicate.OrMatch.Rules;
                if (rules.Count < 2)
                {
                    errors.Add(setPath, "must have at least 2 items");
                    return null;
                }

                var compiled = new TapMatcher[rules.Count];
                var ok = true;
                for (var i = 0; i < rules.Count; i++)
                {
                    if (Compile(rules[i], FieldPath.Index(setPath, i), errors) is { } rule)
                    {
                        compiled[i] = rule;
                    }
                    else
                    {
                        ok = false;
                    }
                }

                return ok ? new SetMatcher(compiled, isAnd) : null;
            }

            case MatchPredicate.RuleOneofCase.NotMatch:
                return Compile(predicate.NotMatch, FieldPath.Field(path, "not_match"), errors) is { } inner ? new NotMatcher(inner) : null;
            case MatchPredicate.RuleOneofCase.HttpRequestHeadersMatch:
                return HeadersMatcher.Compile(predicate.HttpRequestHeadersMatch.Headers, TapMatchPart.RequestHeaders, FieldPath.Field(path, "http_request_headers_match"), errors);
            case MatchPredicate.RuleOneofCase.HttpRequestTrailersMatch:
                return HeadersMatcher.Compile(predicate.HttpRequestTrailersMatch.Headers, TapMatchPart.RequestTrailers, FieldPath.Field(path, "http_request_trailers_match"), errors);
            case MatchPredicate.RuleOneofCase.HttpResponseHeadersMatch:
                return HeadersMatcher.Compile(predicate.HttpResponseHeadersMatch.Headers, TapMatchPart.ResponseHeaders, FieldPath.Field(path, "http_response_headers_match"), errors);
            case MatchPredicate.RuleOneofCase.HttpResponseTrailersMatch:
                return HeadersMatcher.Compile(predicate.HttpResponseTrailersMatch.Headers, TapMatchPart.ResponseTrailers, FieldPath.Field(path, "http_response_trailers_match"), errors);
            case MatchPredicate.RuleOneofCase.HttpRequestGenericBodyMatch:
                errors.Add(FieldPath.Field(path, "http_request_generic_body_match"), "generic body matching is not supported yet");
                return null;
            case MatchPredicate.RuleOneofCase.HttpResponseGenericBodyMatch:
                errors.Add(FieldPath.Field(path, "http_response_generic_body_match"), "generic body matching is not supported yet");
                return null;
            default:
                errors.Add(path, "one of or_match, and_match, not_match, any_match or an http_*_match rule is required");
                return null;
        }
    }

    private sealed class AnyMatcher : TapMatcher
    {
        public static readonly AnyMatcher Instance = new();

        public override TapMatchResult Evaluate(in TapMatchInput input) => TapMatchResult.Match;
    }

    private sealed class NotMatcher : TapMatcher
    {
        private readonly TapMatcher _inner;

        public NotMatcher(TapMatcher inner)
        {
            _inner = inner;
            NeedsAuthority = inner.NeedsAuthority;
        }

        public override TapMatchResult Evaluate(in TapMatchInput input) => _inner.Evaluate(input) switch
        {
            TapMatchResult.Match => TapMatchResult.NoMatch,
            TapMatchResult.NoMatch => TapMatchResult.Match,
            _ => TapMatchResult.Undecided,
        };
    }

    private sealed class SetMatcher : TapMatcher
    {
        private readonly TapMatcher[] _rules;
        private readonly bool _isAnd;

        public SetMatcher(TapMatcher[] rules, bool isAnd)
        {
            _rules = rules;
            _isAnd = isAnd;
            foreach (var rule in rules)
            {
                NeedsAuthority |= rule.NeedsAuthority;
            }
        }

        public override TapMatchResult Evaluate(in TapMatchInput input)
        {
            // and: one non-match decides; or: one match decides. Otherwise undecided if any rule is.
            var decisive = _isAnd ? TapMatchResult.NoMatch : TapMatchResult.Match;
            var undecided = false;
            foreach (var rule in _rules)
            {
                var result = rule.Evaluate(input);
                if (result == decisive)
                {
                    return decisive;
                }

                undecided |= result == TapMatchResult.Undecided;
            }

            return undecided ? TapMatchResult.Undecided : _isAnd ? TapMatchResult.Match : TapMatchResult.NoMatch;
        }
    }

    private sealed class HeadersMatcher : TapMatcher
    {
        private readonly CompiledHeaderMatcher[] _headers;
        private readonly TapMatchPart _part;

        private HeadersMatcher(CompiledHeaderMatcher[] headers, TapMatchPart part)
        {
            _headers = headers;
            _part = part;
            foreach (var header in headers)
            {
                NeedsAuthority |= part == TapMatchPart.RequestHeaders && header.Name == ":authority";
            }
        }

        public static HeadersMatcher? Compile(
            Google.Protobuf.Collections.RepeatedField<Envoy.Config.Route.V3.HeaderMatcher> headers, TapMatchPart part, string path, ConfigErrors errors)
        {
            var compiled = new CompiledHeaderMatcher[headers.Count];
            var ok = true;
            for (var i = 0; i < headers.Count; i++)
            {
                if (CompiledHeaderMatcher.Create(headers[i], errors, FieldPath.Index(FieldPath.Field(path, "headers"), i)) is { } header)
                {
                    compiled[i] = header;
                }
                else
                {
                    ok = false;
                }
            }

            return ok ? new HeadersMatcher(compiled, part) : null;
        }

        public override TapMatchResult Evaluate(in TapMatchInput input)
        {
            if (!input.TryGetHeaders(_part, out var headers))
            {
                return input.Final ? TapMatchResult.NoMatch : TapMatchResult.Undecided;
            }

            // Every listed header must match (Envoy's HeaderUtility::matchHeaders); an empty list matches.
            foreach (var header in _headers)
            {
                if (!header.Matches(headers))
                {
                    return TapMatchResult.NoMatch;
                }
            }

            return TapMatchResult.Match;
        }
    }
}

/// <summary>The part of a stream a header match looks at.</summary>
internal enum TapMatchPart
{
    RequestHeaders,
    RequestTrailers,
    ResponseHeaders,
    ResponseTrailers,
}
