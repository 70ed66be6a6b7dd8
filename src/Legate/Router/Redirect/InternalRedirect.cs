using Legate.Http;
using Legate.Http.Http1;
using Legate.Upstream;

namespace Legate.Router.Redirect;

/// <summary>
/// Envoy's internal redirect (router <c>setupRedirect</c> / <c>convertRequestHeadersForInternalRedirect</c>):
/// an upstream answer whose status the route's policy follows, with an absolute http(s)
/// <c>location</c>, turns the request into one for that URL (<c>:scheme</c>, Host, <c>:path</c>
/// without the fragment; 303 makes a non-GET/HEAD a GET), routed again; the redirect happens only
/// within <c>max_internal_redirects</c>, without a scheme change unless allowed, to an existing
/// route that every predicate accepts (a direct response or redirect route answers the redirected
/// request, as Envoy's recreated stream does). A request body goes along when the whole request was
/// buffered within the buffer limit (303 drops it with the method). <c>x-envoy-original-url</c> carries the URL of
/// the pass before. On any failure the request is left exactly as it was and the 3xx goes to the
/// client. Counted on the cluster that answered: <c>upstream_internal_redirect_succeeded_total</c>
/// / <c>upstream_internal_redirect_failed_total</c>.
/// </summary>
internal static class InternalRedirect
{
    /// <summary>
    /// Null when <paramref name="response"/> is not followed (the caller relays it); else the route
    /// (and for a forwarding route the cluster) the next attempt goes to, with <paramref name="request"/>
    /// already rewritten. <paramref name="requestComplete"/>: the request ended and its body, if
    /// any, is buffered whole (Envoy: downstream end of stream and no request buffer overflow).
    /// </summary>
    public static InternalRedirectTarget? TryPrepare(HttpStream stream, HttpRequestHead request, HttpResponseHead response, RouteEntry route,
        Cluster cluster, InternalRedirectState state, bool requestComplete, ClusterManager clusters)
    {
        var policy = route.InternalRedirect!;
        if (!policy.Follows(response.StatusCode))
        {
            return null;
        }

        var target = requestComplete ? Prepare(stream, request, response, route, policy, state, clusters) : null;
        (target is null ? cluster.Info.Stats.UpstreamInternalRedirectFailedTotal : cluster.Info.Stats.UpstreamInternalRedirectSucceededTotal).Inc();
        return target;
    }

