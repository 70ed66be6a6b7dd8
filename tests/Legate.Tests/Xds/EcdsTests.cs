using Envoy.Config.Core.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Tests.Harness;
using static Legate.Tests.Xds.XdsTestResources;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;
using HcmHttpFilter = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter;

namespace Legate.Tests.Xds;

/// <summary>
/// ECDS: an HTTP filter whose configuration (<c>TypedExtensionConfig</c>) comes from the control
/// plane through <c>config_discovery</c>. The fault filter's abort makes the configuration in force
/// visible in each response's status.
/// </summary>
public sealed class EcdsTests
{
    private static readonly string FaultType = "type.googleapis.com/" + HTTPFault.Descriptor.FullName;

    private static HTTPFault Abort(uint status) => new()
    {
        Abort = new Envoy.Extensions.Filters.Http.Fault.V3.FaultAbort
        {
            HttpStatus = status,
            Percentage = new Envoy.Type.V3.FractionalPercent { Numerator = 100 },
        },
    };

    private static TypedExtensionConfig Config(string name, Google.Protobuf.IMessage config) => new() { Name = name, TypedConfig = Any.Pack(config) };

    /// <summary>An HTTP listener routing to <paramref name="cluster"/> whose first filter is <paramref name="filterName"/>, configured over ECDS (ADS).</summary>
    private static Envoy.Config.Listener.V3.Listener DiscoveredFilterListener(string name, string filterName, string cluster, Action<ExtensionConfigSource>? configure = null, string initialFetchTimeout = "30s")
    {
        var listener = InlineListener(name, Routes(name + "-routes", cluster));
        var filter = listener.FilterChains[0].Filters[0];
        var hcm = filter.TypedConfig.Unpack<Hcm>();
        var source = new ExtensionConfigSource { ConfigSource = Ads() };
        source.ConfigSource.InitialFetchTimeout = Duration.FromTimeSpan(TimeSpan.Parse("00:00:" + initialFetchTimeout.TrimEnd('s').PadLeft(2, '0'), System.Globalization.CultureInfo.InvariantCulture));
        source.TypeUrls.Add(FaultType);
        configure?.Invoke(source);
        hcm.HttpFilters.Insert(0, new HcmHttpFilter { Name = filterName, ConfigDiscovery = source });
        filter.TypedConfig = Any.Pack(hcm);
        return listener;
    }

