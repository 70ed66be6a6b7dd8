using System.Net;

namespace Legate.Upstream;

/// <summary>
/// The load balancer context of an L4 connection (tcp_proxy): no hash, no retries, only the
/// connection's restored original destination for ORIGINAL_DST clusters.
/// </summary>
internal sealed class ConnectionLoadBalancerContext : LoadBalancerContext
{
    public ConnectionLoadBalancerContext(IPEndPoint originalDestination) => DownstreamOriginalDestination = originalDestination;
}
