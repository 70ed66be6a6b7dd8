using System.Collections.Immutable;
using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>
/// An aggregate cluster (<c>cluster_type</c> <c>envoy.clusters.aggregate</c>, lb_policy
/// CLUSTER_PROVIDED): no hosts of its own, only an ordered list of other clusters to fail over
/// between (<see cref="AggregateLoadBalancer"/>). The router counts the request on the aggregate
/// (response codes, timeouts, retries) and the attempt on the cluster whose host was chosen
/// (its circuit breakers, pools, connect timeout, TLS), as Envoy's router and connection pools
/// do. Ready at once, as Envoy's: the listed clusters warm on their own.
/// </summary>
internal sealed class AggregateCluster : Cluster
{
    public AggregateCluster(string name, TimeSpan connectTimeout, ulong lbSeed, ImmutableArray<string> clusterNames)
        : base(name, DiscoveryType.Static, connectTimeout, LbPolicy.ClusterProvided, lbSeed)
    {
        ClusterNames = clusterNames;
    }

    /// <summary>The <c>clusters</c> of its ClusterConfig, in failover order.</summary>
    public ImmutableArray<string> ClusterNames { get; }

    /// <summary>Where the listed clusters are looked up; set when the cluster manager publishes this cluster.</summary>
    internal ClusterManager? Manager { get; private set; }

    internal void Attach(ClusterManager manager) => Manager = manager;

    public override Task InitializeAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
