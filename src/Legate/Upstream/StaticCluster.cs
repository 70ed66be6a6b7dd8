using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>A STATIC cluster: the IP addresses listed in its load_assignment, fixed for its lifetime.</summary>
internal sealed class StaticCluster : Cluster
{
    public StaticCluster(string name, TimeSpan connectTimeout, LbPolicy lbPolicy, ulong lbSeed, IReadOnlyList<Host> hosts)
        : base(name, DiscoveryType.Static, connectTimeout, lbPolicy, lbSeed)
    {
        // Nothing to wait for: the hosts are there from the start.
        PrioritySet.Update(hosts);
    }

    public override Task InitializeAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
