using Envoy.Config.Endpoint.V3;
using Legate.Config;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Tests.Harness;
using Legate.Tests.Upstream;
using Legate.Upstream;
using Legate.Xds;
using static Legate.Tests.Xds.XdsTestResources;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;

namespace Legate.Tests.Xds;

/// <summary>
/// The batch and diff logic that keeps xDS updates cheap at scale (bench/xds-scale.sh measures the
/// time): one CDS update builds the cluster map once; an EDS update that changes one endpoint
/// keeps every other Host object (with its health and outlier state), checks only that endpoint,
/// and still rejects it with its full field path when it is invalid.
/// </summary>
public sealed class XdsScaleTests
{
    [Fact]
    public async Task OneCdsUpdateWithManyClustersBuildsTheClusterMapOnce()
    {
        await using var manager = ClusterManager.Compile(new Envoy.Config.Bootstrap.V3.Bootstrap(), new ConfigErrors(), UpstreamTestConfigs.Deterministic(new FakeDnsResolver(new ManualTimeProvider()), new ManualTimeProvider()));
        using var logs = LogManager.Create(CommandLineParser.Parse([]), new CapturingLogSink());
        var cds = new CdsApi(manager, new StatsStore(), logs.Get(LogComponents.Config));
        var clusters = Enumerable.Range(0, 50).Select(i => new XdsResource($"s{i}", "v1", StaticCluster($"s{i}", 8000 + i), DateTimeOffset.UtcNow)).ToArray();
        var builds = manager.MapBuilds;

        var errors = await cds.ApplyAsync(new XdsUpdate(clusters, [], "v1", isStateOfWorld: true), CancellationToken.None);
        await cds.FirstWarm.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Empty(errors);
        Assert.Equal(builds + 1, manager.MapBuilds);
        Assert.Equal(clusters.Select(c => c.Name), manager.Clusters.Select(c => c.Name));
        Assert.All(clusters, c => Assert.NotNull(manager.Find(c.Name)));

        // A second update replacing two clusters and removing three: one more build, the others untouched.
        var kept = manager.Find("s10");
        var next = clusters.Skip(3).Select(c => c.Name is "s4" or "s5" ? new XdsResource(c.Name, "v2", StaticCluster(c.Name, 9000), DateTimeOffset.UtcNow) : c).ToArray();
        errors = await cds.ApplyAsync(new XdsUpdate(next, ["s0", "s1", "s2"], "v2", isStateOfWorld: true), CancellationToken.None);
        Assert.Empty(errors);
        await XdsWait.UntilAsync(() => manager.Find("s4")?.PrioritySet.Current.Hosts[0].Address.Port == 9000 && manager.Find("s5")?.PrioritySet.Current.Hosts[0].Address.Port == 9000 && manager.Find("s0") is null, "the second update");
        Assert.Equal(builds + 2, manager.MapBuilds);
        Assert.Same(kept, manager.Find("s10"));
        Assert.Equal(47, manager.Clusters.Length);
        Assert.Equal(["s48", "s49", "s4", "s5"], manager.Clusters.Skip(43).Select(c => c.Name));
    }

    [Fact]
    public async Task ChangesOutsideAPauseArePublishedAndRemovalsReportWhetherTheClusterWasThere()
    {
        await using var manager = ClusterManager.Compile(new Envoy.Config.Bootstrap.V3.Bootstrap(), new ConfigErrors(), UpstreamTestConfigs.Deterministic(new FakeDnsResolver(new ManualTimeProvider()), new ManualTimeProvider()));
        var context = manager.Context;
        var a = ClusterFactory.Create(StaticCluster("a", 1), "", new ConfigErrors(), context)!;
        var b = ClusterFactory.Create(StaticCluster("b", 2), "", new ConfigErrors(), context)!;

        await Task.WhenAll(manager.AddOrUpdateClusterAsync(a, CancellationToken.None), manager.AddOrUpdateClusterAsync(b, CancellationToken.None));

        Assert.Same(a, manager.Find("a"));
        Assert.Same(b, manager.Find("b"));
        Assert.True(await manager.RemoveClusterAsync("a"));
        Assert.False(await manager.RemoveClusterAsync("a"));
        Assert.Null(manager.Find("a"));
        Assert.Equal(["b"], manager.Clusters.Select(c => c.Name));
    }

