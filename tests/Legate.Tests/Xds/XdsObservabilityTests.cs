using System.Text.Json;
using Legate.Tests.Extensions.Filters.Http;
using Legate.Tests.Harness;
using Legate.Xds;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>
/// What an operator sees of the xDS client: the subscription stats (update_attempt, update_success,
/// update_time, version) and <c>/config_dump</c>'s dynamic sections (version_info, last_updated,
/// warming states, EDS assignments), Delta's system_version_info, the node identity the command
/// line sets, and warming as the dumps and gauges show it. Times come from a clock the test moves,
/// so they are asserted exactly.
/// </summary>
public sealed class XdsObservabilityTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.UnixEpoch + TimeSpan.FromSeconds(1000);

    private static async Task<JsonElement> DumpSectionAsync(InProcessLegate legate, string typeSuffix, string query = "")
    {
        var json = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/config_dump" + query));
        using var document = JsonDocument.Parse(json);
        foreach (var config in document.RootElement.GetProperty("configs").EnumerateArray())
        {
            if (config.GetProperty("@type").GetString()!.EndsWith(typeSuffix, StringComparison.Ordinal))
            {
                return config.Clone();
            }
        }

        throw new InvalidOperationException("no " + typeSuffix + " in " + json);
    }

    private static string Timestamp(TimeSpan sinceStart) => Google.Protobuf.JsonFormatter.ToDiagnosticString(
        Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(Start + sinceStart)).Trim('"');

    [Fact]
    public async Task StatsAndConfigDumpCarryVersionsAndUpdateTimesOnTheServersClock()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        ServeOneRoutedCluster(xds, "blue", blue.Port);
        var clock = new ManualClock();
        clock.Advance(Start - DateTimeOffset.UnixEpoch);
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port), clock);
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));
        await xds.WaitForRequestAsync(r => r.TypeUrl == RouteType && r.VersionInfo == "r1");

        var start = Start.ToUnixTimeMilliseconds();
        foreach (var (prefix, version) in new[] { ("cluster_manager.cds.", "c1"), ("listener_manager.lds.", "l1"), ("http.ingress.rds.main.", "r1"), ("cluster.blue.", "e1") })
        {
            Assert.Equal(1, XdsWait.Counter(legate, prefix + "update_attempt"));
            Assert.Equal(1, XdsWait.Counter(legate, prefix + "update_success"));
            Assert.Equal(start, XdsWait.Gauge(legate, prefix + "update_time"));
            Assert.Equal(XdsStats.HashVersion(version), XdsWait.Gauge(legate, prefix + "version"));
        }

        // Five seconds later the routes change: only RDS moves its time and version.
        clock.Advance(TimeSpan.FromSeconds(5));
        xds.Set(RouteType, "r2", Routes("main", "blue", prefix: "/v2"));
        await xds.WaitForRequestAsync(r => r.TypeUrl == RouteType && r.VersionInfo == "r2");
        Assert.Equal(start + 5000, XdsWait.Gauge(legate, "http.ingress.rds.main.update_time"));
        Assert.Equal(XdsStats.HashVersion("r2"), XdsWait.Gauge(legate, "http.ingress.rds.main.version"));
        Assert.Equal(2, XdsWait.Counter(legate, "http.ingress.rds.main.update_success"));
        Assert.Equal(start, XdsWait.Gauge(legate, "cluster_manager.cds.update_time"));

        // A CDS response repeating the cluster unchanged counts, but the cluster keeps its version and last_updated.
        clock.Advance(TimeSpan.FromSeconds(5));
        xds.Set(ClusterType, "c2", EdsCluster("blue"));
        await xds.WaitForRequestAsync(r => r.TypeUrl == ClusterType && r.VersionInfo == "c2");
        Assert.Equal(start + 10_000, XdsWait.Gauge(legate, "cluster_manager.cds.update_time"));

        var clusters = await DumpSectionAsync(legate, "ClustersConfigDump");
        Assert.Equal("c2", clusters.GetProperty("version_info").GetString());
        var cluster = Assert.Single(clusters.GetProperty("dynamic_active_clusters").EnumerateArray());
        Assert.Equal("blue", cluster.GetProperty("cluster").GetProperty("name").GetString());
        Assert.Equal("c1", cluster.GetProperty("version_info").GetString());
        Assert.Equal(Timestamp(TimeSpan.Zero), cluster.GetProperty("last_updated").GetString());

        var listeners = await DumpSectionAsync(legate, "ListenersConfigDump");
        Assert.Equal("l1", listeners.GetProperty("version_info").GetString());
        var listener = Assert.Single(listeners.GetProperty("dynamic_listeners").EnumerateArray());
        Assert.Equal("ingress", listener.GetProperty("name").GetString());
        Assert.Equal("l1", listener.GetProperty("active_state").GetProperty("version_info").GetString());
        Assert.Equal(Timestamp(TimeSpan.Zero), listener.GetProperty("active_state").GetProperty("last_updated").GetString());

        var routes = await DumpSectionAsync(legate, "RoutesConfigDump");
        var route = Assert.Single(routes.GetProperty("dynamic_route_configs").EnumerateArray());
        Assert.Equal("r2", route.GetProperty("version_info").GetString());
        Assert.Equal(Timestamp(TimeSpan.FromSeconds(5)), route.GetProperty("last_updated").GetString());

        // ?include_eds adds the assignments EDS delivered.
        var endpoints = await DumpSectionAsync(legate, "EndpointsConfigDump", "?include_eds");
        var assignment = Assert.Single(endpoints.GetProperty("dynamic_endpoint_configs").EnumerateArray());
        Assert.Equal("e1", assignment.GetProperty("version_info").GetString());
        Assert.Equal("blue", assignment.GetProperty("endpoint_config").GetProperty("cluster_name").GetString());
        Assert.Equal(Timestamp(TimeSpan.Zero), assignment.GetProperty("last_updated").GetString());
    }

    [Fact]
    public async Task DeltaSystemVersionInfoIsTheTypesVersionAndEachResourceKeepsItsOwn()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        ServeOneRoutedCluster(xds, "blue", blue.Port, version: "s1");
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType: "AGGREGATED_DELTA_GRPC"));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // The scripted server sends system_version_info "s2" and per-resource versions "s2:<hash>".
        xds.Set(ClusterType, "s2", EdsCluster("blue"), EdsCluster("extra"));
        xds.Set(EndpointType, "s2", Endpoints("blue", blue.Port), Endpoints("extra", blue.Port));
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "cluster_manager.cds.version") == XdsStats.HashVersion("s2"), "the CDS version to follow system_version_info");
        await XdsWait.UntilAsync(() => legate.Server.Clusters.Find("extra") is not null, "cluster extra to warm");

        var clusters = await DumpSectionAsync(legate, "ClustersConfigDump");
        Assert.Equal("s2", clusters.GetProperty("version_info").GetString());
        var versions = clusters.GetProperty("dynamic_active_clusters").EnumerateArray()
            .ToDictionary(c => c.GetProperty("cluster").GetProperty("name").GetString()!, c => c.GetProperty("version_info").GetString()!);
        Assert.StartsWith("s1:", versions["blue"], StringComparison.Ordinal);
        Assert.StartsWith("s2:", versions["extra"], StringComparison.Ordinal);
        var listeners = await DumpSectionAsync(legate, "ListenersConfigDump");
        Assert.Equal("s1", listeners.GetProperty("version_info").GetString());
    }

    [Fact]
    public async Task ServiceFlagsSetTheNodeSentToTheControlPlane()
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1");
        xds.Set(ListenerType, "l1");
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port),
            "--service-cluster", "flag-cluster", "--service-node", "flag-node", "--service-zone", "flag-zone");
        await xds.WaitForRequestAsync(r => r.TypeUrl == ListenerType && r.VersionInfo == "l1");

        var node = xds.Requests.First().Node;
        Assert.Equal("flag-node", node.Id);
        Assert.Equal("flag-cluster", node.Cluster);
        Assert.Equal("flag-zone", node.Locality.Zone);
        Assert.Equal("legate", node.UserAgentName);
        Assert.False(string.IsNullOrEmpty(node.UserAgentVersion));
    }

    [Fact]
    public async Task ANewListenerWarmsUntilItsRouteConfigurationArrives()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        ServeOneRoutedCluster(xds, "blue", blue.Port);
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // A second listener names a route configuration the server does not have yet.
        xds.Set(ListenerType, "l2", RdsListener("ingress", "main"), RdsListener("late", "late-routes"));
        await xds.WaitForRequestAsync(r => r.TypeUrl == RouteType && r.ResourceNames.Contains("late-routes"));
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "listener_manager.total_listeners_warming") == 1, "listener late to warm");
        Assert.Equal("no listener", await XdsWait.GetAsync(legate, "late"));
        Assert.Equal(1, XdsWait.Gauge(legate, "listener_manager.total_listeners_active"));
        var listeners = await DumpSectionAsync(legate, "ListenersConfigDump");
        var late = listeners.GetProperty("dynamic_listeners").EnumerateArray().Single(l => l.GetProperty("name").GetString() == "late");
        Assert.True(late.TryGetProperty("warming_state", out _));
        Assert.False(late.TryGetProperty("active_state", out _));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // The routes arrive: the listener finishes warming and serves them.
        xds.Set(RouteType, "r2", Routes("main", "blue"), Routes("late-routes", "blue"));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "late") == "blue", "listener late to serve");
        // The gauges follow the swap (the socket can accept a moment before they do).
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "listener_manager.total_listeners_warming") == 0
            && XdsWait.Gauge(legate, "listener_manager.total_listeners_active") == 2, "the listener gauges to follow");
    }

    [Fact]
    public async Task AChangedClusterWarmsWhileTheOldOneKeepsServingThenReplacesIt()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        ServeOneRoutedCluster(xds, "app", blue.Port);
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));
        var old = legate.Server.Clusters.Find("app");

        // The cluster now takes its endpoints from another assignment, which the server does not have yet.
        xds.Set(ClusterType, "c2", EdsCluster("app", serviceName: "app-v2"));
        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.ResourceNames.Contains("app-v2"));
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "cluster_manager.warming_clusters") == 1, "the new app to warm");
        Assert.Same(old, legate.Server.Clusters.Find("app"));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));
        var clusters = await DumpSectionAsync(legate, "ClustersConfigDump");
        var warming = Assert.Single(clusters.GetProperty("dynamic_warming_clusters").EnumerateArray());
        Assert.Equal("c2", warming.GetProperty("version_info").GetString());
        Assert.Equal("c1", Assert.Single(clusters.GetProperty("dynamic_active_clusters").EnumerateArray()).GetProperty("version_info").GetString());

        // Its endpoints arrive: the warm cluster replaces the old one and traffic follows.
        xds.Set(EndpointType, "e2", Endpoints("app", blue.Port), Endpoints("app-v2", green.Port));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "traffic to the new cluster");
        Assert.NotSame(old, legate.Server.Clusters.Find("app"));
        // The gauges follow the swap (traffic can reach the new cluster a moment before they do).
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "cluster_manager.warming_clusters") == 0, "no cluster warming");
        Assert.Equal(1, XdsWait.Counter(legate, "cluster_manager.cluster_modified"));
    }
}