    [Fact]
    public async Task AListenerWarmsUntilItsFilterConfigArrivesAndLaterConfigsApplyToNewStreams()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", EdsCluster("blue"));
        xds.Set(EndpointType, "e1", Endpoints("blue", blue.Port));
        xds.Set(ListenerType, "l1", InlineListener("plain", Routes("plain-routes", "blue")));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "plain"));

        // A listener whose fault filter comes over ECDS: it warms until the configuration arrives.
        xds.Set(ListenerType, "l2", InlineListener("plain", Routes("plain-routes", "blue")), DiscoveredFilterListener("filtered", "fault", "blue"));
        await xds.WaitForRequestAsync(r => r.TypeUrl == ExtensionConfigType && r.ResourceNames.Contains("fault"));
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "listener_manager.total_listeners_warming") == 1, "listener filtered to warm");
        Assert.Equal("no listener", await XdsWait.GetAsync(legate, "filtered"));

        xds.Set(ExtensionConfigType, "x1", Config("fault", Abort(503)));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "filtered") == "status 503", "the discovered abort to answer 503");
        await xds.WaitForRequestAsync(r => r.TypeUrl == ExtensionConfigType && r.VersionInfo == "x1" && r.ErrorDetail is null);
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "listener_manager.total_listeners_warming") == 0, "no listener warming");

        // A new configuration changes the filter for the streams that start after it.
        xds.Set(ExtensionConfigType, "x2", Config("fault", Abort(418)));
        await xds.WaitForRequestAsync(r => r.TypeUrl == ExtensionConfigType && r.VersionInfo == "x2");
        Assert.Equal("status 418", await XdsWait.GetAsync(legate, "filtered"));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "plain"));

        // A configuration of a type not in type_urls is NACKed, naming the filter and the types; the old one stays.
        xds.Set(ExtensionConfigType, "x3", Config("fault", new Envoy.Extensions.Filters.Http.Buffer.V3.Buffer { MaxRequestBytes = 10 }));
        var nack = await xds.WaitForRequestAsync(r => r.TypeUrl == ExtensionConfigType && r.ErrorDetail is not null);
        Assert.Equal("x2", nack.VersionInfo);
        Assert.Contains("fault", nack.ErrorDetail.Message, StringComparison.Ordinal);
        Assert.Contains("envoy.extensions.filters.http.buffer.v3.Buffer but expect envoy.extensions.filters.http.fault.v3.HTTPFault", nack.ErrorDetail.Message, StringComparison.Ordinal);
        Assert.Equal("status 418", await XdsWait.GetAsync(legate, "filtered"));

        var dump = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/config_dump"));
        using (var document = System.Text.Json.JsonDocument.Parse(dump))
        {
            var ecds = document.RootElement.GetProperty("configs").EnumerateArray()
                .Single(c => c.GetProperty("@type").GetString() == "type.googleapis.com/envoy.admin.v3.EcdsConfigDump");
            var filters = ecds.GetProperty("ecds_filters").EnumerateArray().ToArray();
            var active = filters.Single(f => f.TryGetProperty("ecds_filter", out _));
            Assert.Equal("x2", active.GetProperty("version_info").GetString());
            Assert.Equal("fault", active.GetProperty("ecds_filter").GetProperty("name").GetString());
            Assert.Equal(418, active.GetProperty("ecds_filter").GetProperty("typed_config").GetProperty("abort").GetProperty("http_status").GetInt32());
            Assert.Contains(filters, f => f.TryGetProperty("error_state", out var state) && state.GetProperty("details").GetString()!.Contains("but expect", StringComparison.Ordinal));
        }

        Assert.Equal(2, XdsWait.Counter(legate, "extension_config_discovery.http_filter.fault.config_reload"));
        Assert.Equal(1, XdsWait.Counter(legate, "extension_config_discovery.http_filter.fault.config_fail"));

        // The listener goes away: once it is gone, the name leaves the subscription.
        xds.Set(ListenerType, "l3", InlineListener("plain", Routes("plain-routes", "blue")));
        await xds.WaitForRequestAsync(r => r.TypeUrl == ExtensionConfigType && r.ResourceNames.Count == 0);
    }

    [Fact]
    public async Task DefaultConfigAppliesWithoutWarmingAndAFilterWithoutAnyConfigAnswers500()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", EdsCluster("blue"));
        xds.Set(EndpointType, "e1", Endpoints("blue", blue.Port));
        xds.Set(ListenerType, "l1",
            DiscoveredFilterListener("defaulted", "fault-default", "blue", s =>
            {
                s.DefaultConfig = Any.Pack(Abort(429));
                s.ApplyDefaultConfigWithoutWarming = true;
            }, initialFetchTimeout: "1s"),
            DiscoveredFilterListener("bare", "fault-absent", "blue", initialFetchTimeout: "1s"));

        // The server never sends either configuration: the default applies at once; the bare filter
        // holds its listener until the initial fetch timeout, then answers 500 (no filter config).
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        Assert.Equal("status 429", await XdsWait.GetAsync(legate, "defaulted"));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "bare") == "status 500", "the filter without config to answer 500");
        Assert.True(XdsWait.Counter(legate, "extension_config_discovery.http_filter.fault-absent.init_fetch_timeout") >= 1);

        // When a configuration arrives it replaces the default, and gives the bare filter one.
        xds.Set(ExtensionConfigType, "x1", Config("fault-default", Abort(503)), Config("fault-absent", Abort(418)));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "defaulted") == "status 503", "the discovered config to replace the default");
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "bare") == "status 418", "the bare filter to get its config");
    }

    [Fact]
    public async Task OverDeltaARemovedConfigRevertsToTheDefaultAndAStaticListenerAnswers500UntilItsConfigArrives()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "1", EdsCluster("blue"));
        xds.Set(EndpointType, "1", Endpoints("blue", blue.Port));
        xds.Set(ListenerType, "1", DiscoveredFilterListener("defaulted", "fault-default", "blue", s =>
        {
            s.DefaultConfig = Any.Pack(Abort(429));
            s.ApplyDefaultConfigWithoutWarming = true;
        }));
        const string staticListener = """
              listeners:
              - name: static
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: static
                      route_config: { virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: direct } } }] }] }
                      http_filters:
                      - name: static-fault
                        config_discovery:
                          config_source: { ads: {}, resource_api_version: V3 }
                          type_urls: ["type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"]
                      - name: envoy.filters.http.router
                        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """;
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType: "AGGREGATED_DELTA_GRPC", extraClusters: staticListener));

        // Nothing sent yet: the static listener serves with no filter config (500), the other with its default.
        Assert.Equal("status 500", await XdsWait.GetAsync(legate, "static"));
        Assert.Equal("status 429", await XdsWait.GetAsync(legate, "defaulted"));

        xds.Set(ExtensionConfigType, "d1", Config("static-fault", Abort(418)), Config("fault-default", Abort(503)));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "static") == "status 418", "the static listener's filter to get its config");
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "defaulted") == "status 503", "the discovered config to replace the default");

        // The server drops fault-default (Delta removed_resources): the filter goes back to its default.
        xds.Set(ExtensionConfigType, "d2", Config("static-fault", Abort(418)));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "defaulted") == "status 429", "the default config to come back");
        Assert.Equal("status 418", await XdsWait.GetAsync(legate, "static"));
    }

    [Fact]
    public void ConfigDiscoveryIsCheckedAsEnvoyChecksIt()
    {
        var yaml = TestConfigs.Admin() + """
            static_resources:
              listeners:
              - name: web
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: web
                      route_config: { virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200 } }] }] }
                      http_filters:
                      - name: discovered
                        config_discovery:
                          config_source: { path_config_source: { path: /tmp/ecds.yaml } }
                          apply_default_config_without_warming: true
                          type_urls: ["type.googleapis.com/envoy.config.cluster.v3.Cluster"]
                      - name: envoy.filters.http.router
                        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """;
        var error = Assert.Throws<ConfigException>(() => BootstrapLoader.Load(null, yaml));
        const string at = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].config_discovery.";
        Assert.Contains(error.Errors, e => e.Path == at + "type_urls[0]" && e.Message.Contains("not the type URL of an HTTP filter", StringComparison.Ordinal));
        Assert.Contains(error.Errors, e => e.Path == at + "apply_default_config_without_warming" && e.Message.Contains("default_config is not", StringComparison.Ordinal));
    }
}
