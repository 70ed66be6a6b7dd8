using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Http;

/// <summary>One compiled virtual host: its routes in order, first match wins.</summary>
internal sealed class VirtualHostEntry
{
    private readonly RouteEntry[] _routes;

    private VirtualHostEntry(string name, RouteEntry[] routes)
    {
        Name = name;
        _routes = routes;
    }

    public string Name { get; }

    public static VirtualHostEntry Compile(VirtualHost virtualHost, string path, uint maxBodyBytes, ConfigErrors errors)
    {
        var routes = new RouteEntry[virtualHost.Routes.Count];
        for (var i = 0; i < routes.Length; i++)
        {
            routes[i] = RouteEntry.Compile(virtualHost.Routes[i], FieldPath.Index(FieldPath.Field(path, "routes"), i), maxBodyBytes, errors);
        }

        return new VirtualHostEntry(virtualHost.Name, routes);
    }

    public RouteEntry? FindRoute(string path)
    {
        foreach (var route in _routes)
        {
            if (route.Matches(path))
            {
                return route;
            }
        }

        return null;
    }
}
