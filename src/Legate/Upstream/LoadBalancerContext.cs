namespace Legate.Upstream;

/// <summary>
/// What the caller (the router, tcp_proxy) tells the load balancer about the request, as Envoy's
/// LoadBalancerContext. The router derives its per-request state from this, so passing it costs
/// no allocation. Hash keys (ring hash, maglev), metadata match (subsets) and priority load
/// overrides join here with the policies that use them.
/// </summary>
internal abstract class LoadBalancerContext
{
    /// <summary>
    /// How many times the load balancer may pick again when <see cref="ShouldSelectAnotherHost"/>
    /// rejects a host (the retry policy's host_selection_retry_max_attempts).
    /// </summary>
    public virtual int HostSelectionRetryCount => 0;

    /// <summary>True to ask for another host (retry host predicates such as previous_hosts).</summary>
    public virtual bool ShouldSelectAnotherHost(Host host) => false;

    /// <summary>
    /// The request's hash for consistent-hash load balancers (ring hash, Maglev), computed by the
    /// router from the route's hash_policy; null when the route has none or no policy produced one.
    /// </summary>
    public ulong? HashKey { get; set; }
}
