namespace Legate.Upstream;

/// <summary>Chooses the upstream host for one request or connection attempt.</summary>
internal interface ILoadBalancer
{
    /// <summary>
    /// The host to use, or null when the cluster has no host to offer (Envoy's "no healthy
    /// upstream": the router answers 503 with response flag UH). Safe to call from any number of
    /// threads at once; does not lock or allocate on the common path.
    /// </summary>
    Host? ChooseHost(ILoadBalancerContext? context);
}
