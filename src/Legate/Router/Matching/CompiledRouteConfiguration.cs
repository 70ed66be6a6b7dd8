using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Router.Matching;

/// <summary>A whole RouteConfiguration compiled: virtual host selection, then route matching.</summary>
internal sealed class CompiledRouteConfiguration
{
    private CompiledRouteConfiguration(VirtualHostSelector selector) => VirtualHosts = selector;

    public VirtualHostSelector VirtualHosts { get; }

    public static CompiledRouteConfiguration Create(RouteConfiguration config, ConfigErrors errors, string path = "") =>
        new(VirtualHostSelector.Create(config, errors, path));

    /// <summary>The matched virtual host (null: none) and route (null: no route in it matched).</summary>
    public (CompiledVirtualHost? VirtualHost, CompiledRoute? Route) Match(in RouteMatchInput input, List<RouteMissReason>? reasons = null)
    {
        var host = VirtualHosts.Select(input.Authority);
        return host is null ? (null, null) : (host, host.Routes.MatchWithTrace(input, reasons));
    }
}
