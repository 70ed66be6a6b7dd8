using Envoy.Config.Endpoint.V3;
using Legate.Tests.Harness;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>
/// An EDS assignment's policy is checked as Envoy checks it on each update: more than one
/// drop_overloads category is Envoy's error, so the assignment is NACKed naming the field and the
/// endpoints in force keep serving.
/// </summary>
public sealed class EdsPolicyNackTests
{
    [Fact]
    public async Task AnAssignmentWithTwoDropCategoriesIsNackedNamingTheFieldAndTheOldEndpointsServe()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", EdsCluster("blue"));
        xds.Set(EndpointType, "e1", Endpoints("blue", blue.Port));
        xds.Set(ListenerType, "l1", RdsListener("ingress", "main"));
        xds.Set(RouteType, "r1", Routes("main", "blue"));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // Two categories: Envoy takes one. The new endpoint (green) must not be applied either.
        var twoDrops = Endpoints("blue", green.Port);
        twoDrops.Policy = new ClusterLoadAssignment.Types.Policy();
        twoDrops.Policy.DropOverloads.Add(new ClusterLoadAssignment.Types.Policy.Types.DropOverload
        {
            Category = "lb",
            DropPercentage = new Envoy.Type.V3.FractionalPercent { Numerator = 100 },
        });
        twoDrops.Policy.DropOverloads.Add(new ClusterLoadAssignment.Types.Policy.Types.DropOverload
        {
            Category = "throttle",
            DropPercentage = new Envoy.Type.V3.FractionalPercent { Numerator = 100 },
        });
        xds.Set(EndpointType, "e2", twoDrops);

        var nack = await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.ErrorDetail is not null);
        Assert.Equal("e1", nack.VersionInfo);
        Assert.Contains("blue", nack.ErrorDetail.Message);
        Assert.Contains("policy.drop_overloads", nack.ErrorDetail.Message);
        Assert.Contains("Cluster drop_overloads config has 2 categories. Envoy only support one.", nack.ErrorDetail.Message);
        Assert.Equal(1, XdsWait.Counter(legate, "cluster.blue.update_rejected"));

        // The assignment in force stays: blue answers, nothing is dropped, green saw nothing.
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));
        Assert.Equal(0, XdsWait.Counter(legate, "cluster.blue.upstream_rq_drop_overload"));
        Assert.Equal(0, green.Log.Count);

        // One category is accepted and applied.
        twoDrops.Policy.DropOverloads.RemoveAt(1);
        twoDrops.Policy.DropOverloads[0].DropPercentage.Numerator = 0;
        xds.Set(EndpointType, "e3", twoDrops);
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "the valid assignment to move traffic to green");
    }
}
