namespace Legate.Upstream;

/// <summary>
/// Envoy's coarse health of a host: what a load balancer looks at. Degraded hosts take traffic
/// only when there are not enough healthy ones.
/// </summary>
internal enum HostHealth
{
    Healthy,
    Degraded,
    Unhealthy,
}
