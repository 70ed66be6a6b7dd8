using Legate.Tests.Harness;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>Legate as an incremental (Delta) xDS client over ADS, against the tests' scripted server.</summary>
public sealed class AdsDeltaTests
{
    [Fact]
    public async Task DeltaSubscribesUnsubscribesAppliesRemovalsAndResumesWithInitialResourceVersions()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "1", EdsCluster("blue"), EdsCluster("green"));
        xds.Set(EndpointType, "1", Endpoints("blue", blue.Port), Endpoints("green", green.Port));
        xds.Set(ListenerType, "1", RdsListener("ingress", "main"));
        xds.Set(RouteType, "1", Routes("main", "blue"));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType: "AGGREGATED_DELTA_GRPC"));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // Named types subscribe by name; wildcard types send no names.
        await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == EndpointType && r.ResourceNamesSubscribe.Contains("blue"));
        await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == RouteType && r.ResourceNamesSubscribe.Contains("main"));
        Assert.All(xds.DeltaRequests.Where(r => r.TypeUrl == ClusterType), r => Assert.Empty(r.ResourceNamesSubscribe));
        // ACKs carry the nonce and no error.
        await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == ClusterType && r.ResponseNonce.Length > 0 && r.ErrorDetail is null);

        // removed_resources: cluster blue goes away, so its endpoints are unsubscribed.
        xds.Set(ClusterType, "2", EdsCluster("green"));
        await XdsWait.UntilAsync(() => legate.Server.Clusters.Find("blue") is null, "cluster blue to be removed");
        await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == EndpointType && r.ResourceNamesUnsubscribe.Contains("blue"));
        xds.Set(RouteType, "2", Routes("main", "green"));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "the route to move to green");

        // Per-resource NACK: the valid resource of the response is applied, the invalid one is named.
        var bad = EdsCluster("broken");
        bad.ConnectTimeout = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(-1));
        xds.Set(EndpointType, "3", Endpoints("green", green.Port), Endpoints("fresh", green.Port));
        xds.Set(ClusterType, "3", EdsCluster("green"), bad, EdsCluster("fresh"));
        var nack = await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == ClusterType && r.ErrorDetail is not null);
        Assert.Contains("broken", nack.ErrorDetail.Message);
        Assert.DoesNotContain("fresh", nack.ErrorDetail.Message);
        await XdsWait.UntilAsync(() => legate.Server.Clusters.Find("fresh") is not null, "the valid cluster of the NACKed response");
        Assert.Null(legate.Server.Clusters.Find("broken"));

        // Reconnect: the new stream tells the server which versions it already has.
        var port = xds.Port;
        await xds.StopServerAsync();
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "control_plane.connected_state") == 0, "the stream to drop");
        var before = xds.DeltaRequests.Count;
        await xds.StartServerAsync(port);
        var resumed = await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == ClusterType && r.InitialResourceVersions.Count > 0);
        Assert.Contains("green", resumed.InitialResourceVersions.Keys);
        Assert.Contains("fresh", resumed.InitialResourceVersions.Keys);
        Assert.True(xds.DeltaRequests.Count > before);
        Assert.Equal("green", await XdsWait.GetAsync(legate, "ingress"));
    }

    [Fact]
    public async Task RouteConfigurationsNoLongerUsedAreUnsubscribed()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "1", EdsCluster("blue"), EdsCluster("green"));
        xds.Set(EndpointType, "1", Endpoints("blue", blue.Port), Endpoints("green", green.Port));
        xds.Set(ListenerType, "1", RdsListener("ingress", "main"));
        xds.Set(RouteType, "1", Routes("main", "blue"), Routes("side", "green"));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType: "AGGREGATED_DELTA_GRPC"), "--drain-time-s", "1");
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // The listener switches to side: side is subscribed, and once the new version is in force main is unsubscribed.
        xds.Set(ListenerType, "2", RdsListener("ingress", "side"));
        await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == RouteType && r.ResourceNamesSubscribe.Contains("side"));
        var unsubscribed = await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == RouteType && r.ResourceNamesUnsubscribe.Count > 0);
        Assert.Equal(["main"], unsubscribed.ResourceNamesUnsubscribe);
        Assert.Empty(unsubscribed.ResourceNamesSubscribe);
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "ingress to serve side's routes");

        // A reconnect claims only what is still subscribed: side, not main (still cached, no longer wanted).
        var port = xds.Port;
        await xds.StopServerAsync();
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "control_plane.connected_state") == 0, "the stream to drop");
        await xds.StartServerAsync(port);
        var resumed = await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == RouteType && r.InitialResourceVersions.Count > 0);
        Assert.Equal(["side"], resumed.InitialResourceVersions.Keys);
        Assert.Equal(["side"], resumed.ResourceNamesSubscribe);

        // The listener is removed: once drained, side goes too.
        xds.Set(ListenerType, "3");
        await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == RouteType && r.ResourceNamesUnsubscribe.Contains("side"));
        Assert.Null(legate.Server.Listeners.Find("ingress"));
    }

    [Fact]
    public async Task TheEdsClustersOfOneCdsResponseAreSubscribedInOneRequest()
    {
        var names = Enumerable.Range(0, 40).Select(i => "c" + i).Order(StringComparer.Ordinal).ToArray();
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "1", names.Select(n => (Google.Protobuf.IMessage)EdsCluster(n)).ToArray());
        xds.Set(EndpointType, "1", names.Select(n => (Google.Protobuf.IMessage)Endpoints(n, 9)).ToArray());
        xds.Set(ListenerType, "1", RdsListener("ingress", "main"));
        xds.Set(RouteType, "1", Routes("main", "c0"));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType: "AGGREGATED_DELTA_GRPC"));

        await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == EndpointType && r.ResponseNonce.Length > 0);
        Assert.Equal(1, xds.StreamsOpened);
        var subscribing = xds.DeltaRequests.Where(r => r.TypeUrl == EndpointType && r.ResourceNamesSubscribe.Count > 0).ToList();
        Assert.Equal(names, Assert.Single(subscribing).ResourceNamesSubscribe.Order(StringComparer.Ordinal));
        Assert.All(names, n => Assert.Single(legate.Server.Clusters.Find(n)!.PrioritySet.Current.Hosts));
    }
}
