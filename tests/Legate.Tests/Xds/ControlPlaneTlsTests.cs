using Legate.Server;
using Legate.Server.Logging;
using Legate.Tests.Harness;
using Legate.Xds.Server;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>
/// TLS to the control plane: the bundled management server serves h2 over TLS with a test CA's
/// certificate, and Legate's <c>envoy_grpc</c> cluster carries an UpstreamTlsContext (sni, the CA,
/// a SAN matcher). ADS (state of the world and Delta) and a per-type SDS stream both run over it;
/// a server whose certificate the cluster does not trust is never used.
/// </summary>
public sealed class ControlPlaneTlsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-xds-tls-").FullName;
    private readonly TestCertificates _pki = new();
    private readonly TestCertificates _otherPki = new("Other CA");

    public void Dispose()
    {
        _pki.Dispose();
        _otherPki.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Theory]
    [InlineData("AGGREGATED_GRPC")]
    [InlineData("AGGREGATED_DELTA_GRPC")]
    public async Task AdsAndAnSdsStreamRunOverTlsToTheBundledServer(string apiType)
    {
        var listenerCert = _pki.Leaf("listener", new() { Dns = ["localhost"], Ecdsa = true });
        WriteWorld(listenerCert);
        var sink = new CapturingLogSink();
        using var logs = LogManager.Create(CommandLineParser.Parse([]), sink);
        await using var server = await StartServerAsync(logs);

        await using var legate = await InProcessLegate.StartAsync(TlsBootstrap(server.BoundEndpoint.Port, apiType, _pki.RootPath));
        try
        {
            await XdsWait.UntilAsync(() => legate.Server.Listeners.Find("tls")?.BoundEndpoint is not null, "the listener (LDS over ADS, its certificate over SDS)");
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException(ex.Message + "\nlegate:\n" + legate.Logs.Text + "\nserver:\n" + sink.Lines.Text, ex);
        }
        var outcome = await TestTls.GetAsync(legate.ListenerEndpoint("tls"), new() { TrustedRoot = _pki.Root.Certificate });
        Assert.Equal(200, outcome.Status);
        Assert.Equal(listenerCert.Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);
        await sink.Lines.WaitForAsync("client 'test-node' ACK sds", TimeSpan.FromSeconds(30));

        // Both streams (ADS and the per-type SDS one) were TLS handshakes verified against the test CA.
        Assert.True(XdsWait.Counter(legate, "cluster.xds_cluster.ssl.handshake") >= 2, "TLS handshakes to the control plane");
        Assert.Equal(0, XdsWait.Counter(legate, "cluster.xds_cluster.ssl.fail_verify_error"));
        Assert.Equal(1, XdsWait.Gauge(legate, "control_plane.connected_state"));
    }

    [Fact]
    public async Task AControlPlaneWhoseCertificateIsNotTrustedIsNeverUsed()
    {
        WriteWorld(_pki.Leaf("listener", new() { Dns = ["localhost"], Ecdsa = true }));
        using var logs = LogManager.Create(CommandLineParser.Parse([]), new CapturingLogSink());
        await using var server = await StartServerAsync(logs);

        // The cluster trusts another CA: every handshake fails verification, init ends at the timeout with nothing applied.
        await using var legate = await InProcessLegate.StartAsync(TlsBootstrap(server.BoundEndpoint.Port, "AGGREGATED_GRPC", _otherPki.RootPath, initialFetchTimeout: "1s"));
        await XdsWait.UntilAsync(() => XdsWait.Counter(legate, "cluster.xds_cluster.ssl.fail_verify_error") >= 2, "failed verifications (and a retry)");
        Assert.Equal(0, XdsWait.Gauge(legate, "control_plane.connected_state"));
        Assert.Null(legate.Server.Listeners.Find("tls"));
        Assert.Equal(0, XdsWait.Counter(legate, "listener_manager.lds.update_success"));
    }

    private async Task<XdsManagementServer> StartServerAsync(LogManager logs)
    {
        var serverCert = _pki.Leaf("xds-server", new() { CommonName = "xds.example", Dns = ["xds.example"] });
        var server = new XdsManagementServer(_dir, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), logs.Get(LogComponents.Config), serverCert.WithKey());
        await server.StartAsync(CancellationToken.None);
        return server;
    }

    /// <summary>The ADS bootstrap whose xds_cluster speaks TLS: SNI xds.example, the CA at <paramref name="caPath"/>, the SAN xds.example required.</summary>
    private static string TlsBootstrap(int port, string apiType, string caPath, string initialFetchTimeout = "30s") =>
        AdsBootstrap(port, apiType, initialFetchTimeout).Replace("    connect_timeout: 1s\n", $$"""
                connect_timeout: 1s
                transport_socket:
                  name: envoy.transport_sockets.tls
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                    sni: xds.example
                    common_tls_context:
                      validation_context:
                        trusted_ca: { filename: "{{caPath}}" }
                        match_typed_subject_alt_names: [{ san_type: DNS, matcher: { exact: xds.example } }]

            """, StringComparison.Ordinal);

    private void WriteWorld(TestCertificates.Issued listenerCert)
    {
        Write("clusters.yaml", "resources: []\n");
        Write("secret.yaml", $$"""
            "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
            name: server_cert
            tls_certificate:
              certificate_chain: { filename: "{{listenerCert.ChainPath}}" }
              private_key: { filename: "{{listenerCert.KeyPath}}" }
            """);
        // The listener comes over ADS; its certificate from the SDS service of its own (api_config_source GRPC), on the same TLS cluster.
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
    }

    private void Write(string name, string content)
    {
        var temp = Path.Combine(_dir, "." + name + ".tmp");
        File.WriteAllText(temp, content);
        File.Move(temp, Path.Combine(_dir, name), overwrite: true);
    }
}
