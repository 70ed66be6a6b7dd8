using Legate.Stats;

namespace Legate.Xds;

/// <summary>Envoy's <c>control_plane.*</c>: whether the xDS stream is connected, requests waiting to be sent, and how often the request rate limit held one back.</summary>
internal sealed class ControlPlaneStats(StatsStore store)
{
    public Gauge ConnectedState { get; } = store.Gauge("control_plane.connected_state", ImportMode.NeverImport);

    public Gauge PendingRequests { get; } = store.Gauge("control_plane.pending_requests", ImportMode.NeverImport);

    public Counter RateLimitEnforced { get; } = store.Counter("control_plane.rate_limit_enforced");
}
