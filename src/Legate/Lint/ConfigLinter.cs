using System.Globalization;
using System.Net;
using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Router.Matching;
using Legate.Router.Retry;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Lint;

/// <summary>
/// <c>legate lint</c> (beyond Envoy): configurations that load fine but do not do what their author
/// meant. Conservative: a finding is reported only when it is certain from the config alone.
/// <list type="bullet">
/// <item>LGT001: a route that can never match, because an earlier route of the same virtual host matches everything it would.</item>
/// <item>LGT002: a retry policy without per_try_timeout.</item>
/// <item>LGT003: per_try_timeout × (num_retries + 1) exceeds the route timeout.</item>
/// <item>LGT004: retries on 5xx/reset for a route that matches POST or PATCH by its :method header matcher.</item>
/// <item>LGT005: the admin interface bound to a non-loopback address.</item>
/// <item>LGT006: outlier detection allowed to eject every host of a cluster (max_ejection_percent 100).</item>
/// </list>
/// </summary>
internal static class ConfigLinter
{
    public static List<LintFinding> Lint(Bootstrap bootstrap)
    {
        var findings = new List<LintFinding>();
        LintAdmin(bootstrap, findings);
        var listeners = bootstrap.StaticResources?.Listeners;
        if (listeners is not null)
        {
            for (var l = 0; l < listeners.Count; l++)
            {
                var listener = listeners[l];
                var listenerPath = FieldPath.Index("static_resources.listeners", l);
                for (var c = 0; c < listener.FilterChains.Count; c++)
                {
                    LintChain(listener.FilterChains[c], FieldPath.Index(FieldPath.Field(listenerPath, "filter_chains"), c), findings);
                }

                if (listener.DefaultFilterChain is { } defaultChain)
                {
                    LintChain(defaultChain, FieldPath.Field(listenerPath, "default_filter_chain"), findings);
                }
            }
        }

        var clusters = bootstrap.StaticResources?.Clusters;
        if (clusters is not null)
        {
            for (var i = 0; i < clusters.Count; i++)
            {
                if (clusters[i].OutlierDetection?.MaxEjectionPercent is 100)
                {
                    findings.Add(new LintFinding(
                        "LGT006",
                        FieldPath.Field(FieldPath.Field(FieldPath.Index("static_resources.clusters", i), "outlier_detection"), "max_ejection_percent"),
                        $"cluster '{clusters[i].Name}' may eject every host at once: a bad outlier signal becomes an outage of the whole cluster",
                        "keep max_ejection_percent below 100 (Envoy's default is 10)"));
                }
            }
        }

        return findings;
    }

    /// <summary>Lints one route configuration (RDS resources take this entry too).</summary>
    public static void LintRouteConfiguration(RouteConfiguration config, string path, List<LintFinding> findings)
    {
        for (var v = 0; v < config.VirtualHosts.Count; v++)
        {
            var virtualHost = config.VirtualHosts[v];
            var virtualHostPath = FieldPath.Index(FieldPath.Field(path, "virtual_hosts"), v);
            LintShadowedRoutes(virtualHost, virtualHostPath, findings);
            if (virtualHost.RetryPolicy is { } virtualHostRetry)
            {
                LintRetryPolicy(virtualHostRetry, FieldPath.Field(virtualHostPath, "retry_policy"), null, findings);
            }

            for (var r = 0; r < virtualHost.Routes.Count; r++)
            {
                var route = virtualHost.Routes[r];
                if (route.ActionCase != Route.ActionOneofCase.Route_)
                {
                    continue;
                }

                var routePath = FieldPath.Index(FieldPath.Field(virtualHostPath, "routes"), r);
                var action = route.Route_;
                var timeout = action.Timeout?.ToTimeSpan() ?? Http.RouteEntry.DefaultTimeout;
                var policy = action.RetryPolicy;
                var policyPath = FieldPath.Field(FieldPath.Field(routePath, "route"), "retry_policy");
                if (policy is not null)
                {
                    LintRetryPolicy(policy, policyPath, timeout, findings);
                }
                else if (virtualHost.RetryPolicy is { } inherited)
                {
                    // The virtual host's policy applies to this route: check it against this route's timeout.
                    LintRetryBudget(inherited, FieldPath.Field(virtualHostPath, "retry_policy"), timeout, routePath, findings);
                    policy = inherited;
                    policyPath = FieldPath.Field(virtualHostPath, "retry_policy");
                }

                if (policy is not null)
                {
                    LintNonIdempotentRetries(route, routePath, policy, policyPath, findings);
                }
            }
        }
    }

