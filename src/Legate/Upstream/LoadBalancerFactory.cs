using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>Builds the load balancer a cluster's <see cref="LoadBalancerSettings"/> ask for.</summary>
internal static class LoadBalancerFactory
{
    public static ILoadBalancer Create(PrioritySet prioritySet, LoadBalancerSettings settings, ClusterStats? stats, LbRandom? random, TimeProvider? time = null,
        LocalClusterSource? localCluster = null, Legate.Runtime.RuntimeLoader? runtime = null)
    {
        LoadBalancerBase balancer = settings.Policy switch
        {
            LbPolicy.LeastRequest => new LeastRequestLoadBalancer(prioritySet, settings, stats, random, time),
            LbPolicy.Random => new RandomLoadBalancer(prioritySet, settings, stats, random),
            LbPolicy.RingHash => new RingHashLoadBalancer(prioritySet, settings, stats, random),
            LbPolicy.Maglev => new MaglevLoadBalancer(prioritySet, settings, stats, random),
            _ => new RoundRobinLoadBalancer(prioritySet, settings, stats, random, time: time),
        };

        // Before the first pick: zone-aware routing (round robin, least request, random) reads both.
        balancer.LocalCluster = localCluster;
        balancer.Runtime = runtime;
        return balancer;
    }
}
