using System.Net;

namespace Legate.Upstream;

/// <summary>
/// The load balancer context of an L4 connection (tcp_proxy): no retries; the hash of the
/// filter's <c>hash_policy</c> for consistent-hash load balancers, and the connection's restored
/// original destination for ORIGINAL_DST clusters.
/// </summary>
internal sealed class ConnectionLoadBalancerContext : LoadBalancerContext
{
    public ConnectionLoadBalancerContext(IPEndPoint? originalDestination, ulong? hashKey = null)
    {
        DownstreamOriginalDestination = originalDestination;
        HashKey = hashKey;
    }
}
