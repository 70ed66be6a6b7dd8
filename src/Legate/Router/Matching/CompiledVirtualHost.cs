using Envoy.Config.Route.V3;

namespace Legate.Router.Matching;

/// <summary>A virtual host with its compiled routes.</summary>
internal sealed class CompiledVirtualHost
{
    public CompiledVirtualHost(int index, VirtualHost virtualHost, RouteMatcher routes)
    {
        Index = index;
        VirtualHost = virtualHost;
        Routes = routes;
    }

    public int Index { get; }

    public VirtualHost VirtualHost { get; }

    public string Name => VirtualHost.Name;

    public RouteMatcher Routes { get; }
}
