using System.Net;
using Envoy.Config.Core.V3;
using Legate.Stats;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>Priorities, panic mode, localities and health status through the load balancers, measured over many picks.</summary>
public sealed class PriorityAndLocalityTests
{
    private const int Picks = 100_000;

    [Fact]
    public void HalfAHealthyPrioritySendsThirtyPercentToTheNext()
    {
        var set = new PrioritySet();
        var p0 = new[] { MakeHost(1, 0), MakeHost(2, 0), MakeHost(3, 0, HealthStatus.Unhealthy), MakeHost(4, 0, HealthStatus.Unhealthy) };
        var p1 = new[] { MakeHost(5, 1), MakeHost(6, 1) };
        set.Update([.. p0, .. p1]);
        var lb = new RoundRobinLoadBalancer(set, LoadBalancerSettings.Default, null, LbRandom.Seeded(7));

        var counts = CountPicks(lb, [.. p0, .. p1]);

        Assert.InRange(counts[0] + counts[1], 69_000, 71_000);
        Assert.InRange(counts[4] + counts[5], 29_000, 31_000);
        Assert.Equal(0, counts[2] + counts[3]);
    }

    [Fact]
    public void PanicBalancesOverAllHostsAndCountsLbHealthyPanic()
    {
        var store = new StatsStore();
        var stats = new ClusterStats(store, "c");
        var set = new PrioritySet();
        var hosts = new[] { MakeHost(1, 0), MakeHost(2, 0, HealthStatus.Unhealthy), MakeHost(3, 0, HealthStatus.Unhealthy), MakeHost(4, 0, HealthStatus.Unhealthy) };
        set.Update(hosts);
        var lb = new RoundRobinLoadBalancer(set, LoadBalancerSettings.Default, stats, LbRandom.Seeded(7));

        var counts = CountPicks(lb, hosts);

        Assert.All(counts, c => Assert.Equal(Picks / 4, c));
        Assert.Equal(Picks, store.Counter("cluster.c.lb_healthy_panic").Value);

        // A threshold of 25% takes the cluster out of panic: the healthy host takes everything.
        var calm = new RoundRobinLoadBalancer(set, LoadBalancerSettings.Default with { PanicThreshold = 25 }, stats, LbRandom.Seeded(7));
        Assert.Equal([Picks, 0, 0, 0], CountPicks(calm, hosts));
        Assert.Equal(Picks, store.Counter("cluster.c.lb_healthy_panic").Value);
    }

    [Fact]
    public void LocalityWeightsSplitTheLoad()
    {
        var set = new PrioritySet();
        var east = new Locality { Zone = "east" };
        var west = new Locality { Zone = "west" };
        var hosts = new[]
        {
            MakeHost(1, 0, locality: east, localityWeight: 1), MakeHost(2, 0, locality: east, localityWeight: 1),
            MakeHost(3, 0, locality: west, localityWeight: 3), MakeHost(4, 0, locality: west, localityWeight: 3),
        };
        set.Update(hosts);
        var lb = new RoundRobinLoadBalancer(set, LoadBalancerSettings.Default with { LocalityWeighted = true }, null, LbRandom.Seeded(11));

        var counts = CountPicks(lb, hosts);

        Assert.InRange(counts[0] + counts[1], 24_000, 26_000);
        Assert.InRange(counts[2] + counts[3], 74_000, 76_000);
        // Within a locality, round robin alternates exactly.
        Assert.InRange(counts[0] - counts[1], -1, 1);
    }

    [Fact]
    public void ALocalityLosingHostsShedsLoadByItsOverprovisionedAvailability()
    {
        // East has 1 of 2 healthy: effective weight 1 x min(1, 1.4 x 0.5) = 0.7 against west's 1.
        var set = new PrioritySet();
        var east = new Locality { Zone = "east" };
        var west = new Locality { Zone = "west" };
        var hosts = new[]
        {
            MakeHost(1, 0, locality: east, localityWeight: 1), MakeHost(2, 0, HealthStatus.Unhealthy, east, 1),
            MakeHost(3, 0, locality: west, localityWeight: 1), MakeHost(4, 0, locality: west, localityWeight: 1),
        };
        set.Update(hosts);
        var lb = new RoundRobinLoadBalancer(set, LoadBalancerSettings.Default with { LocalityWeighted = true }, null, LbRandom.Seeded(3));

        var counts = CountPicks(lb, hosts);

        var expectedEast = Picks * 0.7 / 1.7;
        Assert.InRange(counts[0], expectedEast - 1000, expectedEast + 1000);
        Assert.Equal(0, counts[1]);
        Assert.InRange(counts[2] + counts[3], Picks - expectedEast - 1000, Picks - expectedEast + 1000);
    }

