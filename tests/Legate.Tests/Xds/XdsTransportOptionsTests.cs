using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Core.V3;
using Legate.Config;
using Legate.Tests.Harness;
using Legate.Xds;
using static Legate.Tests.Xds.XdsTestResources;
using ApiType = Envoy.Config.Core.V3.ApiConfigSource.Types.ApiType;

namespace Legate.Tests.Xds;

/// <summary>
/// Config-source transport options the issue names: <c>set_node_on_first_message_only</c> and
/// <c>transport_api_version</c> (V3, or unset; anything else a clear error at its path).
/// </summary>
public sealed class XdsTransportOptionsTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheNodeGoesOnEveryRequestOrOnlyOnTheFirstOfAStream(bool firstOnly)
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", EdsCluster("blue"));
        xds.Set(EndpointType, "e1", Endpoints("blue", blue.Port));
        xds.Set(ListenerType, "l1", RdsListener("ingress", "main"));
        xds.Set(RouteType, "r1", Routes("main", "blue"));
        var bootstrap = AdsBootstrap(xds.Port).Replace(
            "    transport_api_version: V3\n    grpc_services:",
            $"    transport_api_version: V3\n    set_node_on_first_message_only: {(firstOnly ? "true" : "false")}\n    grpc_services:",
            StringComparison.Ordinal);
        Assert.Contains("set_node_on_first_message_only", bootstrap, StringComparison.Ordinal);
        await using var legate = await InProcessLegate.StartAsync(bootstrap);
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));
        await xds.WaitForRequestAsync(r => r.TypeUrl == RouteType && r.VersionInfo == "r1");

        // Every type subscribed and ACKed on the one ADS stream: several requests, the first with the node.
        var requests = xds.Requests.ToArray();
        Assert.True(requests.Length >= 5);
        Assert.Equal("test-node", requests[0].Node.Id);
        if (firstOnly)
        {
            Assert.All(requests.Skip(1), r => Assert.Null(r.Node));
        }
        else
        {
            Assert.All(requests, r => Assert.Equal("test-node", r.Node.Id));
        }

        // A new stream (the server restarts) carries the node again on its first request.
        var before = xds.Requests.Count;
        var port = xds.Port;
        await xds.StopServerAsync();
        await xds.StartServerAsync(port);
        await XdsWait.UntilAsync(() => xds.Requests.Count > before, "a request on the new stream");
        Assert.Equal("test-node", xds.Requests.Skip(before).First().Node.Id);
    }

    [Theory]
    [InlineData(ApiType.Grpc)]
    [InlineData(ApiType.DeltaGrpc)]
    [InlineData(ApiType.AggregatedGrpc)]
    [InlineData(ApiType.Rest)]
    public void ATransportApiVersionOtherThanV3IsAnErrorAtItsPath(ApiType apiType)
    {
        var bootstrap = new Bootstrap { StaticResources = new Bootstrap.Types.StaticResources() };
        var api = new ApiConfigSource { ApiType = apiType, TransportApiVersion = ApiVersion.V2, RefreshDelay = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) };
        var errors = new ConfigErrors();
        var source = apiType == ApiType.AggregatedGrpc
            ? new ConfigSource { Ads = new AggregatedConfigSource() }
            : new ConfigSource { ApiConfigSource = api };
        if (apiType == ApiType.AggregatedGrpc)
        {
            bootstrap.DynamicResources = new Bootstrap.Types.DynamicResources { AdsConfig = api };
            XdsSourceSpec.Resolve(source, "dynamic_resources.cds_config", bootstrap, errors);
            Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.ads_config.transport_api_version" && e.Message.Contains("set transport_api_version: V3", StringComparison.Ordinal));
            return;
        }

        Assert.Null(XdsSourceSpec.Resolve(source, "dynamic_resources.cds_config", bootstrap, errors));
        Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.cds_config.api_config_source.transport_api_version"
            && e.Message.Contains("transport_api_version V2 is not supported", StringComparison.Ordinal));
    }

    [Fact]
    public void AResourceApiVersionOtherThanV3IsAnErrorAtItsPath()
    {
        var bootstrap = new Bootstrap { StaticResources = new Bootstrap.Types.StaticResources() };
        var errors = new ConfigErrors();
        XdsSourceSpec.Resolve(new ConfigSource { PathConfigSource = new PathConfigSource { Path = "/tmp/cds.yaml" }, ResourceApiVersion = ApiVersion.V2 }, "dynamic_resources.cds_config", bootstrap, errors);
        Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.cds_config.resource_api_version" && e.Message.Contains("only V3 is", StringComparison.Ordinal));
    }
}