    [Theory]
    [InlineData("AGGREGATED_GRPC")]
    [InlineData("AGGREGATED_DELTA_GRPC")]
    public async Task OneChangedEndpointKeepsEveryOtherHostWithItsHealthAndOutlierState(string apiType)
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        var ports = Enumerable.Range(20_000, 200).ToArray();
        xds.Set(ClusterType, "c1", EdsCluster("big"));
        xds.Set(EndpointType, "e1", Endpoints("big", ports));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType));
        var cluster = legate.Server.Clusters.Find("big")!;
        await XdsWait.UntilAsync(() => cluster.PrioritySet.Current.Hosts.Length == 200, "the 200 endpoints");
        var before = cluster.PrioritySet.Current.Hosts;
        var ejected = before[7];
        ejected.SetHealthFlag(HostHealthFlags.FailedOutlierCheck);
        var failedCheck = before[8];
        failedCheck.SetHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
        cluster.PrioritySet.RefreshHealth();
        Assert.Equal(198, cluster.PrioritySet.Current.HostSets[0].HealthyHosts.Length);

        ports[3] = 30_000;
        var version = cluster.PrioritySet.Current.Version;
        xds.Set(EndpointType, "e2", Endpoints("big", ports));
        await XdsWait.UntilAsync(() => cluster.PrioritySet.Current.Version != version, "the changed endpoint");

        var after = cluster.PrioritySet.Current.Hosts;
        Assert.Equal(200, after.Length);
        for (var i = 0; i < after.Length; i++)
        {
            if (i == 3)
            {
                Assert.NotSame(before[i], after[i]);
                Assert.Equal(30_000, after[i].Address.Port);
            }
            else
            {
                Assert.Same(before[i], after[i]);
            }
        }

        Assert.True(after[7].HealthFlags.HasFlag(HostHealthFlags.FailedOutlierCheck));
        Assert.True(after[8].HealthFlags.HasFlag(HostHealthFlags.FailedActiveHealthCheck));
        Assert.Equal(198, cluster.PrioritySet.Current.HostSets[0].HealthyHosts.Length);
        Assert.Same(cluster, legate.Server.Clusters.Find("big"));
    }

    [Fact]
    public async Task AnInvalidChangedEndpointIsRejectedAtItsPathWhileTheUnchangedOnesAreNotCheckedAgain()
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        var ports = Enumerable.Range(20_000, 50).ToArray();
        xds.Set(ClusterType, "c1", EdsCluster("big"));
        xds.Set(EndpointType, "e1", Endpoints("big", ports));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        var cluster = legate.Server.Clusters.Find("big")!;
        await XdsWait.UntilAsync(() => cluster.PrioritySet.Current.Hosts.Length == 50, "the 50 endpoints");
        var hosts = cluster.PrioritySet.Current.Hosts;

        var bad = Endpoints("big", ports);
        bad.Endpoints[0].LbEndpoints[41].LoadBalancingWeight = 0;
        bad.Endpoints[0].LbEndpoints[42].Endpoint.Address.SocketAddress.Address = "not-an-ip";
        xds.Set(EndpointType, "e2", bad);

        var nack = await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.ErrorDetail is not null);
        Assert.Equal("e1", nack.VersionInfo);
        Assert.Contains("endpoints[0].lb_endpoints[41].load_balancing_weight", nack.ErrorDetail.Message);
        Assert.Equal(hosts, cluster.PrioritySet.Current.Hosts);

        // Valid again except for the host address, which only compiling the hosts finds.
        bad.Endpoints[0].LbEndpoints[41].LoadBalancingWeight = null;
        xds.Set(EndpointType, "e3", bad);
        var second = await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.ResponseNonce.Length > 0 && r.ErrorDetail?.Message.Contains("lb_endpoints[42]") == true);
        Assert.Contains("endpoints[0].lb_endpoints[42].endpoint.address", second.ErrorDetail.Message);
        Assert.Equal(hosts, cluster.PrioritySet.Current.Hosts);
    }

    [Fact]
    public void OnlyTheLbEndpointsEqualToTheAcceptedOnesAtTheSamePlaceAreSkipped()
    {
        var accepted = Endpoints("big", 1, 2, 3);
        var next = Endpoints("big", 1, 9, 3, 4);

        var skip = XdsResourceValidator.UnchangedParts(next, accepted)!;

        var endpoints = next.Endpoints[0].LbEndpoints;
        Assert.True(skip(endpoints[0]));
        Assert.False(skip(endpoints[1]));
        Assert.True(skip(endpoints[2]));
        Assert.False(skip(endpoints[3]));
        Assert.False(skip(accepted.Endpoints[0].LbEndpoints[0]));
        Assert.False(skip(next));
        Assert.Null(XdsResourceValidator.UnchangedParts(next, null));
        Assert.Null(XdsResourceValidator.UnchangedParts(next, Endpoints("big", 7)));
    }

    [Fact]
    public void APrioritySetUpdateWithTheSameHostObjectsInPlaceKeepsThemAndReportsOnlyTheChange()
    {
        var set = new PrioritySet();
        var hosts = Enumerable.Range(0, 10).Select(i => new Host(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1000 + i))).ToArray();
        set.Update(hosts);
        var replacement = new Host(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 2000));
        var next = hosts.ToArray();
        next[4] = replacement;

        var update = set.Update(next[..9]);

        Assert.Same(replacement, Assert.Single(update.Added));
        Assert.Equal([hosts[4], hosts[9]], update.Removed.OrderBy(h => h.Address.Port).ToArray());
        Assert.Equal(next[..9], set.Current.Hosts.ToArray());
        Assert.Same(HostUpdate.None, set.Update(next[..9]));
    }

    private static ClusterConfig StaticCluster(string name, int port)
    {
        var cluster = new ClusterConfig
        {
            Name = name,
            Type = ClusterConfig.Types.DiscoveryType.Static,
            ConnectTimeout = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            LoadAssignment = Endpoints(name, port),
        };
        return cluster;
    }
}