    [Fact]
    public void ALocalityWithoutWeightTakesNoTrafficWhenLocalityWeighted()
    {
        var set = new PrioritySet();
        var hosts = new[]
        {
            MakeHost(1, 0, locality: new Locality { Zone = "a" }, localityWeight: 5),
            MakeHost(2, 0, locality: new Locality { Zone = "b" }),
        };
        set.Update(hosts);
        var weighted = new RoundRobinLoadBalancer(set, LoadBalancerSettings.Default with { LocalityWeighted = true }, null, LbRandom.Seeded(3));
        var plain = new RoundRobinLoadBalancer(set, LoadBalancerSettings.Default, null, LbRandom.Seeded(3));

        Assert.Equal([1000, 0], CountPicks(weighted, hosts, 1000));
        Assert.Equal([500, 500], CountPicks(plain, hosts, 1000));
    }

    [Fact]
    public void AnUpdateToOnePriorityKeepsTheOtherPrioritysHostSet()
    {
        var set = new PrioritySet();
        var p0 = new[] { MakeHost(1, 0), MakeHost(2, 0) };
        set.Update([.. p0, MakeHost(3, 1)]);
        var before = set.Current;

        var update = set.Update([.. p0, MakeHost(3, 1), MakeHost(4, 1)]);

        var after = set.Current;
        Assert.Single(update.Added);
        Assert.Same(before.HostSets[0], after.HostSets[0]);
        Assert.NotSame(before.HostSets[1], after.HostSets[1]);

        // A health change rebuilds only the priority it touched.
        p0[0].SetHealthFlag(HostHealthFlags.FailedOutlierCheck);
        set.RefreshHealth();
        Assert.NotSame(after.HostSets[0], set.Current.HostSets[0]);
        Assert.Same(after.HostSets[1], set.Current.HostSets[1]);
    }

    [Theory]
    [InlineData(HealthStatus.Unknown, "Healthy")]
    [InlineData(HealthStatus.Healthy, "Healthy")]
    [InlineData(HealthStatus.Unhealthy, "Unhealthy")]
    [InlineData(HealthStatus.Draining, "Unhealthy")]
    [InlineData(HealthStatus.Timeout, "Unhealthy")]
    [InlineData(HealthStatus.Degraded, "Degraded")]
    public void HealthStatusFromTheLoadAssignmentSetsTheHostsHealth(HealthStatus status, string expected)
    {
        var cluster = UpstreamTestConfigs.Build($$"""
            name: c
            load_assignment:
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 10.0.0.1, port_value: 80 } } }
                  health_status: {{status.ToString().ToUpperInvariant()}}
            """);

        Assert.Equal(expected, cluster.PrioritySet.Current.Hosts[0].Health.ToString());
    }

    [Theory]
    [InlineData(HealthStatus.Draining, 100, 1, "/eds_status_draining")]
    [InlineData(HealthStatus.Unhealthy, 93, 0, "/failed_eds_health")]
    [InlineData(HealthStatus.Timeout, 93, 0, "/failed_eds_health")]
    public void ADrainingEndpointTakesNoTrafficAndIsExcludedFromItsPrioritysHealth(HealthStatus status, int p0Load, int excluded, string flags)
    {
        // Envoy's EDS_STATUS_DRAINING: the host is out of the load balancer like an unhealthy one,
        // and also out of the counts: 2 healthy of 2 keep P0 whole, where 2 of 3 spill 7% to P1.
        var store = new StatsStore();
        var cluster = UpstreamTestConfigs.Build($$"""
            name: eds
            load_assignment:
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 10.0.0.1, port_value: 80 } } }
                - endpoint: { address: { socket_address: { address: 10.0.0.2, port_value: 80 } } }
                - endpoint: { address: { socket_address: { address: 10.0.0.3, port_value: 80 } } }
                  health_status: {{status.ToString().ToUpperInvariant()}}
              - priority: 1
                lb_endpoints:
                - endpoint: { address: { socket_address: { address: 10.0.1.1, port_value: 80 } } }
            """, new ClusterFactoryContext { DnsResolver = new FakeDnsResolver(), Random = new Random(1234), Stats = store });
        var lb = Assert.IsAssignableFrom<LoadBalancerBase>(cluster.LoadBalancer);
        var hosts = cluster.PrioritySet.Current.Hosts.ToArray();

        Assert.Equal([p0Load, 100 - p0Load], lb.CurrentLoad.HealthyLoad.ToArray());
        Assert.Equal(excluded, store.Gauge("cluster.eds.membership_excluded", ImportMode.NeverImport).Value);
        Assert.Equal(3, store.Gauge("cluster.eds.membership_healthy", ImportMode.NeverImport).Value);
        Assert.Equal(flags, Legate.Admin.ClustersHandler.HealthFlags(hosts[2]));
        Assert.Equal(0, CountPicks(cluster.LoadBalancer, hosts, 10_000)[2]);

        // An update (as EDS sends) that marks a kept host DRAINING excludes it at once; HEALTHY brings the other back.
        Host Endpoint(Host h, HealthStatus s) => new(h.Address, priority: h.Priority, healthStatus: s, locality: h.Locality);
        cluster.PrioritySet.Update([Endpoint(hosts[0], HealthStatus.Draining), Endpoint(hosts[1], HealthStatus.Healthy), Endpoint(hosts[2], HealthStatus.Healthy), Endpoint(hosts[3], HealthStatus.Healthy)]);
        Assert.Equal("/eds_status_draining", Legate.Admin.ClustersHandler.HealthFlags(hosts[0]));
        Assert.Equal("healthy", Legate.Admin.ClustersHandler.HealthFlags(hosts[2]));
        Assert.Equal(1, store.Gauge("cluster.eds.membership_excluded", ImportMode.NeverImport).Value);
        Assert.Equal([100, 0], lb.CurrentLoad.HealthyLoad.ToArray());
        var counts = CountPicks(cluster.LoadBalancer, hosts, 10_000);
        Assert.Equal(0, counts[0]);
        Assert.Equal(10_000, counts[1] + counts[2]);
    }

