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

    private void WriteWorld(int bluePort, int greenPort)
    {
        Write("clusters.yaml", """
            resources:
            - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
              name: blue
              type: EDS
              connect_timeout: 1s
              eds_cluster_config: { eds_config: { ads: {}, resource_api_version: V3 } }
            - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
              name: green
              type: EDS
              connect_timeout: 1s
              eds_cluster_config: { eds_config: { ads: {}, resource_api_version: V3 } }
            """);
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
                  rds: { route_config_name: main, config_source: { ads: {}, resource_api_version: V3 } }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """);
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
