using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Router.Matching;

/// <summary>
/// The routes of one virtual host: the first route (in configuration order) whose match accepts
/// the request wins, as in Envoy. Candidates come from a <see cref="RoutePrefixIndex"/> so a
/// large table is not scanned route by route (a small one is).
/// </summary>
internal sealed class RouteMatcher
{
    // Cached so matching does not allocate a delegate per request.
    private static readonly RoutePrefixIndex.Visitor<Probe> s_visit = static (int position, ref Probe probe) => probe.Routes[position].Matches(probe.Input);

    /// <summary>Virtual hosts with at most this many routes are scanned in order without the index.</summary>
    internal const int LinearScanMaxRoutes = 4;

    private readonly CompiledRoute[] _routes;
    private readonly RoutePrefixIndex _index;

    private RouteMatcher(CompiledRoute[] routes)
    {
        _routes = routes;
        _index = new RoutePrefixIndex(routes);
    }

    /// <summary>The compiled routes in configuration order (routes with errors are left out).</summary>
    public IReadOnlyList<CompiledRoute> Routes => _routes;

    /// <summary>Compiles <paramref name="routes"/>; errors go to <paramref name="errors"/> under <paramref name="path"/> (the routes field).</summary>
    public static RouteMatcher Create(IReadOnlyList<Route> routes, ConfigErrors errors, string path)
    {
        var compiled = new List<CompiledRoute>(routes.Count);
        for (var i = 0; i < routes.Count; i++)
        {
            if (CompiledRoute.Create(i, routes[i], errors, FieldPath.Index(path, i)) is { } route)
            {
                compiled.Add(route);
            }
        }

        return new RouteMatcher(compiled.ToArray());
    }

    public CompiledRoute? Match(in RouteMatchInput input)
    {
        if (_routes.Length <= LinearScanMaxRoutes)
        {
            // A handful of routes: trying each is cheaper than walking the index (two pooled
            // arrays rented, merged and cleared per request).
            return MatchLinear(input);
        }

        var state = new Probe(_routes, input);
        var position = _index.FirstMatch(input.PathOnly, ref state, s_visit);
        return position < 0 ? null : _routes[position];
    }

    /// <summary>
    /// Like <see cref="Match"/>, and when <paramref name="reasons"/> is given it receives, for every
    /// route before the winner (or every route when none matches), why that route did not match.
    /// This walks all routes in order; it is meant for <c>legate explain</c>, not the data path.
    /// </summary>
    public CompiledRoute? MatchWithTrace(in RouteMatchInput input, List<RouteMissReason>? reasons)
    {
        if (reasons is null)
        {
            return Match(input);
        }

        foreach (var route in _routes)
        {
            if (route.Miss(input, out var detail) is not { } kind)
            {
                return route;
            }

            reasons.Add(new RouteMissReason(route.Index, route.Name, kind, detail));
        }

        return null;
    }

    /// <summary>The naive first-match scan, kept as the reference the index is tested against.</summary>
    internal CompiledRoute? MatchLinear(in RouteMatchInput input)
    {
        foreach (var route in _routes)
        {
            if (route.Matches(input))
            {
                return route;
            }
        }

        return null;
    }

    private readonly record struct Probe(CompiledRoute[] Routes, RouteMatchInput Input);
}