    [Fact]
    public void PolicyCommonLbConfigAndMembershipStatsComeFromTheConfig()
    {
        var store = new StatsStore();
        var cluster = UpstreamTestConfigs.Build("""
            name: shop
            common_lb_config:
              healthy_panic_threshold: { value: 10 }
              locality_weighted_lb_config: {}
            load_assignment:
              policy: { overprovisioning_factor: 100 }
              endpoints:
              - locality: { zone: a }
                load_balancing_weight: 2
                lb_endpoints:
                - endpoint: { address: { socket_address: { address: 10.0.0.1, port_value: 80 } } }
                - endpoint: { address: { socket_address: { address: 10.0.0.2, port_value: 80 } } }
                  health_status: DEGRADED
                - endpoint: { address: { socket_address: { address: 10.0.0.3, port_value: 80 } } }
                  health_status: UNHEALTHY
              - priority: 1
                lb_endpoints:
                - endpoint: { address: { socket_address: { address: 10.0.1.1, port_value: 80 } } }
            """, new ClusterFactoryContext { DnsResolver = new FakeDnsResolver(), Random = new Random(1234), Stats = store });

        var lb = Assert.IsAssignableFrom<LoadBalancerBase>(cluster.LoadBalancer);
        Assert.Equal(10, lb.Settings.PanicThreshold);
        Assert.True(lb.Settings.LocalityWeighted);
        Assert.Equal(100u, cluster.PrioritySet.Current.OverprovisioningFactor);
        Assert.Equal(2u, cluster.PrioritySet.Current.Hosts[0].LocalityWeight);
        // Factor 100: P0 33% healthy (and 33% degraded), P1 100%: healthy capacity covers the rest,
        // so P1's healthy host takes 67% and P0's degraded host nothing.
        Assert.Equal([33, 67], lb.CurrentLoad.HealthyLoad.ToArray());
        Assert.Equal([0, 0], lb.CurrentLoad.DegradedLoad.ToArray());

        Assert.Equal(4, store.Gauge("cluster.shop.membership_total", ImportMode.NeverImport).Value);
        Assert.Equal(2, store.Gauge("cluster.shop.membership_healthy", ImportMode.NeverImport).Value);
        Assert.Equal(1, store.Gauge("cluster.shop.membership_degraded", ImportMode.NeverImport).Value);
        Assert.Equal(1, store.Counter("cluster.shop.membership_change").Value);

        // A health change moves the gauges but is no membership change; a new host is.
        var first = cluster.PrioritySet.Current.Hosts[0];
        first.SetHealthFlag(HostHealthFlags.FailedOutlierCheck);
        cluster.PrioritySet.RefreshHealth();
        Assert.Equal(1, store.Gauge("cluster.shop.membership_healthy", ImportMode.NeverImport).Value);
        Assert.Equal(1, store.Counter("cluster.shop.membership_change").Value);
        cluster.PrioritySet.Update([.. cluster.PrioritySet.Current.Hosts, MakeHost(9, 1)]);
        Assert.Equal(2, store.Counter("cluster.shop.membership_change").Value);
        Assert.Equal(5, store.Gauge("cluster.shop.membership_total", ImportMode.NeverImport).Value);
    }

    private static Host MakeHost(int n, uint priority, HealthStatus status = HealthStatus.Unknown, Locality? locality = null, uint localityWeight = 0) =>
        new(new IPEndPoint(IPAddress.Parse($"10.9.{n >> 8 & 255}.{n & 255}"), 80), priority: priority, healthStatus: status, locality: locality, localityWeight: localityWeight);

    private static int[] CountPicks(ILoadBalancer lb, Host[] hosts, int picks = Picks)
    {
        var counts = new int[hosts.Length];
        for (var i = 0; i < picks; i++)
        {
            var host = lb.ChooseHost(null);
            counts[Array.IndexOf(hosts, host)]++;
        }

        return counts;
    }
}
