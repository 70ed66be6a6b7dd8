using RuntimeResource = Envoy.Service.Runtime.V3.Runtime;
using Google.Protobuf.WellKnownTypes;
using Legate.Tests.Harness;

namespace Legate.Tests.Xds;

/// <summary>
/// RTDS: an <c>rtds_layer</c> of <c>layered_runtime</c> subscribed over ADS (state of the world and
/// Delta) from the tests' scripted server, applied in its place among the layers (a later admin
/// layer still overrides it), with Envoy's <c>runtime.*</c> subscription stats.
/// </summary>
public sealed class RtdsTests
{
    private const string RuntimeType = "type.googleapis.com/envoy.service.runtime.v3.Runtime";

    private static string Bootstrap(int xdsPort, string apiType) => $$"""
        node: { id: test-node, cluster: test-cluster }
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        layered_runtime:
          layers:
          - name: base
            static_layer: { limit: 1, only_static: s }
          - name: from_control_plane
            rtds_layer:
              name: rtds0
              rtds_config: { ads: {}, resource_api_version: V3, initial_fetch_timeout: 30s }
          - name: admin
            admin_layer: {}
        dynamic_resources:
          ads_config:
            api_type: {{apiType}}
            transport_api_version: V3
            grpc_services:
            - envoy_grpc: { cluster_name: xds_cluster }
        static_resources:
          clusters:
          - name: xds_cluster
            type: STATIC
            connect_timeout: 1s
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
            load_assignment:
              cluster_name: xds_cluster
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{xdsPort}} } } }
        """;

    private static RuntimeResource Layer(string name, params (string Key, Value Value)[] values)
    {
        var layer = new Struct();
        foreach (var (key, value) in values)
        {
            layer.Fields[key] = value;
        }

        return new RuntimeResource { Name = name, Layer = layer };
    }

    [Theory]
    [InlineData("AGGREGATED_GRPC")]
    [InlineData("AGGREGATED_DELTA_GRPC")]
    public async Task AnRtdsLayerIsAppliedInItsPlaceAndFollowsUpdates(string apiType)
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        var nested = new Struct();
        nested.Fields["enabled"] = Value.ForBool(true);
        xds.Set(RuntimeType, "v1", Layer("rtds0", ("limit", Value.ForNumber(2)), ("feature", Value.ForStruct(nested))));
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(xds.Port, apiType));

        // The server waited for the layer before it went LIVE.
        var runtime = legate.Server.Runtime;
        Assert.Equal("2", runtime.Snapshot.Get("limit"));
        Assert.Equal("true", runtime.Snapshot.Get("feature.enabled"));
        Assert.Equal("s", runtime.Snapshot.Get("only_static"));
        Assert.Equal(1, legate.Counter("runtime.update_success"));
        Assert.Equal(3, legate.Gauge("runtime.num_layers"));
        if (apiType == "AGGREGATED_GRPC")
        {
            var request = await xds.WaitForRequestAsync(r => r.TypeUrl == RuntimeType);
            Assert.Equal(["rtds0"], request.ResourceNames);
            await xds.WaitForRequestAsync(r => r.TypeUrl == RuntimeType && r.VersionInfo == "v1" && r.ResponseNonce.Length > 0 && r.ErrorDetail is null);
        }
        else
        {
            var request = await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == RuntimeType);
            Assert.Equal(["rtds0"], request.ResourceNamesSubscribe);
        }

        // The admin layer comes after the RTDS layer: it overrides it, and the RTDS value returns when the override goes.
        Assert.True(runtime.Modify([new("limit", "9")]));
        xds.Set(RuntimeType, "v2", Layer("rtds0", ("limit", Value.ForNumber(3))));
        await InProcessLegate.WaitUntilAsync(() => runtime.Snapshot.Get("feature.enabled") is null, "the second RTDS version");
        Assert.Equal("9", runtime.Snapshot.Get("limit"));
        Assert.True(runtime.Modify([new("limit", "")]));
        Assert.Equal("3", runtime.Snapshot.Get("limit"));

        var json = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/runtime"));
        Assert.Contains("from_control_plane", json);

        // The resource goes away: the layer empties and the static value shows through.
        xds.Set(RuntimeType, "v3");
        if (apiType == "AGGREGATED_DELTA_GRPC")
        {
            await InProcessLegate.WaitUntilAsync(() => runtime.Snapshot.Get("limit") == "1", "the RTDS layer to be removed");
        }
        else
        {
            // State of the world: a response without the layer's resource is NACKed and the layer stays.
            var nack = await xds.WaitForRequestAsync(r => r.TypeUrl == RuntimeType && r.ErrorDetail is not null);
            Assert.Equal("v2", nack.VersionInfo);
            Assert.Contains("rtds0", nack.ErrorDetail.Message);
            Assert.Equal(1, legate.Counter("runtime.update_rejected"));
            Assert.Equal("3", runtime.Snapshot.Get("limit"));
        }
    }
}
