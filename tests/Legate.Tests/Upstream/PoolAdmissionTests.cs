using Legate.Config;
using Legate.Router;
using Legate.Upstream;
using Legate.Upstream.ConnectionPool;

namespace Legate.Tests.Upstream;

/// <summary>
/// <c>max_connection_pools</c> is taken by the pool a host keeps, not by one that lost the race to be
/// made: two requests that find a host without a pool at the same moment both make one, and only one
/// is kept. Before, each pool took its slot when made, so with a limit of one the discarded pool could
/// hold it and every request on the kept pool overflowed (503 UO) for the life of the host.
/// </summary>
public sealed class PoolAdmissionTests
{
    [Fact]
    public async Task TheHttp1PoolAHostKeepsIsAdmittedEvenWhenARacingPoolWasMadeFirst()
    {
        var (cluster, host) = ClusterWithOnePool();
        var transport = RouterFilterFactory.TransportFor(cluster.Info.BufferLimitBytes);
        _ = new Http1ConnectionPool(host, cluster, transport, TimeProvider.System);
        var kept = host.ConnectionPool(0, h => new Http1ConnectionPool(h, cluster, transport, TimeProvider.System));

        // Admitted: it goes on to connect (nothing listens on port 1), it does not overflow.
        await Assert.ThrowsAsync<UpstreamConnectException>(() => kept.AcquireAsync(CancellationToken.None).AsTask());
        Assert.Equal(0, cluster.Info.Stats.UpstreamCxPoolOverflow.Value);

        // The limit still holds for a second pool of the same priority that is used.
        var other = new Http1ConnectionPool(host, cluster, transport, TimeProvider.System);
        await Assert.ThrowsAsync<UpstreamOverflowException>(() => other.AcquireAsync(CancellationToken.None).AsTask());
        Assert.Equal(1, cluster.Info.Stats.UpstreamCxPoolOverflow.Value);
    }

    [Fact]
    public void TheHttp2PoolAHostKeepsIsAdmittedEvenWhenARacingPoolWasMadeFirst()
    {
        var (cluster, host) = ClusterWithOnePool();
        using var discarded = new Http2ConnectionPool(host, cluster);
        var kept = host.ConnectionPool(1, h => new Http2ConnectionPool(h, cluster));

        Assert.True(kept.Admitted);

        // The limit still holds for a second pool of the same priority that is used.
        using var other = new Http2ConnectionPool(host, cluster);
        Assert.False(other.Admitted);
    }

    private static (Cluster Cluster, Host Host) ClusterWithOnePool()
    {
        var errors = new ConfigErrors();
        var cluster = ClusterFactory.Create(UpstreamTestConfigs.ParseCluster("""
            name: c
            connect_timeout: 5s
            circuit_breakers: { thresholds: [ { max_connection_pools: 1 } ] }
            load_assignment:
              cluster_name: c
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } }
            """), "clusters[0]", errors, UpstreamTestConfigs.Deterministic())!;
        Assert.Empty(errors.Errors);
        return (cluster, Assert.Single(cluster.PrioritySet.Current.Hosts));
    }
}
