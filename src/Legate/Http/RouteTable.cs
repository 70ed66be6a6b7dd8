using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Router.Actions;
using Legate.Router.Matching;

namespace Legate.Http;

/// <summary>
/// A compiled route configuration for the interim connection manager: virtual host and route
/// matching by <see cref="CompiledRouteConfiguration"/> (Envoy's precedence and every match
/// kind), and each route's action.
/// </summary>
internal sealed class RouteTable
{
    /// <summary>Envoy's default <c>max_direct_response_body_size_bytes</c>.</summary>
    private const uint DefaultMaxDirectResponseBodyBytes = 4096;

    private readonly CompiledRouteConfiguration? _matcher;
    private readonly RouteEntry[][] _actions;

    private RouteTable(CompiledRouteConfiguration? matcher, RouteEntry[][] actions)
    {
        _matcher = matcher;
        _actions = actions;
    }

    /// <summary>No routes: every request is answered 404 (NR).</summary>
    public static RouteTable Empty { get; } = new(null, []);

    public static RouteTable Compile(RouteConfiguration config, string path, ConfigErrors errors)
    {
        var maxBody = config.MaxDirectResponseBodySizeBytes ?? DefaultMaxDirectResponseBodyBytes;
        var matcher = CompiledRouteConfiguration.Create(config, errors, path);
        var actions = new RouteEntry[config.VirtualHosts.Count][];
        var configRequest = HeaderMutation.Compile(config.RequestHeadersToAdd, config.RequestHeadersToRemove, FieldPath.Field(path, "request_headers_to_add"), FieldPath.Field(path, "request_headers_to_remove"), errors);
        var configResponse = HeaderMutation.Compile(config.ResponseHeadersToAdd, config.ResponseHeadersToRemove, FieldPath.Field(path, "response_headers_to_add"), FieldPath.Field(path, "response_headers_to_remove"), errors);
        for (var v = 0; v < actions.Length; v++)
        {
            var virtualHost = config.VirtualHosts[v];
            var virtualHostPath = FieldPath.Index(FieldPath.Field(path, "virtual_hosts"), v);
            var inherited = RouteEntry.CompileFilterConfigs(virtualHost.TypedPerFilterConfig, FieldPath.Field(virtualHostPath, "typed_per_filter_config"), null, errors);
            var routes = virtualHost.Routes;
            var routesPath = FieldPath.Field(virtualHostPath, "routes");
            actions[v] = new RouteEntry[routes.Count];
            var levels = new RouteLevels(
                config.MostSpecificHeaderMutationsWins,
                configRequest,
                configResponse,
                HeaderMutation.Compile(virtualHost.RequestHeadersToAdd, virtualHost.RequestHeadersToRemove, FieldPath.Field(virtualHostPath, "request_headers_to_add"), FieldPath.Field(virtualHostPath, "request_headers_to_remove"), errors),
                HeaderMutation.Compile(virtualHost.ResponseHeadersToAdd, virtualHost.ResponseHeadersToRemove, FieldPath.Field(virtualHostPath, "response_headers_to_add"), FieldPath.Field(virtualHostPath, "response_headers_to_remove"), errors))
            {
                VirtualHostRetryPolicy = Legate.Router.Retry.RetryPolicy.Compile(virtualHost.RetryPolicy, FieldPath.Field(virtualHostPath, "retry_policy"), errors),
                VirtualHostMirrorPolicies = Legate.Router.Mirror.MirrorPolicy.Compile(virtualHost.RequestMirrorPolicies, FieldPath.Field(virtualHostPath, "request_mirror_policies"), errors),
                IncludeRequestAttemptCount = virtualHost.IncludeRequestAttemptCount,
                IncludeAttemptCountInResponse = virtualHost.IncludeAttemptCountInResponse,
                VirtualHostHedgeOnPerTryTimeout = virtualHost.HedgePolicy?.HedgeOnPerTryTimeout ?? false,
            };
            for (var r = 0; r < routes.Count; r++)
            {
                actions[v][r] = RouteEntry.Compile(routes[r], FieldPath.Index(routesPath, r), maxBody, virtualHost, inherited, errors, levels);
            }
        }

        return new RouteTable(matcher, actions);
    }

    /// <summary>The virtual host's name and the route's action, or nulls when nothing matches (NR).</summary>
    public (string? VirtualHost, RouteEntry? Route) Match(in RouteMatchInput input)
    {
        if (_matcher is null)
        {
            return (null, null);
        }

        var (virtualHost, route) = _matcher.Match(input);
        return route is null ? (virtualHost?.Name, null) : (virtualHost!.Name, _actions[virtualHost.Index][route.Index]);
    }

    /// <summary>Matches the stream's request headers (Envoy's route resolution); records the virtual host and route names.</summary>
    public RouteEntry? Match(HttpStream stream)
    {
        if (_matcher is null)
        {
            return null;
        }

        var head = stream.RequestHeaders;
        var config = stream.Config;
        var host = stream.AuthorityString();
        if (config.StripAnyHostPort || (config.StripMatchingHostPort && stream.Info.DownstreamLocalAddress is { } local && HasPort(host, local.Port)))
        {
            host = HostWithoutPort(host);
        }

        var randomValue = stream.Info.RandomValue;
        var runtime = config.Runtime?.Snapshot;
        var tls = stream.Info.DownstreamTls;
        var input = new RouteMatchInput(head.Method, head.Path, host, head.Headers.Lookup, randomValue)
        {
            Runtime = runtime,
            PeerCertificatePresented = tls is { PeerCertificatePresented: true },
            PeerCertificateValidated = tls is { PeerCertificateValidated: true },
        };
        var (virtualHost, route) = _matcher.Match(input);
        stream.Info.VirtualHostName = virtualHost?.Name;
        if (route is null)
        {
            return null;
        }

        var action = _actions[virtualHost!.Index][route.Index];
        var entry = action.WeightedClusters is null ? action : action.PickWeightedCluster(randomValue, head.Headers, runtime);
        if (entry is null)
        {
            return null;
        }

        stream.Info.RouteName = entry.Name;
        return entry;
    }

    private static bool HasPort(string host, int port)
    {
        var withoutPort = HostWithoutPort(host);
        return withoutPort.Length < host.Length
            && int.TryParse(host.AsSpan(withoutPort.Length + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
            && value == port;
    }

    /// <summary>Removes a trailing <c>:port</c>, leaving IPv6 literals (<c>[::1]</c>) intact.</summary>
    public static string HostWithoutPort(string host)
    {
        var colon = host.LastIndexOf(':');
        if (colon < 0 || host.IndexOf(']', colon) >= 0 || (host.IndexOf(':') != colon && !host.StartsWith('[')))
        {
            return host;
        }

        return host[..colon];
    }
}
