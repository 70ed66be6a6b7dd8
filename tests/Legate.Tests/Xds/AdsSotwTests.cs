using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>
/// Legate as an xDS client over ADS state of the world, against the tests' own scripted server:
/// initial sync of CDS/EDS/LDS/RDS, ACKs, NACKs with the old config still serving, removals,
/// reconnects with back-off, warming and initial_fetch_timeout.
/// </summary>
public sealed class AdsSotwTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static async Task<(ScriptedXdsServer Xds, ScriptedUpstream Blue, ScriptedUpstream Green)> StartWorldAsync()
    {
        var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", EdsCluster("blue"), EdsCluster("green"));
        xds.Set(EndpointType, "e1", Endpoints("blue", blue.Port), Endpoints("green", green.Port));
        xds.Set(ListenerType, "l1", RdsListener("ingress", "main"));
        xds.Set(RouteType, "r1", Routes("main", "blue"));
        return (xds, blue, green);
    }

    [Fact]
    public async Task InitialSyncAppliesEveryTypeAcksEachVersionAndServesTraffic()
    {
        var (xds, blue, green) = await StartWorldAsync();
        await using var _ = xds;
        await using var __ = blue;
        await using var ___ = green;
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));

        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // Each type was ACKed: the version it was sent, with the nonce of that response.
        foreach (var (type, version) in new[] { (ClusterType, "c1"), (EndpointType, "e1"), (ListenerType, "l1"), (RouteType, "r1") })
        {
            var ack = await xds.WaitForRequestAsync(r => r.TypeUrl == type && r.VersionInfo == version && r.ResponseNonce.Length > 0);
            Assert.Null(ack.ErrorDetail);
        }

        // The node identity goes on the first request of the stream.
        var first = xds.Requests.First();
        Assert.Equal("test-node", first.Node.Id);
        Assert.Equal("test-cluster", first.Node.Cluster);
        // EDS and RDS are named subscriptions; CDS and LDS are wildcards.
        Assert.Contains(xds.Requests, r => r.TypeUrl == EndpointType && r.ResourceNames.Contains("blue") && r.ResourceNames.Contains("green"));
        Assert.Contains(xds.Requests, r => r.TypeUrl == RouteType && r.ResourceNames.SequenceEqual(["main"]));
        Assert.All(xds.Requests.Where(r => r.TypeUrl is ClusterType or ListenerType), r => Assert.Empty(r.ResourceNames));

        using var ready = await legate.Http.GetAsync(new Uri(legate.AdminUri, "/ready"));
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal(1, XdsWait.Gauge(legate, "control_plane.connected_state"));
        Assert.Equal(1, XdsWait.Counter(legate, "cluster_manager.cds.update_success"));
        Assert.Equal(1, XdsWait.Counter(legate, "listener_manager.lds.update_success"));
        Assert.Equal(3, XdsWait.Gauge(legate, "cluster_manager.active_clusters"));
        Assert.Equal(1, XdsWait.Gauge(legate, "listener_manager.total_listeners_active"));
        Assert.True(XdsWait.Counter(legate, "http.ingress.rds.main.update_success") >= 1);
        Assert.True(XdsWait.Counter(legate, "cluster.blue.update_success") >= 1);

        // Route and endpoints move: traffic follows.
        xds.Set(RouteType, "r2", Routes("main", "green"));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "the route to move to green");
        await xds.WaitForRequestAsync(r => r.TypeUrl == RouteType && r.VersionInfo == "r2");

        var dump = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/config_dump"));
        Assert.Contains("dynamic_active_clusters", dump);
        Assert.Contains("dynamic_listeners", dump);
        Assert.Contains("\"version_info\": \"r2\"", dump);
    }

    [Fact]
    public async Task TheEdsClustersOfOneCdsResponseAreAskedForInOneRequestAfterTheCdsAck()
    {
        // Regression: each warming cluster used to send its own EDS request (1, 2, ... N names),
        // each answered with a growing response; 1,000 clusters took minutes to become LIVE.
        var names = Enumerable.Range(0, 40).Select(i => "c" + i).Order(StringComparer.Ordinal).ToArray();
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", names.Select(n => (Google.Protobuf.IMessage)EdsCluster(n)).ToArray());
        xds.Set(EndpointType, "e1", names.Select(n => (Google.Protobuf.IMessage)Endpoints(n, 9)).ToArray());
        xds.Set(ListenerType, "l1");
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));

        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.VersionInfo == "e1" && r.ResponseNonce.Length > 0);
        Assert.Equal(1, xds.StreamsOpened);
        var requests = xds.Requests.ToList();
        var eds = requests.Where(r => r.TypeUrl == EndpointType).ToList();
        Assert.Equal(2, eds.Count); // the request, then its ACK
        Assert.All(eds, r => Assert.Equal(names, r.ResourceNames.Order(StringComparer.Ordinal)));
        var cdsAck = requests.FindIndex(r => r.TypeUrl == ClusterType && r.VersionInfo == "c1");
        Assert.True(cdsAck >= 0 && cdsAck < requests.IndexOf(eds[0]), "the EDS request follows the CDS ACK");
        Assert.All(names, n => Assert.Single(legate.Server.Clusters.Find(n)!.PrioritySet.Current.Hosts));
    }

    [Fact]
    public async Task AnInvalidResourceIsNackedWithItsNameFieldAndReasonAndTheOldConfigKeepsServing()
    {
        var (xds, blue, green) = await StartWorldAsync();
        await using var _ = xds;
        await using var __ = blue;
        await using var ___ = green;
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // One bad cluster (connect_timeout must be > 0) rejects the whole response, the good new cluster too.
        var bad = EdsCluster("green");
        bad.ConnectTimeout = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(-1));
        xds.Set(ClusterType, "c2", EdsCluster("blue"), bad, EdsCluster("extra"));
        var nack = await xds.WaitForRequestAsync(r => r.TypeUrl == ClusterType && r.ErrorDetail is not null);
        Assert.Equal("c1", nack.VersionInfo);
        Assert.Contains("green", nack.ErrorDetail.Message);
        Assert.Contains("connect_timeout", nack.ErrorDetail.Message);
        Assert.Equal(3, nack.ErrorDetail.Code);
        Assert.Null(legate.Server.Clusters.Find("extra"));
        Assert.Equal(1, XdsWait.Counter(legate, "cluster_manager.cds.update_rejected"));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // A route table that cannot compile is NACKed the same way.
        var badRoutes = Routes("main", "green");
        badRoutes.VirtualHosts[0].Routes[0].Match = new Envoy.Config.Route.V3.RouteMatch { SafeRegex = new Envoy.Type.Matcher.V3.RegexMatcher { Regex = "(unclosed" } };
        xds.Set(RouteType, "r-bad", badRoutes);
        var routeNack = await xds.WaitForRequestAsync(r => r.TypeUrl == RouteType && r.ErrorDetail is not null);
        Assert.Equal("r1", routeNack.VersionInfo);
        Assert.Contains("main", routeNack.ErrorDetail.Message);
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        var dump = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/config_dump"));
        Assert.Contains("error_state", dump);
        Assert.Contains("connect_timeout", dump);

        // A good update afterwards is accepted and clears the error.
        xds.Set(EndpointType, "e2", Endpoints("blue", blue.Port), Endpoints("green", green.Port), Endpoints("extra", green.Port));
        xds.Set(ClusterType, "c3", EdsCluster("blue"), EdsCluster("green"), EdsCluster("extra"));
        await xds.WaitForRequestAsync(r => r.TypeUrl == ClusterType && r.VersionInfo == "c3" && r.ErrorDetail is null);
        await XdsWait.UntilAsync(() => legate.Server.Clusters.Find("extra") is not null, "cluster extra to warm", Timeout);
    }

    [Fact]
    public async Task ResourcesAbsentFromAStateOfTheWorldResponseAreRemoved()
    {
        var (xds, blue, green) = await StartWorldAsync();
        await using var _ = xds;
        await using var __ = blue;
        await using var ___ = green;
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        xds.Set(ClusterType, "c2", EdsCluster("green"));
        await XdsWait.UntilAsync(() => legate.Server.Clusters.Find("blue") is null, "cluster blue to be removed");
        Assert.Equal("status 503", await XdsWait.GetAsync(legate, "ingress"));
        // The EDS subscription follows: blue is no longer asked for.
        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.ResourceNames.SequenceEqual(["green"]));

        xds.Set(ListenerType, "l2");
        await XdsWait.UntilAsync(() => legate.Server.Listeners.Find("ingress") is null, "listener ingress to be removed");
        Assert.Equal(1, XdsWait.Counter(legate, "listener_manager.listener_removed"));
        Assert.Equal(1, XdsWait.Counter(legate, "cluster_manager.cluster_removed"));
    }

    [Fact]
    public async Task ARouteConfigurationNoListenerUsesAnyMoreLeavesTheSubscription()
    {
        var (xds, blue, green) = await StartWorldAsync();
        await using var _ = xds;
        await using var __ = blue;
        await using var ___ = green;
        xds.Set(ListenerType, "l1", RdsListener("ingress", "main"), RdsListener("edge", "side"));
        xds.Set(RouteType, "r1", Routes("main", "blue"), Routes("side", "green"));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port), "--drain-time-s", "1");
        Assert.Equal("green", await XdsWait.GetAsync(legate, "edge"));
        await xds.WaitForRequestAsync(r => r.TypeUrl == RouteType && r.ResourceNames.SequenceEqual(["main", "side"]));

        // Route requests sent after mark.
        Task RouteRequestAfter(int mark, Func<Envoy.Service.Discovery.V3.DiscoveryRequest, bool> predicate, string what) =>
            XdsWait.UntilAsync(() => xds.Requests.Skip(mark).Any(r => r.TypeUrl == RouteType && predicate(r)), what);

        // edge moves to main: once its new version is in force, nothing uses side, and the next
        // request names main alone.
        var mark = xds.Requests.Count;
        xds.Set(ListenerType, "l2", RdsListener("ingress", "main"), RdsListener("edge", "main"));
        await RouteRequestAfter(mark, r => r.ResourceNames.SequenceEqual(["main"]), "a route request without side");
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "edge"));

        // ingress goes away, edge still uses main: main stays subscribed.
        mark = xds.Requests.Count;
        xds.Set(ListenerType, "l3", RdsListener("edge", "main"));
        await XdsWait.UntilAsync(() => legate.Server.Listeners.Find("ingress") is null && XdsWait.Gauge(legate, "listener_manager.total_listeners_draining") == 0, "listener ingress to drain away");
        await xds.WaitForRequestAsync(r => r.TypeUrl == ListenerType && r.VersionInfo == "l3");
        Assert.DoesNotContain(xds.Requests.Skip(mark), r => r.TypeUrl == RouteType && !r.ResourceNames.Contains("main"));

        // The last user of main is removed: once it has drained, the route type asks for nothing.
        mark = xds.Requests.Count;
        xds.Set(ListenerType, "l4");
        await RouteRequestAfter(mark, r => r.ResourceNames.Count == 0, "a route request naming nothing");
        Assert.Null(legate.Server.Listeners.Find("edge"));

        // A listener naming main again subscribes to it again and serves its routes.
        mark = xds.Requests.Count;
        xds.Set(ListenerType, "l5", RdsListener("back", "main"));
        await RouteRequestAfter(mark, r => r.ResourceNames.SequenceEqual(["main"]), "main subscribed again");
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "back") == "blue", "listener back to serve main's routes");
    }

    [Fact]
    public async Task AfterTheServerRestartsTheClientReconnectsWithBackOffKeepingTheLastConfig()
    {
        var (xds, blue, green) = await StartWorldAsync();
        await using var _ = xds;
        await using var __ = blue;
        await using var ___ = green;
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        var port = xds.Port;
        await xds.StopServerAsync();
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "control_plane.connected_state") == 0, "the stream to drop");
        var stream = legate.Server.Xds.Streams.Single();
        // Nothing listens: the client retries, but with back-off (0.1 s base, 1 s max here), not in a tight loop.
        var attemptsBefore = stream.Attempts;
        var since = DateTime.UtcNow;
        await XdsWait.UntilAsync(() => stream.Attempts >= attemptsBefore + 3, "three reconnect attempts");
        var elapsed = DateTime.UtcNow - since;
        Assert.True(stream.Attempts - attemptsBefore < 200, $"{stream.Attempts - attemptsBefore} attempts in {elapsed}: a tight loop");
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // The restarted server has a new route; the client asks again with the versions it holds.
        xds.Set(RouteType, "r2", Routes("main", "green"));
        await xds.StartServerAsync(port);
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "the new route after reconnect");
        Assert.Contains(xds.Requests, r => r.TypeUrl == ClusterType && r.VersionInfo == "c1" && r.ResponseNonce.Length == 0);
        Assert.Equal(1, XdsWait.Gauge(legate, "control_plane.connected_state"));
        Assert.True(XdsWait.Counter(legate, "cluster_manager.cds.update_failure") >= 1);
    }

    [Fact]
    public async Task ServerIsNotReadyUntilTheFirstResponsesAndClustersWarmBeforeRoutesUseThem()
    {
        var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var _ = blue;
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", EdsCluster("blue"));
        xds.Set(ListenerType, "l1", RdsListener("ingress", "main"));
        xds.Set(RouteType, "r1", Routes("main", "blue"));
        // No endpoints yet: the cluster warms, and the server waits for it.
        var options = Legate.Server.CommandLineParser.Parse(["--config-yaml", AdsBootstrap(xds.Port)]);
        var sink = new CapturingLogSink();
        using var logs = Legate.Server.Logging.LogManager.Create(options, sink);
        await using var server = Legate.Server.LegateServer.Create(options, Legate.Config.BootstrapLoader.Load(null, options.ConfigYaml), logs);
        var start = server.StartAsync(CancellationToken.None);
        await XdsWait.UntilAsync(() => server.Admin is not null, "the admin to start");
        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.ResourceNames.Contains("blue"));
        using var http = TestHttp.CreateClient();
        using (var notReady = await http.GetAsync(new Uri(server.Admin!.BaseUri, "/ready")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        }

        Assert.Equal(Legate.Server.ServerState.Initializing, server.State);
        Assert.Null(server.Listeners.Find("ingress")?.BoundEndpoint);
        Assert.Equal(1, server.Stats.Gauge("cluster_manager.warming_clusters", Legate.Stats.ImportMode.NeverImport).Value);

        xds.Set(EndpointType, "e1", Endpoints("blue", blue.Port));
        await start.WaitAsync(Timeout);
        Assert.Equal(Legate.Server.ServerState.Live, server.State);
        // Once warm, the route finds the cluster with its hosts: no 503.
        var endpoint = server.Listeners.Find("ingress")!.BoundEndpoint!;
        Assert.Equal("blue", await http.GetStringAsync($"http://127.0.0.1:{endpoint.Port}/"));
        await server.StopAsync();
    }

    [Fact]
    public async Task InitialFetchTimeoutLetsTheServerStartWithoutAnAnswer()
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Silent.Add(ListenerType);
        xds.Set(ClusterType, "c1");
        xds.Set(ListenerType, "l1", InlineListener("never", Routes("r", "x")));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, initialFetchTimeout: "0.5s"));
        Assert.Equal(Legate.Server.ServerState.Live, legate.Server.State);
        Assert.Equal(1, XdsWait.Counter(legate, "listener_manager.lds.init_fetch_timeout"));
        Assert.Equal(0, XdsWait.Counter(legate, "cluster_manager.cds.init_fetch_timeout"));
        Assert.Null(legate.Server.Listeners.Find("never"));
    }

    [Fact]
    public async Task ARejectedFirstListenerResponseDoesNotHoldTheServerInInitializing()
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1");
        // An inline route table naming a cluster that does not exist: the whole response is NACKed.
        xds.Set(ListenerType, "l1", InlineListener("bad", Routes("r", "missing")));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        Assert.Equal(Legate.Server.ServerState.Live, legate.Server.State);
        var nack = await xds.WaitForRequestAsync(r => r.TypeUrl == ListenerType && r.ErrorDetail is not null);
        Assert.Contains("missing", nack.ErrorDetail.Message);
        Assert.Null(legate.Server.Listeners.Find("bad"));
    }
}
