using System.Globalization;
using System.Net;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Network.FilterChainMatching;
using Legate.Router.Matching;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Explain;

/// <summary>
/// <c>legate explain -c FILE [--listener NAME | --port P] [-H 'name: value']… METHOD URL</c>:
/// which listener, filter chain, virtual host and route a request would take, why each earlier
/// route did not match, and what the route would do — without sending anything. Beyond Envoy,
/// which offers no such question.
/// </summary>
internal static class ExplainCommand
{
    public const string Usage = "usage: legate explain -c FILE [--listener NAME | --port P] [-H 'name: value']... METHOD URL";

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (!TryParse(args, out var request, out var problem))
        {
            await stderr.WriteLineAsync($"error: {problem}\n{Usage}").ConfigureAwait(false);
            return 1;
        }

        LoadedBootstrap loaded;
        try
        {
            loaded = BootstrapLoader.Load(request.ConfigPath, null);
        }
        catch (ConfigException ex)
        {
            foreach (var error in ex.Errors)
            {
                await stderr.WriteLineAsync(error.ToString()).ConfigureAwait(false);
            }

            return 1;
        }

        var lines = new List<string>();
        var ok = Explain(loaded.Bootstrap.StaticResources?.Listeners ?? [], request, lines);
        foreach (var line in lines)
        {
            await (ok ? stdout : stderr).WriteLineAsync(line).ConfigureAwait(false);
        }

