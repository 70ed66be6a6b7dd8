using System.Net;
using Legate.Stats;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>
/// <c>common_lb_config.update_merge_window</c> on a warmed static cluster, its clock driven by the
/// test: Envoy's leading-edge window over health, weight and metadata changes and its cluster
/// manager counters.
/// </summary>
public sealed class UpdateMergeWindowTests
{
    private static string Yaml(string? window) => $$"""
        name: backend
        type: STATIC
        {{(window is null ? "" : $"common_lb_config: {{ update_merge_window: {window} }}")}}
        load_assignment:
          cluster_name: backend
          endpoints:
          - lb_endpoints:
            - endpoint: { address: { socket_address: { address: 10.0.0.1, port_value: 80 } } }
            - endpoint: { address: { socket_address: { address: 10.0.0.2, port_value: 80 } } }
            - endpoint: { address: { socket_address: { address: 10.0.0.3, port_value: 80 } } }
        """;

    private static async Task<(Cluster Cluster, ManualTimeProvider Time, StatsStore Stats)> StartAsync(string? window)
    {
        var time = new ManualTimeProvider();
        var stats = new StatsStore();
        var context = new ClusterFactoryContext { DnsResolver = new FakeDnsResolver(), TimeProvider = time, Random = new Random(1), Stats = stats };
        var cluster = UpstreamTestConfigs.Build(Yaml(window), context);
        await cluster.WarmAsync(CancellationToken.None);
        return (cluster, time, stats);
    }

    private static long Count(StatsStore stats, string name) => stats.Counter("cluster_manager." + name).Value;

    private static int Healthy(Cluster cluster) => cluster.PrioritySet.Current.HostSets.Sum(s => s.HealthyHosts.Length);

    private static void Fail(Host host, Cluster cluster)
    {
        host.SetHealthFlag(HostHealthFlags.FailedOutlierCheck);
        cluster.PrioritySet.RefreshHealth();
    }

