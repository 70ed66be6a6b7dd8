using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Router.Matching;

namespace Legate.Tests.Router.Matching;

internal static class RouteTestSupport
{
    public static RouteConfiguration Parse(string yaml)
    {
        var errors = new ConfigErrors();
        var config = new ProtoConverter(errors).Convert<RouteConfiguration>(ConfigDocument.Parse(yaml, ConfigFormat.Yaml));
        Assert.Empty(errors.Errors);
        return config;
    }

    public static CompiledRouteConfiguration Compile(string yaml)
    {
        var errors = new ConfigErrors();
        var compiled = CompiledRouteConfiguration.Create(Parse(yaml), errors);
        Assert.Empty(errors.Errors);
        return compiled;
    }

    public static ConfigErrors Errors(string yaml)
    {
        var errors = new ConfigErrors();
        CompiledRouteConfiguration.Create(Parse(yaml), errors);
        return errors;
    }

    /// <summary>One virtual host for every domain, holding the given routes (YAML list items, indented by 4).</summary>
    public static RouteMatcher Routes(string routesYaml)
    {
        var compiled = Compile("name: rc\nvirtual_hosts:\n- name: vh\n  domains: ['*']\n  routes:\n" + routesYaml);
        return compiled.VirtualHosts.VirtualHosts[0].Routes;
    }

    /// <summary>The name of the matching route, or null; checks the index against the linear scan too.</summary>
    public static string? MatchName(this RouteMatcher matcher, RouteMatchInput input)
    {
        var indexed = matcher.Match(input);
        Assert.Same(matcher.MatchLinear(input), indexed);
        Assert.Same(indexed, matcher.MatchWithTrace(input, new List<RouteMissReason>()));
        return indexed?.Name;
    }

    public static RouteMatchInput Get(string path, HeaderListLookup? headers = null, string method = "GET", ulong random = 0) =>
        new(method, path, "example.com", headers, random);
}