        return ok ? 0 : 1;
    }

    /// <summary>Writes the explanation into <paramref name="lines"/>; false when the request cannot be explained (usage problem).</summary>
    internal static bool Explain(IList<Listener> listeners, ExplainRequest request, List<string> lines)
    {
        var index = FindListener(listeners, request, out var why);
        if (index < 0)
        {
            lines.Add($"error: {why}");
            return false;
        }

        var listener = listeners[index];
        var socket = listener.Address?.SocketAddress;
        var port = request.Port ?? (int)(socket?.PortValue ?? 0);
        lines.Add($"listener:      static_resources.listeners[{index}] '{listener.Name}' ({socket?.Address}:{socket?.PortValue}; {why})");

        var errors = new ConfigErrors();
        var matcher = FilterChainMatcher.Compile(listener, $"static_resources.listeners[{index}]", errors);
        if (matcher is null)
        {
            lines.Add($"filter chain:  none: {string.Join("; ", errors.Errors)}");
            return true;
        }

        var local = new IPEndPoint(IPAddress.TryParse(socket?.Address, out var ip) ? ip : IPAddress.Loopback, port);
        var chainIndex = matcher.Match(new ConnectionMatchInfo(local, new IPEndPoint(IPAddress.Loopback, 50000)));
        var chain = chainIndex switch
        {
            FilterChainMatcher.NoMatch => null,
            FilterChainMatcher.DefaultFilterChain => listener.DefaultFilterChain,
            _ => listener.FilterChains[chainIndex],
        };
        if (chain is null)
        {
            lines.Add("filter chain:  none matches a plaintext connection from 127.0.0.1: the connection would be closed");
            return true;
        }

        lines.Add($"filter chain:  {(chainIndex == FilterChainMatcher.DefaultFilterChain ? "default_filter_chain" : $"filter_chains[{chainIndex}]")}{(chain.Name.Length > 0 ? $" '{chain.Name}'" : "")} (for a plaintext connection from 127.0.0.1)");

        var hcmAny = chain.Filters.Count > 0 ? chain.Filters[^1].TypedConfig : null;
        if (hcmAny is null || !hcmAny.Is(Hcm.Descriptor))
        {
            lines.Add("http:          the chain's terminal filter is not an HTTP connection manager; nothing to route");
            return true;
        }

        var hcm = hcmAny.Unpack<Hcm>();
        if (hcm.RouteConfig is null)
        {
            lines.Add($"routes:        from {hcm.RouteSpecifierCase} (dynamic), which cannot be resolved offline");
            return true;
        }

        var routes = CompiledRouteConfiguration.Create(hcm.RouteConfig, errors);
        var authority = request.Authority;
        if (hcm.StripTrailingHostDot && Http.ConnectionManagerUtility.TrailingHostDot(System.Text.Encoding.Latin1.GetBytes(authority)) is var dot and >= 0)
        {
            var undotted = authority.Remove(dot, 1);
            lines.Add($"authority:     '{authority}' → '{undotted}' (strip_trailing_host_dot)");
            authority = undotted;
        }

        var withoutPort = Http.RouteTable.HostWithoutPort(authority);
        if (withoutPort.Length < authority.Length
            && (hcm.StripAnyHostPort || (hcm.StripMatchingHostPort && authority.EndsWith(":" + port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal))))
        {
            lines.Add($"authority:     '{authority}' → '{withoutPort}' (strip_{(hcm.StripAnyHostPort ? "any" : "matching")}_host_port)");
            authority = withoutPort;
        }

        var input = new RouteMatchInput(request.Method, request.PathAndQuery, authority, request.Headers);
        var reasons = new List<RouteMissReason>();
        var (virtualHost, route) = routes.Match(input, reasons);
        if (virtualHost is null)
        {
            lines.Add($"virtual host:  none for authority '{authority}': the request would get 404 (NR)");
            return true;
        }

        lines.Add($"virtual host:  [{virtualHost.Index}] '{virtualHost.Name}' (domains: {string.Join(", ", virtualHost.VirtualHost.Domains)}; authority '{authority}')");
        foreach (var miss in reasons)
        {
            lines.Add($"  skipped route [{miss.RouteIndex}]{(miss.RouteName.Length > 0 ? $" '{miss.RouteName}'" : "")}: {miss.Kind.ToString().ToLowerInvariant()}: {miss.Detail}");
        }

        if (route is null)
        {
            lines.Add("route:         none matches: the request would get 404 (NR)");
            return true;
        }

        lines.Add($"route:         [{route.Index}]{(route.Name.Length > 0 ? $" '{route.Name}'" : "")} (match: {Describe(route.Route.Match)})");
        lines.Add($"action:        {Describe(route.Route)}");
        DescribeOutcome(route.Route, virtualHost.VirtualHost, request, authority, lines);
        return true;
    }

    private static int FindListener(IList<Listener> listeners, ExplainRequest request, out string why)
    {
        if (request.ListenerName is { } name)
        {
            for (var i = 0; i < listeners.Count; i++)
            {
                if (listeners[i].Name == name)
                {
                    why = "named by --listener";
                    return i;
                }
            }

            why = $"no listener named '{name}'";
            return -1;
        }

        var port = request.Port ?? request.UrlPort;
        if (port is { } p)
        {
            for (var i = 0; i < listeners.Count; i++)
            {
                if (listeners[i].Address?.SocketAddress?.PortValue == p)
                {
                    why = request.Port is null ? $"port {p} of the URL" : $"port {p} from --port";
                    return i;
                }
            }

            if (request.Port is not null)
            {
                why = $"no listener on port {p}";
                return -1;
            }
        }

        if (listeners.Count == 0)
        {
            why = "the configuration has no static listeners";
            return -1;
        }

        why = "the first listener; pick another with --listener or --port";
        return 0;
    }

    private static string Describe(RouteMatch match) => match.PathSpecifierCase switch
    {
        RouteMatch.PathSpecifierOneofCase.Prefix => $"prefix \"{match.Prefix}\"",
        RouteMatch.PathSpecifierOneofCase.Path => $"path \"{match.Path}\"",
        RouteMatch.PathSpecifierOneofCase.SafeRegex => $"safe_regex \"{match.SafeRegex.Regex}\"",
        RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix => $"path_separated_prefix \"{match.PathSeparatedPrefix}\"",
        _ => match.PathSpecifierCase.ToString(),
    } + (match.Headers.Count > 0 ? $", {match.Headers.Count} header matcher(s)" : "")
      + (match.QueryParameters.Count > 0 ? $", {match.QueryParameters.Count} query parameter matcher(s)" : "");

    private static string Describe(Route route)
    {
        switch (route.ActionCase)
        {
            case Route.ActionOneofCase.DirectResponse:
                return $"direct_response {route.DirectResponse.Status}";
            case Route.ActionOneofCase.Redirect:
                return $"redirect ({route.Redirect})";
            case Route.ActionOneofCase.Route_:
                var action = route.Route_;
                var target = action.ClusterSpecifierCase switch
                {
                    RouteAction.ClusterSpecifierOneofCase.Cluster => $"cluster '{action.Cluster}'",
                    RouteAction.ClusterSpecifierOneofCase.ClusterHeader => $"the cluster named by header '{action.ClusterHeader}'",
                    RouteAction.ClusterSpecifierOneofCase.WeightedClusters => "weighted clusters " + string.Join(", ", action.WeightedClusters.Clusters.Select(c => $"'{c.Name}' ({c.Weight})")),
                    _ => action.ClusterSpecifierCase.ToString(),
                };
                var rewrites = new List<string>();
                if (action.PrefixRewrite.Length > 0)
                {
                    rewrites.Add($"prefix_rewrite \"{action.PrefixRewrite}\"");
                }

                if (action.HostRewriteSpecifierCase != RouteAction.HostRewriteSpecifierOneofCase.None)
                {
                    rewrites.Add($"host rewrite ({action.HostRewriteSpecifierCase})");
                }

                var timeout = action.Timeout is { } t ? t.ToTimeSpan().TotalSeconds.ToString(CultureInfo.InvariantCulture) + "s" : "15s (default)";
                return $"route to {target}; timeout {timeout}{(rewrites.Count > 0 ? "; " + string.Join(", ", rewrites) : "")}";
            default:
                return route.ActionCase.ToString();
        }
    }

    /// <summary>
    /// What the compiled route action would do to this request: the cluster it picks (weighted: the
    /// weights and, with an x-request-id, the cluster that id lands on), the path and host after
    /// rewrites, or the redirect's location.
    /// </summary>
    private static void DescribeOutcome(Route route, VirtualHost virtualHost, ExplainRequest request, string authority, List<string> lines)
    {
        var errors = new ConfigErrors();
        var entry = Http.RouteEntry.Compile(route, "route", uint.MaxValue, virtualHost, null, errors);
        if (entry.Action == Http.RouteActionKind.Redirect && entry.Redirect is { } redirect)
        {
            var proto = FindHeader(request.Headers, "x-forwarded-proto") ?? request.Scheme;
            lines.Add($"redirect:      {redirect.Status} location: {redirect.Location(request.PathAndQuery, authority, proto)}");
            return;
        }

        if (entry.Action != Http.RouteActionKind.Forward)
        {
            return;
        }

        if (entry.WeightedClusters is { } weighted)
        {
            var parts = new List<string>();
            foreach (var cluster in weighted)
            {
                var share = entry.TotalWeight == 0 ? 0 : 100.0 * cluster.Weight / entry.TotalWeight;
                parts.Add($"'{cluster.ClusterName}' weight {cluster.Weight} ({share.ToString("0.#", CultureInfo.InvariantCulture)}%)");
            }

            lines.Add($"clusters:      weighted, total_weight {entry.TotalWeight}: {string.Join(", ", parts)}");
            if (entry.RuntimeWeightKeys is { } keys)
            {
                lines.Add($"weights:       from the runtime when set ({string.Join(", ", keys)}), else as configured");
            }

            if (entry.RandomValueHeader is { } randomHeader && FindHeader(request.Headers, randomHeader) is { } headerValue
                && ulong.TryParse(headerValue.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var fromHeader))
            {
                var chosen = entry.PickWeightedCluster(fromHeader);
                lines.Add($"cluster:       '{chosen.ClusterName}' (header '{randomHeader}' {fromHeader} % {entry.TotalWeight} = {fromHeader % entry.TotalWeight})");
                entry = chosen;
            }
            else
            {
                // Envoy picks on the stream's random value (a fresh draw per request), not on the x-request-id.
                lines.Add(entry.RandomValueHeader is { } named
                    ? $"cluster:       at random per request by the weights (give -H '{named}: N' to see which cluster the value N picks)"
                    : "cluster:       at random per request by the weights");
            }
        }
        else if (entry.ClusterHeader is { } header)
        {
            var named = FindHeader(request.Headers, header);
            lines.Add(named is null ? $"cluster:       none: header '{header}' is absent, the request would get {entry.ClusterNotFoundStatus} (NC)" : $"cluster:       '{named}' (from header '{header}')");
        }
        else
        {
            lines.Add($"cluster:       '{entry.ClusterName}'");
        }

        if (entry.PathRewrite is { } rewrite)
        {
            lines.Add($"path:          '{request.PathAndQuery}' → '{rewrite.Apply(request.PathAndQuery)}' ({rewrite.Description}; x-envoy-original-path keeps the original)");
        }

        string? host = entry.HostRewriteLiteral;
        var hostSource = "host_rewrite_literal";
        if (host is null && entry.HostRewriteHeader is { } hostHeader)
        {
            host = FindHeader(request.Headers, hostHeader);
            hostSource = $"header '{hostHeader}'";
        }
        else if (host is null && entry.HostRewritePath is { } hostPath)
        {
            var path = request.PathAndQuery;
            var end = path.AsSpan().IndexOfAny('?', '#');
            host = hostPath.Apply(end < 0 ? path : path[..end]);
            hostSource = "host_rewrite_path_regex";
        }

        if (host is not null)
        {
            lines.Add($"host:          '{authority}' → '{host}' ({hostSource})");
        }
        else if (entry.AutoHostRewrite)
        {
            lines.Add("host:          the chosen endpoint's hostname (auto_host_rewrite)");
        }
    }

    private static string? FindHeader(HeaderListLookup? headers, string name) =>
        headers is not null && headers.Count(name) > 0 ? headers.Get(name, 0) : null;

    /// <summary>Parses the explain arguments (also used by the admin endpoint, with the live config standing in for -c).</summary>
    internal static bool TryParse(string[] args, out ExplainRequest request, out string problem)
    {
        request = null!;
        string? config = null, listener = null, method = null, url = null;
        int? port = null;
        var headers = new HeaderListLookup();
        string? host = null;
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value");
            try
            {
                switch (arg)
                {
                    case "-c" or "--config-path":
                        config = Next();
                        break;
                    case "--listener":
                        listener = Next();
                        break;
                    case "--port":
                        port = int.TryParse(Next(), NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is > 0 and < 65536
                            ? p
                            : throw new ArgumentException($"--port: invalid port \"{args[i]}\"");
                        break;
                    case "-H" or "--header":
                        var header = Next();
                        var colon = header.IndexOf(':', 1);
                        if (colon < 0)
                        {
                            throw new ArgumentException($"-H: expected 'name: value', got \"{header}\"");
                        }

                        var name = header[..colon].Trim().ToLowerInvariant();
                        var value = header[(colon + 1)..].Trim();
                        if (name is "host" or ":authority")
                        {
                            host = value;
                        }
                        else
                        {
                            headers.Add(name, value);
                        }

                        break;
                    default:
                        if (arg.StartsWith('-'))
                        {
                            throw new ArgumentException($"unknown flag {arg}");
                        }

                        if (method is null)
                        {
                            method = arg;
                        }
                        else if (url is null)
                        {
                            url = arg;
                        }
                        else
                        {
                            throw new ArgumentException($"unexpected argument \"{arg}\"");
                        }

                        break;
                }
            }
            catch (ArgumentException ex)
            {
                problem = ex.Message;
                return false;
            }
        }

        if (config is null || method is null || url is null)
        {
            problem = config is null ? "-c FILE is required" : "METHOD and URL are required";
            return false;
        }

        int? urlPort = null;
        string pathAndQuery;
        string authority;
        var scheme = "http";
        if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == "http" || uri.Scheme == "https"))
        {
            authority = uri.IsDefaultPort ? uri.Host : $"{uri.Host}:{uri.Port}";
            urlPort = uri.Port;
            pathAndQuery = uri.PathAndQuery;
            scheme = uri.Scheme;
        }
        else if (url.StartsWith('/'))
        {
            authority = "";
            pathAndQuery = url;
        }
        else
        {
            problem = $"URL must be absolute (http://host[:port]/path) or a path (/path), got \"{url}\"";
            return false;
        }

        request = new ExplainRequest(config, listener, port, urlPort, method.ToUpperInvariant(), host ?? authority, pathAndQuery, headers) { Scheme = scheme };
        problem = "";
        return true;
    }
}

internal sealed record ExplainRequest(
    string ConfigPath,
    string? ListenerName,
    int? Port,
    int? UrlPort,
    string Method,
    string Authority,
    string PathAndQuery,
    HeaderListLookup Headers)
{
    /// <summary>The URL's scheme (http when only a path was given): a redirect keeps it unless it sets its own.</summary>
    public string Scheme { get; init; } = "http";
}