    private static InternalRedirectTarget? Prepare(HttpStream stream, HttpRequestHead request, HttpResponseHead response, RouteEntry route,
        InternalRedirectPolicy policy, InternalRedirectState state, ClusterManager clusters)
    {
        // Each reason not to follow is counted as Envoy's router counts it, in Envoy's order.
        var stats = stream.Config.Stats;
        var location = response.Headers.GetValue("location");
        if (location is null || !TryParseAbsolute(location, out var scheme, out var authority, out var pathAndQuery))
        {
            stats.PassthroughInternalRedirectBadLocation.Inc();
            return null;
        }

        var downstreamHttps = string.Equals(request.Scheme ?? (stream.Info.DownstreamTls is null ? "http" : "https"), "https", StringComparison.OrdinalIgnoreCase);
        var targetHttps = scheme == "https";
        if (!policy.AllowCrossScheme && downstreamHttps != targetHttps)
        {
            stats.PassthroughInternalRedirectUnsafeScheme.Inc();
            return null;
        }

        if (state.Count >= policy.MaxInternalRedirects)
        {
            stats.PassthroughInternalRedirectTooManyRedirects.Inc();
            return null;
        }

        // What to put back when the redirect fails after the request was changed.
        var savedPath = request.Path;
        var savedHost = System.Text.Encoding.Latin1.GetString(request.Authority);
        var savedScheme = request.Scheme;
        var savedMethod = request.Method;
        var savedVirtualHost = stream.Info.VirtualHostName;
        var savedRouteName = stream.Info.RouteName;
        List<KeyValuePair<string, string>>? savedCopied = null;
        foreach (var name in policy.ResponseHeadersToCopy)
        {
            savedCopied ??= new List<KeyValuePair<string, string>>();
            for (var i = request.Headers.IndexOf(name); i >= 0; i = request.Headers.IndexOf(name, i + 1))
            {
                savedCopied.Add(new(name, request.Headers.GetValue(i)));
            }

            request.Headers.Remove(name);
            for (var i = response.Headers.IndexOf(name); i >= 0; i = response.Headers.IndexOf(name, i + 1))
            {
                request.Headers.Add(name, response.Headers.GetValue(i));
            }
        }

        request.Scheme = scheme;
        request.Headers.Set(KnownHeader.Host, authority);
        request.SetPath(pathAndQuery);
        stream.ClearRouteCache();
        var next = stream.Route;
        var nextCluster = next is { Action: RouteActionKind.Forward } ? FindCluster(next, request, clusters) : null;
        if (next is null)
        {
            stats.PassthroughInternalRedirectNoRoute.Inc();
        }
        else if (next.Action != RouteActionKind.Forward || nextCluster is not null)
        {
            if (!policy.AcceptsTarget(next.Name, downstreamHttps, targetHttps, state))
            {
                stats.PassthroughInternalRedirectPredicate.Inc();
                next = null;
            }
        }
        else
        {
            // The location's route names a cluster that does not exist (Envoy would follow and answer 503 NC).
            next = null;
        }

        if (next is null)
        {
            request.Scheme = savedScheme;
            request.Headers.Set(KnownHeader.Host, savedHost);
            request.SetPath(savedPath);
            foreach (var name in policy.ResponseHeadersToCopy)
            {
                request.Headers.Remove(name);
            }

            foreach (var (name, value) in savedCopied ?? [])
            {
                request.Headers.Add(name, value);
            }

            stream.RestoreRoute(route);
            stream.Info.VirtualHostName = savedVirtualHost;
            stream.Info.RouteName = savedRouteName;
            return null;
        }

        var dropBody = false;
        if (response.StatusCode == 303 && savedMethod is not ("GET" or "HEAD"))
        {
            // As Envoy: the method becomes GET and the buffered body is drained.
            request.SetMethod("GET");
            request.Headers.Remove(KnownHeader.ContentLength);
            dropBody = true;
        }

        state.Record(next.Name);
        request.Headers.Set("x-envoy-original-url", (downstreamHttps ? "https://" : "http://") + savedHost + savedPath);
        return new InternalRedirectTarget(next, nextCluster, dropBody);
    }

    private static Cluster? FindCluster(RouteEntry route, HttpRequestHead request, ClusterManager clusters)
    {
        var name = route.ClusterHeader is { } header ? request.Headers.GetValue(header) ?? string.Empty : route.ClusterName;
        return name.Length == 0 ? null : clusters.Find(name);
    }

    /// <summary>An absolute http(s) URL split as Envoy's Url: scheme, host[:port] as written, path and query (default "/", fragment dropped).</summary>
    internal static bool TryParseAbsolute(string url, out string scheme, out string authority, out string pathAndQuery)
    {
        scheme = authority = pathAndQuery = string.Empty;
        var separator = url.IndexOf("://", StringComparison.Ordinal);
        if (separator <= 0)
        {
            return false;
        }

        scheme = url[..separator].ToLowerInvariant();
        if (scheme is not ("http" or "https"))
        {
            return false;
        }

        var start = separator + 3;
        var end = url.AsSpan(start).IndexOfAny('/', '?', '#');
        authority = end < 0 ? url[start..] : url.Substring(start, end);
        if (authority.Length == 0 || authority.AsSpan().IndexOfAny(' ', '@') >= 0)
        {
            return false;
        }

        var rest = end < 0 ? string.Empty : url[(start + end)..];
        var fragment = rest.IndexOf('#');
        if (fragment >= 0)
        {
            rest = rest[..fragment];
        }

        pathAndQuery = rest.Length == 0 ? "/" : rest[0] == '?' ? "/" + rest : rest;
        return true;
    }
}