    [Fact]
    public async Task AHealthChangeWithinTheDefaultWindowLandsOnlyWhenTheWindowEnds()
    {
        var (cluster, time, stats) = await StartAsync(window: null);
        await using var _ = cluster;
        var hosts = cluster.PrioritySet.Current.Hosts;
        Assert.Equal(3, Healthy(cluster));

        // The first change after a quiet window goes out at once.
        Fail(hosts[0], cluster);
        Assert.Equal(2, Healthy(cluster));
        Assert.Equal((1, 1, 0), (Count(stats, "cluster_updated"), Count(stats, "update_out_of_merge_window"), Count(stats, "cluster_updated_via_merge")));

        // The next one, 100 ms later, is held for the window (1 s by default), and one more joins it.
        time.Advance(TimeSpan.FromMilliseconds(100));
        Fail(hosts[1], cluster);
        Assert.Equal(2, Healthy(cluster));
        time.Advance(TimeSpan.FromMilliseconds(500));
        hosts[1].ClearHealthFlag(HostHealthFlags.FailedOutlierCheck);
        hosts[2].SetHealthFlag(HostHealthFlags.FailedOutlierCheck);
        cluster.PrioritySet.RefreshHealth();
        Assert.Equal(2, Healthy(cluster));
        // Meanwhile the load balancer still sees the hosts as they were delivered.
        Assert.Contains(hosts[2], Enumerable.Range(0, 4).Select(_ => cluster.LoadBalancer.ChooseHost(null)));
        time.Advance(TimeSpan.FromMilliseconds(499));
        Assert.Contains(hosts[2], cluster.PrioritySet.Current.HostSets[0].HealthyHosts);

        // The window's timer (1 s after the held change) delivers both as one update.
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, Healthy(cluster));
        Assert.Equal([hosts[1]], cluster.PrioritySet.Current.HostSets[0].HealthyHosts.ToArray());
        Assert.Equal((1, 1, 1, 0), (Count(stats, "cluster_updated"), Count(stats, "update_out_of_merge_window"), Count(stats, "cluster_updated_via_merge"), Count(stats, "update_merge_cancelled")));
        // More than a window later: at once again.
        time.Advance(TimeSpan.FromMilliseconds(1001));
        hosts[0].ClearHealthFlag(HostHealthFlags.FailedOutlierCheck);
        cluster.PrioritySet.RefreshHealth();
        Assert.Equal(2, Healthy(cluster));
        Assert.Equal((2, 2), (Count(stats, "cluster_updated"), Count(stats, "update_out_of_merge_window")));
    }

    [Fact]
    public async Task AWeightChangeIsMergeableButAddingAHostIsDeliveredAtOnceWithWhatWasHeld()
    {
        var (cluster, time, stats) = await StartAsync("2s");
        await using var _ = cluster;
        var set = cluster.PrioritySet;
        var hosts = set.Current.Hosts;
        Fail(hosts[0], cluster);

        // A new weight for a kept host (as an EDS or DNS update brings it) is held.
        var version = set.Current.Version;
        var reweighted = hosts.Select((h, i) => new Host(h.Address, weight: i == 2 ? 5u : 1u, locality: h.Locality)).ToArray();
        var update = set.Update(reweighted);
        Assert.True(update.Changed);
        Assert.Equal(version, set.Current.Version);
        Assert.Equal(5u, hosts[2].Weight);

        // A health change joins it; a host added is delivered at once and takes both with it.
        Fail(hosts[1], cluster);
        Assert.Equal(2, Healthy(cluster));
        time.Advance(TimeSpan.FromMilliseconds(300));
        set.Update([.. reweighted, new Host(new IPEndPoint(IPAddress.Parse("10.0.0.4"), 80))]);
        Assert.Equal(4, set.Current.Hosts.Length);
        Assert.Equal(2, Healthy(cluster));
        Assert.DoesNotContain(hosts[1], set.Current.HostSets[0].HealthyHosts);
        Assert.Equal((2, 1, 0, 1), (Count(stats, "cluster_updated"), Count(stats, "update_out_of_merge_window"), Count(stats, "cluster_updated_via_merge"), Count(stats, "update_merge_cancelled")));

        // The cancelled timer delivers nothing more.
        version = set.Current.Version;
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(version, set.Current.Version);
        Assert.Equal(0, Count(stats, "cluster_updated_via_merge"));
    }

    [Fact]
    public async Task AHostMovingToAnotherPriorityIsNotHeld()
    {
        var (cluster, _, stats) = await StartAsync(null);
        await using var __ = cluster;
        var set = cluster.PrioritySet;
        var hosts = set.Current.Hosts;
        Fail(hosts[0], cluster);
        set.Update(hosts.Select((h, i) => new Host(h.Address, priority: i == 2 ? 1u : 0u, locality: h.Locality)).ToArray());
        Assert.Equal(2, set.Current.HostSets.Length);
        Assert.Equal((2, 0), (Count(stats, "cluster_updated"), Count(stats, "cluster_updated_via_merge")));
    }

    [Fact]
    public async Task AZeroWindowDeliversEveryUpdateAtOnce()
    {
        var (cluster, time, stats) = await StartAsync("0s");
        await using var _ = cluster;
        var hosts = cluster.PrioritySet.Current.Hosts;
        for (var i = 0; i < 3; i++)
        {
            Fail(hosts[i], cluster);
            Assert.Equal(2 - i, Healthy(cluster));
        }

        Assert.Equal(0, time.ArmedTimers);
        Assert.Equal((3, 0, 0), (Count(stats, "cluster_updated"), Count(stats, "update_out_of_merge_window"), Count(stats, "cluster_updated_via_merge")));
    }

    [Fact]
    public void UpdatesBeforeTheClusterIsWarmAreNeverHeld()
    {
        var time = new ManualTimeProvider();
        var stats = new StatsStore();
        var cluster = UpstreamTestConfigs.Build(Yaml(null), new ClusterFactoryContext { DnsResolver = new FakeDnsResolver(), TimeProvider = time, Stats = stats });
        var hosts = cluster.PrioritySet.Current.Hosts;
        Fail(hosts[0], cluster);
        Fail(hosts[1], cluster);
        Assert.Equal(1, Healthy(cluster));
        Assert.Equal(0, Count(stats, "cluster_updated"));
    }
}