    private static void LintAdmin(Bootstrap bootstrap, List<LintFinding> findings)
    {
        if (bootstrap.Admin?.Address?.SocketAddress is not { } socket)
        {
            return;
        }

        var address = socket.Address;
        var loopback = string.Equals(address, "localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(address, out var ip) && IPAddress.IsLoopback(ip));
        if (!loopback)
        {
            findings.Add(new LintFinding(
                "LGT005",
                "admin.address.socket_address.address",
                $"the admin interface listens on {address}: anyone who reaches it can read /config_dump and call /quitquitquit",
                "bind it to 127.0.0.1 (or ::1) and reach it through a tunnel or a local agent"));
        }
    }

    private static void LintChain(Envoy.Config.Listener.V3.FilterChain chain, string chainPath, List<LintFinding> findings)
    {
        for (var f = 0; f < chain.Filters.Count; f++)
        {
            var any = chain.Filters[f].TypedConfig;
            if (any is null || !any.Is(Hcm.Descriptor))
            {
                continue;
            }

            Hcm hcm;
            try
            {
                hcm = any.Unpack<Hcm>();
            }
            catch (Google.Protobuf.InvalidProtocolBufferException)
            {
                continue;
            }

            if (hcm.RouteConfig is { } routes)
            {
                LintRouteConfiguration(routes, FieldPath.Field(FieldPath.Field(FieldPath.Index(FieldPath.Field(chainPath, "filters"), f), "typed_config"), "route_config"), findings);
            }
        }
    }

    // ------------------------------------------------------------------ LGT001: shadowed routes

    private static void LintShadowedRoutes(VirtualHost virtualHost, string virtualHostPath, List<LintFinding> findings)
    {
        var routes = virtualHost.Routes;
        for (var j = 1; j < routes.Count; j++)
        {
            for (var i = 0; i < j; i++)
            {
                if (Covers(routes[i].Match, routes[j].Match))
                {
                    findings.Add(new LintFinding(
                        "LGT001",
                        FieldPath.Index(FieldPath.Field(virtualHostPath, "routes"), j),
                        $"route [{j}]{Named(routes[j])} ({Describe(routes[j].Match)}) can never match: the earlier route [{i}]{Named(routes[i])} ({Describe(routes[i].Match)}) in virtual host '{virtualHost.Name}' matches every request it would",
                        $"move route [{j}] before route [{i}], or narrow route [{i}]"));
                    break;
                }
            }
        }
    }

    private static string Named(Route route) => route.Name.Length > 0 ? $" '{route.Name}'" : string.Empty;

    private static string Describe(RouteMatch? match) => match?.PathSpecifierCase switch
    {
        RouteMatch.PathSpecifierOneofCase.Prefix => $"prefix \"{match.Prefix}\"",
        RouteMatch.PathSpecifierOneofCase.Path => $"path \"{match.Path}\"",
        RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix => $"path_separated_prefix \"{match.PathSeparatedPrefix}\"",
        RouteMatch.PathSpecifierOneofCase.SafeRegex => $"safe_regex \"{match.SafeRegex.Regex}\"",
        RouteMatch.PathSpecifierOneofCase.PathMatchPolicy => $"path_template \"{TemplateCoverage.TemplateOf(match.PathMatchPolicy)}\"",
        _ => "no path",
    };

    /// <summary>
    /// True when every request <paramref name="later"/> matches is matched by <paramref name="earlier"/>
    /// (so <paramref name="later"/> never wins). Only decided when certain: the earlier route's other
    /// criteria must all be repeated, identically, by the later one.
    /// </summary>
    internal static bool Covers(RouteMatch? earlier, RouteMatch? later)
    {
        if (earlier is null || later is null || !CriteriaAreASubset(earlier, later))
        {
            return false;
        }

        // URI templates always match case-sensitively (case_sensitive does not apply to them).
        const RouteMatch.PathSpecifierOneofCase Template = RouteMatch.PathSpecifierOneofCase.PathMatchPolicy;
        var earlierCase = earlier.PathSpecifierCase == Template || (earlier.CaseSensitive ?? true);
        var laterCase = later.PathSpecifierCase == Template || (later.CaseSensitive ?? true);
        var laterTemplate = later.PathSpecifierCase == Template && TemplateCoverage.TemplateOf(later.PathMatchPolicy) is { } laterText
            ? (Text: laterText, Segments: TemplateCoverage.Segments(laterText))
            : default;
        if (later.PathSpecifierCase == Template && laterTemplate.Segments is null)
        {
            return false;
        }

        // The literal text every path of the later template starts with.
        var laterTemplatePrefix = laterTemplate.Text is { } text ? text[..(text.AsSpan().IndexOfAny('*', '{') is var end and >= 0 ? end : text.Length)] : null;

        // A case-sensitive earlier route does not cover a case-insensitive later one (which also takes /API for /api).
        if (earlierCase && !laterCase)
        {
            return earlier.PathSpecifierCase == RouteMatch.PathSpecifierOneofCase.Prefix && earlier.Prefix is "" or "/";
        }

        var comparison = earlierCase ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
        switch (earlier.PathSpecifierCase)
        {
            case RouteMatch.PathSpecifierOneofCase.Prefix:
                var prefix = earlier.Prefix;
                if (prefix is "" or "/")
                {
                    // Every path starts with '/' (CONNECT and '*' aside, which no other kind matches either).
                    return true;
                }

                return later.PathSpecifierCase switch
                {
                    RouteMatch.PathSpecifierOneofCase.Prefix => later.Prefix.StartsWith(prefix, comparison),
                    RouteMatch.PathSpecifierOneofCase.Path => later.Path.StartsWith(prefix, comparison),
                    RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix => later.PathSeparatedPrefix.StartsWith(prefix, comparison),
                    Template => laterTemplatePrefix!.StartsWith(prefix, comparison),
                    _ => false,
                };
            case RouteMatch.PathSpecifierOneofCase.Path:
                return later.PathSpecifierCase == RouteMatch.PathSpecifierOneofCase.Path && string.Equals(later.Path, earlier.Path, comparison);
            case RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix:
                var separated = earlier.PathSeparatedPrefix;
                return later.PathSpecifierCase switch
                {
                    RouteMatch.PathSpecifierOneofCase.Path => string.Equals(later.Path, separated, comparison) || later.Path.StartsWith(separated + "/", comparison),
                    RouteMatch.PathSpecifierOneofCase.Prefix => later.Prefix.StartsWith(separated + "/", comparison),
                    RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix => string.Equals(later.PathSeparatedPrefix, separated, comparison) || later.PathSeparatedPrefix.StartsWith(separated + "/", comparison),
                    Template => laterTemplatePrefix!.StartsWith(separated + "/", comparison),
                    _ => false,
                };
            case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                // Only the same pattern is certain.
                return later.PathSpecifierCase == RouteMatch.PathSpecifierOneofCase.SafeRegex && earlier.SafeRegex.Regex == later.SafeRegex.Regex && earlierCase == laterCase;
            case Template:
                return TemplateCovers(earlier, later, laterTemplate.Segments);
            default:
                return false;
        }
    }

    /// <summary>An earlier URI-template route against a later route (case-sensitive, checked by the caller).</summary>
    private static bool TemplateCovers(RouteMatch earlier, RouteMatch later, TemplateCoverage.Segment[]? laterTemplate)
    {
        if (TemplateCoverage.TemplateOf(earlier.PathMatchPolicy) is not { } text || TemplateCoverage.Segments(text) is not { } template)
        {
            return false;
        }

        switch (later.PathSpecifierCase)
        {
            case RouteMatch.PathSpecifierOneofCase.PathMatchPolicy:
                return TemplateCoverage.Covers(template, laterTemplate!);
            case RouteMatch.PathSpecifierOneofCase.Path:
                // An exact path (its query aside, as both match) the template matches.
                var errors = new ConfigErrors();
                var query = later.Path.IndexOf('?');
                return UriTemplate.Compile(text, "lint", errors) is { } compiled && compiled.IsMatch(query < 0 ? later.Path : later.Path[..query]);
            case RouteMatch.PathSpecifierOneofCase.Prefix:
                // "/a/b/**" takes every path that starts with "/a/b/".
                return TemplateCoverage.GlobstarPrefix(template) is { } globstar && later.Prefix.StartsWith(globstar, StringComparison.Ordinal);
            default:
                return false;
        }
    }

    /// <summary>The earlier route's non-path criteria, each repeated identically by the later route.</summary>
    private static bool CriteriaAreASubset(RouteMatch earlier, RouteMatch later)
    {
        foreach (var header in earlier.Headers)
        {
            if (!later.Headers.Contains(header))
            {
                return false;
            }
        }

        foreach (var query in earlier.QueryParameters)
        {
            if (!later.QueryParameters.Contains(query))
            {
                return false;
            }
        }

        return (earlier.RuntimeFraction is null || Equals(earlier.RuntimeFraction, later.RuntimeFraction))
            && (earlier.Grpc is null || later.Grpc is not null)
            && (earlier.TlsContext is null || Equals(earlier.TlsContext, later.TlsContext))
            && earlier.DynamicMetadata.Count == 0;
    }

    // ------------------------------------------------------------------ LGT002/3/4: retries

    private static void LintRetryPolicy(Envoy.Config.Route.V3.RetryPolicy policy, string path, TimeSpan? routeTimeout, List<LintFinding> findings)
    {
        if (policy.PerTryTimeout is null)
        {
            findings.Add(new LintFinding(
                "LGT002",
                path,
                "the retry policy has no per_try_timeout: an attempt that hangs takes the whole route timeout, so it is never retried",
                "set per_try_timeout to at most timeout / (num_retries + 1)"));
        }

        if (routeTimeout is { } timeout)
        {
            LintRetryBudget(policy, path, timeout, null, findings);
        }
    }

    private static void LintRetryBudget(Envoy.Config.Route.V3.RetryPolicy policy, string policyPath, TimeSpan routeTimeout, string? routePath, List<LintFinding> findings)
    {
        if (policy.PerTryTimeout is not { } perTryProto || routeTimeout <= TimeSpan.Zero)
        {
            return;
        }

        var perTry = perTryProto.ToTimeSpan();
        var attempts = (long)(policy.NumRetries ?? 1) + 1;
        var total = perTry * attempts;
        if (total > routeTimeout)
        {
            findings.Add(new LintFinding(
                "LGT003",
                FieldPath.Field(policyPath, "per_try_timeout"),
                $"per_try_timeout {Seconds(perTry)} × {attempts} attempts = {Seconds(total)} is more than the route timeout {Seconds(routeTimeout)}{(routePath is null ? string.Empty : " of " + routePath)}: the last attempts are cut off by the route timeout",
                "lower per_try_timeout or num_retries, or raise the route timeout"));
        }
    }

    private static void LintNonIdempotentRetries(Route route, string routePath, Envoy.Config.Route.V3.RetryPolicy policy, string policyPath, List<LintFinding> findings)
    {
        var on = RetryOnParser.Parse(policy.RetryOn, grpc: false);
        const RetryOn afterRequest = RetryOn.FiveXx | RetryOn.GatewayError | RetryOn.Reset | RetryOn.Retriable4xx | RetryOn.RetriableStatusCodes | RetryOn.RetriableHeaders;
        if ((on & afterRequest) == 0 || policy.RetriableRequestHeaders.Count > 0)
        {
            return;
        }

        var methods = route.Match?.Headers.Where(h => h.Name == ":method").ToArray() ?? [];
        if (methods.Length == 0)
        {
            return;
        }

        var errors = new ConfigErrors();
        var matchers = methods.Select(m => CompiledHeaderMatcher.Create(m, errors, "lint")).OfType<CompiledHeaderMatcher>().ToArray();
        foreach (var method in new[] { "POST", "PATCH" })
        {
            var input = new RouteMatchInput(method, "/", string.Empty, new HeaderListLookup());
            if (matchers.Length == methods.Length && matchers.All(m => m.Matches(input)))
            {
                findings.Add(new LintFinding(
                    "LGT004",
                    FieldPath.Field(policyPath, "retry_on"),
                    $"route {routePath} matches {method} requests and retries them on '{policy.RetryOn}': a request the upstream already acted on may be applied twice",
                    "for non-idempotent methods retry only on connect-failure, refused-stream or reset-before-request, or restrict retries with retriable_request_headers"));
                return;
            }
        }
    }

    private static string Seconds(TimeSpan value) => value.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s";
}
