namespace Legate.Upstream;

/// <summary>
/// A <see cref="ILoadBalancerContext"/> with Envoy's defaults (no hash, no host-selection
/// retries), to derive from.
/// </summary>
internal abstract class LoadBalancerContext : ILoadBalancerContext
{
    public virtual ulong? HashKey => null;

    public virtual int HostSelectionRetryCount => 0;

    public virtual bool ShouldSelectAnotherHost(Host host) => false;
}
