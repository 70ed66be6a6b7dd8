using Legate.Http;
using Legate.Upstream;

namespace Legate.Router.Redirect;

/// <summary>
/// Where a followed internal redirect goes: the route the redirected request matched and, for a
/// forwarding route, its cluster (null: a direct response or redirect route answers it, as
/// Envoy's recreated stream would); <see cref="DropBody"/> when a 303 turned it into a GET.
/// </summary>
internal readonly record struct InternalRedirectTarget(RouteEntry Route, Cluster? Cluster, bool DropBody);
