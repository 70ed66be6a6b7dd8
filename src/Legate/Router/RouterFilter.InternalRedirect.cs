using Legate.Http;
using Legate.Router.Redirect;

namespace Legate.Router;

/// <summary>The router's side of a followed internal redirect (see <see cref="InternalRedirect"/>).</summary>
internal sealed partial class RouterFilter
{
    /// <summary>
    /// Applies a followed redirect before the next attempt: a 303 drops the buffered body, the
    /// filters before the router decode the redirected request again, a forwarding target switches route and cluster, and a direct response or redirect target is
    /// answered here as Envoy's recreated stream would answer it (true: the request is answered).
    /// </summary>
    private async ValueTask<bool> FollowInternalRedirectAsync(InternalRedirectTarget redirect)
    {
        if (redirect.DropBody)
        {
            _replay?.Clear();
            _replay = null;
            _headersEndStream = true;
        }

        // As Envoy's recreated stream, the filters before the router see the redirected request
        // (fresh instances); one of them may answer it instead.
        if (!await _stream.RecreateDecodeBeforeAsync(this, _headersEndStream, _replay).ConfigureAwait(false))
        {
            return true;
        }

        if (redirect.Cluster is { } cluster)
        {
            FollowInternalRedirect(redirect.Route, cluster);
            return false;
        }

        var stream = _stream;
        var route = redirect.Route;
        var stats = stream.Config.Stats;

        // The route's response header mutations apply to the answer (EncodeHeadersAsync reads _route).
        _route = route;
        switch (route.Action)
        {
            case RouteActionKind.DirectResponse:
                stats.RqDirectResponse.Inc();
                await stream.SendLocalReplyAsync(route.Status, route.Body, ResponseCodeDetails.DirectResponse).ConfigureAwait(false);
                break;
            case RouteActionKind.Redirect:
                stats.RqRedirect.Inc();
                await stream.SendLocalReplyAsync(route.Redirect!.Status, [], ResponseCodeDetails.DirectResponse, ResponseFlags.None, [("location", RedirectLocation(stream, _head, route))]).ConfigureAwait(false);
                break;
            default:
                await stream.SendLocalReplyAsync(503, "route action not implemented yet", "route_action_not_implemented").ConfigureAwait(false);
                break;
        }

        return true;
    }
}
