using System.Net;
using Envoy.Config.Core.V3;
using Legate.Upstream;
using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Tests.Upstream;

public sealed class StaticClusterTests
{
    private const string Yaml = """
        name: backend
        type: STATIC
        connect_timeout: 0.25s
        lb_policy: ROUND_ROBIN
        load_assignment:
          cluster_name: backend
          endpoints:
          - locality: { region: us-east-1, zone: us-east-1a }
            lb_endpoints:
            - endpoint:
                address: { socket_address: { address: 10.0.0.1, port_value: 8080 } }
                hostname: one.backend
              load_balancing_weight: 2
              metadata: { filter_metadata: { envoy.lb: { canary: true } } }
            - endpoint: { address: { socket_address: { address: "::1", port_value: 8081 } } }
              health_status: DRAINING
          - priority: 1
            lb_endpoints:
            - endpoint: { address: { socket_address: { address: 10.0.0.3, port_value: 8082 } } }
              health_status: DEGRADED
        """;

    [Fact]
    public async Task BuildsOneHostPerEndpointWithItsAttributes()
    {
        var cluster = UpstreamTestConfigs.Build(Yaml);
        await cluster.InitializeAsync(CancellationToken.None);

        Assert.IsType<StaticCluster>(cluster);
        Assert.Equal("backend", cluster.Name);
        Assert.Equal(DiscoveryType.Static, cluster.Type);
        Assert.Equal(TimeSpan.FromMilliseconds(250), cluster.ConnectTimeout);
        Assert.Equal(LbPolicy.RoundRobin, cluster.LbPolicy);

        var snapshot = cluster.PrioritySet.Current;
        Assert.Equal(["10.0.0.1:8080", "[::1]:8081", "10.0.0.3:8082"], UpstreamTestConfigs.Addresses(snapshot.Hosts));
        var (one, two, three) = (snapshot.Hosts[0], snapshot.Hosts[1], snapshot.Hosts[2]);
        Assert.Equal("one.backend", one.Hostname);
        Assert.Equal(2u, one.Weight);
        Assert.Equal(new Locality { Region = "us-east-1", Zone = "us-east-1a" }, one.Locality);
        Assert.True(one.Metadata!.FilterMetadata["envoy.lb"].Fields["canary"].BoolValue);
        Assert.Equal(HostHealth.Healthy, one.Health);
        Assert.Equal("", two.Hostname);
        Assert.Equal(1u, two.Weight);
        Assert.Equal(HostHealth.Unhealthy, two.Health);
        Assert.Equal(HealthStatus.Draining, two.HealthStatus);
        Assert.Equal(1u, three.Priority);
        Assert.Null(three.Locality);
        Assert.Equal(HostHealth.Degraded, three.Health);

        Assert.Equal([0u, 1u], snapshot.HostSets.Select(s => s.Priority));
        Assert.Equal([one], snapshot.HostSets[0].HealthyHosts.ToArray());
        Assert.Equal([three], snapshot.HostSets[1].DegradedHosts.ToArray());

        // The DRAINING host is excluded (Envoy's EDS_STATUS_DRAINING), so it does not count against
        // P0's health: P0 is whole and nothing spills to P1's degraded host (UNHEALTHY would spill 30%).
        var load = Assert.IsAssignableFrom<LoadBalancerBase>(cluster.LoadBalancer).CurrentLoad;
        Assert.Equal(1, snapshot.HostSets[0].ExcludedCount);
        Assert.Equal([100, 0], load.HealthyLoad.ToArray());
        Assert.Equal([0, 0], load.DegradedLoad.ToArray());
    }

    [Fact]
    public void DefaultsAreEnvoys()
    {
        var cluster = UpstreamTestConfigs.Build("""
            name: plain
            load_assignment:
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9000 } } }
            """);

        Assert.Equal(DiscoveryType.Static, cluster.Type);
        Assert.Equal(TimeSpan.FromSeconds(5), cluster.ConnectTimeout);
        Assert.Equal(LbPolicy.RoundRobin, cluster.LbPolicy);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9000), cluster.LoadBalancer.ChooseHost(null)!.Address);
    }

    [Fact]
    public void AClusterWithoutEndpointsHasNoHost()
    {
        var cluster = UpstreamTestConfigs.Build("name: empty\ntype: STATIC");

        Assert.Empty(cluster.PrioritySet.Current.Hosts);
        Assert.Null(cluster.LoadBalancer.ChooseHost(null));
    }

    [Fact]
    public void WeightsSpreadTheLoad()
    {
        var cluster = UpstreamTestConfigs.Build("""
            name: weighted
            load_assignment:
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 10.0.0.1, port_value: 80 } } }
                  load_balancing_weight: 1
                - endpoint: { address: { socket_address: { address: 10.0.0.2, port_value: 80 } } }
                  load_balancing_weight: 3
            """);

        var picks = Enumerable.Range(0, 4000).Select(_ => cluster.LoadBalancer.ChooseHost(null)!.Address.ToString()).ToArray();

        Assert.Equal(1000, picks.Count(p => p == "10.0.0.1:80"));
        Assert.Equal(3000, picks.Count(p => p == "10.0.0.2:80"));
    }
}
