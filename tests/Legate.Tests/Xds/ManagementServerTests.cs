using System.Runtime.InteropServices;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Tests.Harness;
using Legate.Xds;
using Legate.Xds.Server;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>The bundled management server (<c>legate xds-server</c>) serving a directory to a real Legate.</summary>
public sealed class ManagementServerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-xds-server-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void Write(string name, string content)
    {
        var temp = Path.Combine(_dir, "." + name + ".tmp");
        File.WriteAllText(temp, content);
        File.Move(temp, Path.Combine(_dir, name), overwrite: true);
    }

    private static string Route(string cluster) => $$"""
        "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
        name: main
        virtual_hosts:
        - name: all
          domains: ["*"]
          routes:
          - match: { prefix: "/" }
            route: { cluster: {{cluster}} }
        """;

    private const string AdsSource = "{ ads: {}, resource_api_version: V3 }";

    private const string RestSource = "{ api_config_source: { api_type: REST, transport_api_version: V3, cluster_names: [rest_cluster], refresh_delay: 0.2s, request_timeout: 5s }, resource_api_version: V3 }";

    private void WriteWorld(int bluePort, int greenPort, string source = AdsSource)
    {
        Write("clusters.yaml", """
            resources:
            - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
              name: blue
              type: EDS
              connect_timeout: 1s
              eds_cluster_config: { eds_config: SOURCE }
            - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
              name: green
              type: EDS
              connect_timeout: 1s
              eds_cluster_config: { eds_config: SOURCE }
            """.Replace("SOURCE", source, StringComparison.Ordinal));
        Write("endpoints.json", $$"""
            { "resources": [
              { "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name": "blue",
                "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": {{bluePort}} } } } }] }] },
              { "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name": "green",
                "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": {{greenPort}} } } } }] }] } ] }
            """);
        Write("listener.yaml", """
            "@type": type.googleapis.com/envoy.config.listener.v3.Listener
            name: ingress
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress
                  rds: { route_config_name: main, config_source: SOURCE }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """.Replace("SOURCE", source, StringComparison.Ordinal));
        Write("route.yaml", Route("blue"));
    }

    [Theory]
    [InlineData("AGGREGATED_GRPC")]
    [InlineData("AGGREGATED_DELTA_GRPC")]
    public async Task ServesTheDirectoryPushesEditsAndRefusesInvalidResources(string apiType)
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        WriteWorld(blue.Port, green.Port);
        var sink = new CapturingLogSink();
        using var logs = LogManager.Create(CommandLineParser.Parse([]), sink);
        await using var server = new XdsManagementServer(_dir, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), logs.Get(LogComponents.Config));
        await server.StartAsync(CancellationToken.None);

        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(server.BoundEndpoint.Port, apiType));
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));
        await sink.Lines.WaitForAsync("client 'test-node' ACK rds", TimeSpan.FromSeconds(30));

        // Edit the route file: a new version is pushed and traffic moves.
        Write("route.yaml", Route("green"));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "traffic to move to green");
        Assert.Equal(2, server.VersionOf(XdsResourceType.RouteConfiguration));

        // An invalid resource is refused by the server's own validation; the served state stays.
        // (a virtual host needs at least one domain: a protoc-gen-validate rule).
        Write("route.yaml", Route("green").Replace("domains: [\"*\"]", "domains: []"));
        await sink.Lines.WaitForAsync("route.yaml: invalid RouteConfiguration", TimeSpan.FromSeconds(30));
        Assert.Equal(2, server.VersionOf(XdsResourceType.RouteConfiguration));
        Assert.Equal("green", await XdsWait.GetAsync(legate, "ingress"));
    }

    private static string FaultConfig(int status) => $$"""
        "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
        name: fault
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
          abort: { http_status: {{status}}, percentage: { numerator: 100 } }
        """;

    [Theory]
    [InlineData("AGGREGATED_GRPC")]
    [InlineData("AGGREGATED_DELTA_GRPC")]
    public async Task ServesExtensionConfigsToDiscoveredHttpFiltersAndPushesEdits(string apiType)
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        WriteWorld(blue.Port, blue.Port);
        Write("listener.yaml", """
            "@type": type.googleapis.com/envoy.config.listener.v3.Listener
            name: ingress
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress
                  rds: { route_config_name: main, config_source: { ads: {}, resource_api_version: V3 } }
                  http_filters:
                  - name: fault
                    config_discovery:
                      config_source: { ads: {}, resource_api_version: V3 }
                      type_urls: ["type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"]
                  - name: envoy.filters.http.router
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """);
        Write("fault.yaml", FaultConfig(503));
        var sink = new CapturingLogSink();
        using var logs = LogManager.Create(CommandLineParser.Parse([]), sink);
        await using var server = new XdsManagementServer(_dir, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), logs.Get(LogComponents.Config));
        await server.StartAsync(CancellationToken.None);

        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(server.BoundEndpoint.Port, apiType));
        Assert.Equal("status 503", await XdsWait.GetAsync(legate, "ingress"));
        await sink.Lines.WaitForAsync("client 'test-node' ACK ecds", TimeSpan.FromSeconds(30));

        Write("fault.yaml", FaultConfig(418));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "status 418", "the edited filter config to apply");
        Assert.Equal(2, server.VersionOf(XdsResourceType.ExtensionConfig));
    }

    // Per-type services (no ADS): each type on its own stream, SotW (GRPC) or Delta (DELTA_GRPC).
    [Theory]
    [InlineData("GRPC")]
    [InlineData("DELTA_GRPC")]
    public async Task ThePerTypeServicesServeEachTypeOnItsOwnStream(string apiType)
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        var source = $"{{ api_config_source: {{ api_type: {apiType}, transport_api_version: V3, grpc_services: [{{ envoy_grpc: {{ cluster_name: xds_cluster }} }}] }}, resource_api_version: V3 }}";
        WriteWorld(blue.Port, green.Port, source);
        var sink = new CapturingLogSink();
        using var logs = LogManager.Create(CommandLineParser.Parse([]), sink);
        await using var server = new XdsManagementServer(_dir, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), logs.Get(LogComponents.Config));
        await server.StartAsync(CancellationToken.None);

        var bootstrap = AdsBootstrap(server.BoundEndpoint.Port)
            .Replace("cds_config: { ads: {}, resource_api_version: V3, initial_fetch_timeout: 30s }", "cds_config: " + source, StringComparison.Ordinal)
            .Replace("lds_config: { ads: {}, resource_api_version: V3, initial_fetch_timeout: 30s }", "lds_config: " + source, StringComparison.Ordinal);
        Assert.DoesNotContain("ads: {}", bootstrap, StringComparison.Ordinal);
        await using var legate = await InProcessLegate.StartAsync(bootstrap);
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));
        foreach (var type in new[] { "cds", "eds", "lds", "rds" })
        {
            await sink.Lines.WaitForAsync($"client 'test-node' ACK {type}", TimeSpan.FromSeconds(30));
        }

        Assert.True(XdsWait.Gauge(legate, "control_plane.connected_state") == 1);
        Write("route.yaml", Route("green"));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "traffic to move to green");
    }

    [Fact]
    public async Task AnswersRestPollsSoARestClientAppliesTheDirectoryAndFollowsEdits()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        WriteWorld(blue.Port, green.Port, RestSource);
        var sink = new CapturingLogSink();
        using var logs = LogManager.Create(CommandLineParser.Parse([]), sink);
        var loopback = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0);
        await using var server = new XdsManagementServer(_dir, loopback, logs.Get(LogComponents.Config), restListen: loopback);
        await server.StartAsync(CancellationToken.None);
        var rest = server.RestEndpoint!;

        // CDS, LDS, and through them EDS and RDS, all polled over REST: traffic flows.
        await using var legate = await InProcessLegate.StartAsync($$"""
            node: { id: test-node, cluster: test-cluster }
            admin:
              address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            dynamic_resources:
              cds_config: {{RestSource}}
              lds_config: {{RestSource}}
            static_resources:
              clusters:
              - name: rest_cluster
                type: STATIC
                connect_timeout: 1s
                load_assignment:
                  cluster_name: rest_cluster
                  endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{rest.Port}} } } } }] }]
            """);
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));
        foreach (var type in new[] { "cds", "lds", "eds", "rds" })
        {
            await sink.Lines.WaitForAsync($"client 'test-node' ACK {type} version '1' over REST", TimeSpan.FromSeconds(30));
        }

        // Regression: EDS asked at version 1 for a cluster added later got 304 and the cluster warmed
        // only by initial_fetch_timeout, with no endpoints. Both clusters got their assignment.
        Assert.Equal(0, XdsWait.Counter(legate, "cluster.green.init_fetch_timeout") + XdsWait.Counter(legate, "cluster.blue.init_fetch_timeout"));
        Assert.Single(legate.Server.Clusters.Find("green")!.PrioritySet.Current.Hosts);

        // An edit is picked up by the next poll.
        Write("route.yaml", Route("green"));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "traffic to move to green");
        await sink.Lines.WaitForAsync("client 'test-node' ACK rds version '2' over REST", TimeSpan.FromSeconds(30));

        // The protocol, seen by a plain HTTP client: CDS/LDS at the current version is 304, anything
        // else is the state as JSON (named types: the names asked for, even at the current version:
        // the names may be new); other methods and paths are refused.
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{rest.Port}") };
        using (var current = await http.PostAsync("/v3/discovery:clusters", new StringContent("""{ "version_info": "1", "node": { "id": "probe" } }""")))
        {
            Assert.Equal(System.Net.HttpStatusCode.NotModified, current.StatusCode);
        }

        using (var fresh = await http.PostAsync("/v3/discovery:endpoints", new StringContent("""{ "version_info": "1", "node": { "id": "probe" }, "resource_names": ["green"] }""")))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, fresh.StatusCode);
            var body = await fresh.Content.ReadAsStringAsync();
            Assert.Contains("\"versionInfo\": \"1\"", body, StringComparison.Ordinal);
            Assert.Contains("\"clusterName\": \"green\"", body, StringComparison.Ordinal);
            Assert.DoesNotContain("\"clusterName\": \"blue\"", body, StringComparison.Ordinal);
        }

        using (var get = await http.GetAsync("/v3/discovery:clusters"))
        {
            Assert.Equal(System.Net.HttpStatusCode.MethodNotAllowed, get.StatusCode);
        }

        using (var unknown = await http.PostAsync("/v3/discovery:nothing", new StringContent("{}")))
        {
            Assert.Equal(System.Net.HttpStatusCode.NotFound, unknown.StatusCode);
        }

        using (var garbage = await http.PostAsync("/v3/discovery:clusters", new StringContent("not json")))
        {
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, garbage.StatusCode);
        }
    }

    [Fact]
    public async Task ServesSecretsFromTheDirectoryOverThePerTypeSdsServiceAndPushesRotations()
    {
        using var pki = new TestCertificates();
        var first = pki.Leaf("first", new() { Dns = ["localhost"], Ecdsa = true });
        var second = pki.Leaf("second", new() { Dns = ["localhost"], Ecdsa = true });
        static string SecretFile(TestCertificates.Issued cert) => $$"""
            "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
            name: server_cert
            tls_certificate:
              certificate_chain: { filename: "{{cert.ChainPath}}" }
              private_key: { filename: "{{cert.KeyPath}}" }
            """;
        Write("clusters.yaml", "resources: []\n");
        Write("secret.yaml", SecretFile(first));
        // The listener's certificate comes from the SDS service of its own (api_config_source GRPC), not ADS.
        Write("listener.yaml", """
            "@type": type.googleapis.com/envoy.config.listener.v3.Listener
            name: tls
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - transport_socket:
                name: envoy.transport_sockets.tls
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
                  common_tls_context:
                    tls_certificate_sds_secret_configs:
                    - name: server_cert
                      sds_config:
                        resource_api_version: V3
                        api_config_source: { api_type: GRPC, transport_api_version: V3, grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }] }
              filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: tls
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "tls ok" } } }]
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """);
        var sink = new CapturingLogSink();
        using var logs = LogManager.Create(CommandLineParser.Parse([]), sink);
        await using var server = new XdsManagementServer(_dir, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), logs.Get(LogComponents.Config));
        await server.StartAsync(CancellationToken.None);

        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(server.BoundEndpoint.Port));
        await XdsWait.UntilAsync(() => legate.Server.Listeners.Find("tls")?.BoundEndpoint is not null, "the TLS listener");
        var endpoint = legate.ListenerEndpoint("tls");
        var outcome = await TestTls.GetAsync(endpoint, new() { TrustedRoot = pki.Root.Certificate });
        Assert.Equal(200, outcome.Status);
        Assert.Equal(first.Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);
        await sink.Lines.WaitForAsync("client 'test-node' ACK sds", TimeSpan.FromSeconds(30));

        // Rotate: the file names the new certificate; the server pushes version 2 and new clients see it.
        Write("secret.yaml", SecretFile(second));
        await SdsTests.WaitUntilServedAsync(endpoint, second);
        Assert.Equal(2, server.VersionOf(XdsResourceType.Secret));

        // A secret whose key does not match its certificate is refused by the server itself.
        Write("secret.yaml", SecretFile(second with { KeyPath = first.KeyPath }));
        await sink.Lines.WaitForAsync("secret.yaml: invalid Secret", TimeSpan.FromSeconds(30));
        Assert.Equal(2, server.VersionOf(XdsResourceType.Secret));
    }

    [Fact]
    public async Task TheXdsServerCommandServesAndStopsOnSigterm()
    {
        WriteWorld(1, 2);
        await using var process = LegateProcess.Start("xds-server", "--dir", _dir, "--listen", "127.0.0.1:0");
        var serving = await process.Stdout.WaitForAsync(@"serving .* on 127\.0\.0\.1:(\d+)", TimeSpan.FromSeconds(30));
        Assert.True(int.Parse(serving.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 0);
        await process.Stdout.WaitForAsync("rds version 1", TimeSpan.FromSeconds(30));
        process.Signal(PosixSignal.SIGTERM);
        Assert.Equal(0, await process.WaitForExitAsync());
    }
}
