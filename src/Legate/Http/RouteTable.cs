using Envoy.Config.Route.V3;
using Legate.Config;
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
        for (var v = 0; v < actions.Length; v++)
        {
            var routes = config.VirtualHosts[v].Routes;
            var routesPath = FieldPath.Field(FieldPath.Index(FieldPath.Field(path, "virtual_hosts"), v), "routes");
            actions[v] = new RouteEntry[routes.Count];
            for (var r = 0; r < routes.Count; r++)
            {
                actions[v][r] = RouteEntry.Compile(routes[r], FieldPath.Index(routesPath, r), maxBody, errors);
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
