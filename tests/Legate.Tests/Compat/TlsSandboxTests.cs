using System.Globalization;
using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Compat;

/// <summary>
/// The traffic of Envoy's TLS sandboxes (tls, tls-inspector, tls-sni; see MANIFEST.md in
/// ../shared/compat/envoy-examples), written from their descriptions so they run without
/// ../shared: the same listener and cluster shapes, with local upstreams in place of the docker
/// services and certificates made by the test. Each test checks what the sandbox's verify step
/// checks (which upstream answered, x-forwarded-proto, the certificate the client saw, stats).
/// </summary>
public sealed class TlsSandboxTests(TlsSandboxTests.Pki pki) : IClassFixture<TlsSandboxTests.Pki>
{
    /// <summary>Certificates shared by the tests (ECDSA: quick to make).</summary>
    public sealed class Pki : IDisposable
    {
        internal TestCertificates Ca { get; } = new("Sandbox CA");

        internal TestCertificates.Issued Proxy => _proxy ??= Ca.Leaf("proxy", new() { Dns = ["localhost"], Ecdsa = true });

        internal TestCertificates.Issued Service => _service ??= Ca.Leaf("service-https", new() { Dns = ["service-https"], Ecdsa = true });

        internal TestCertificates.Issued Domain(int n) =>
            _domains[n] ??= Ca.Leaf("domain" + n.ToString(CultureInfo.InvariantCulture), new() { Dns = [$"domain{n}.example.com"], Ecdsa = true });

        private TestCertificates.Issued? _proxy;
        private TestCertificates.Issued? _service;
        private readonly TestCertificates.Issued?[] _domains = new TestCertificates.Issued?[4];

        public void Dispose() => Ca.Dispose();
    }

    private static readonly UpstreamResponse Echo = UpstreamResponse.Echo();

    /// <summary>
    /// tls sandbox: https→http (terminate), https→https (re-encrypt), http→https (originate) and
    /// https passthrough (tcp_proxy). Envoy sets x-forwarded-proto from the downstream connection;
    /// through the passthrough it never sees HTTP, so the service gets the client's request as sent.
    /// </summary>
    [Theory]
    [InlineData("https-http")]
    [InlineData("https-https")]
    [InlineData("http-https")]
    [InlineData("https-passthrough")]
    public async Task TlsSandboxShapes(string shape)
    {
        var downstreamTls = shape.StartsWith("https", StringComparison.Ordinal);
        var upstreamTls = shape.EndsWith("https", StringComparison.Ordinal) || shape == "https-passthrough";
        var tls = upstreamTls ? new UpstreamTls(pki.Service.WithKey()) : null;
        await using var service = await ScriptedUpstream.StartAsync(new UpstreamScript(Echo), tls: tls);

        var cluster = StaticCluster("service", service.Port, upstreamTls && shape != "https-passthrough"
            ? $"transport_socket: {{name: envoy.transport_sockets.tls, typed_config: {{\"@type\": \"{UpstreamType}\", sni: service-https}}}}"
            : string.Empty);
        var transport = downstreamTls && shape != "https-passthrough"
            ? $"transport_socket: {{name: envoy.transport_sockets.tls, typed_config: {Downstream(Cert(pki.Proxy))}}}"
            : string.Empty;
        var filter = shape == "https-passthrough"
            ? TcpProxy("service", "passthrough")
            : Hcm("ingress_http", "route: { cluster: service }");
        var yaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: sandbox
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                filter_chains:
                - {{transport}}
                  filters: [{{filter}}]
              clusters:
            {{cluster}}
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        var endpoint = legate.ListenerEndpoint("sandbox");

        using var client = downstreamTls ? TestTls.CreateHttpClient(endpoint, pki.Ca.Root.Certificate) : TestHttp.CreateClient();
        var uri = downstreamTls ? new Uri("https://localhost/") : legate.ListenerUri("sandbox", "/");
        using var response = await client.GetAsync(uri);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = await service.Log.WaitForRequestsAsync(1);
        var forwardedProto = received[0].Header("x-forwarded-proto");

        switch (shape)
        {
            case "https-http":
            case "https-https":
                Assert.Equal("https", forwardedProto);
                break;
            case "http-https":
                Assert.Equal("http", forwardedProto);
                break;
            default:
                // Passthrough: the client's TLS reached the service itself, and no proxy header was added.
                Assert.Null(forwardedProto);
                Assert.Null(received[0].Header("x-request-id"));
                Assert.Equal(1, legate.Counter("tcp.passthrough.downstream_cx_total"));
                break;
        }

        if (tls is not null)
        {
            var handshake = Assert.Single(tls.Handshakes);
            // Re-encrypting and originating, Legate's handshake carries the cluster's SNI; passing through, the client's.
            Assert.Equal(shape == "https-passthrough" ? "localhost" : "service-https", handshake.ServerName);
        }
    }

    /// <summary>
    /// tls-inspector sandbox: tcp_proxy chains chosen by the TLS inspector — TLS with ALPN h2 to one
    /// HTTPS service, TLS with http/1.1 to another, anything else (plaintext) to the HTTP service —
    /// and its stats: tls_found 2, tls_not_found 1, sni_found 2, alpn_found 2.
    /// </summary>
    [Fact]
    public async Task TlsInspectorSandboxPicksChainsByTransportAndAlpn()
    {
        var tls1 = new UpstreamTls(pki.Proxy.WithKey());
        var tls0 = new UpstreamTls(pki.Proxy.WithKey());
        await using var https1 = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("service-https1")), UpstreamProtocols.Http2, tls: tls1);
        await using var https0 = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("service-https0")), tls: tls0);
        await using var http = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("service-http"));
        var yaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: sandbox
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                listener_filters:
                - name: envoy.filters.listener.tls_inspector
                  typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector }
                filter_chains:
                - filter_chain_match: { transport_protocol: tls, application_protocols: [h2] }
                  filters: [{{TcpProxy("service-https1", "https_passthrough")}}]
                - filter_chain_match: { transport_protocol: tls, application_protocols: [http/1.1] }
                  filters: [{{TcpProxy("service-https0", "https_passthrough")}}]
                - filter_chain_match: {}
                  filters: [{{TcpProxy("service-http", "ingress_http")}}]
              clusters:
            {{StaticCluster("service-https1", https1.Port)}}{{StaticCluster("service-https0", https0.Port)}}{{StaticCluster("service-http", http.Port)}}
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        var endpoint = legate.ListenerEndpoint("sandbox");

        using (var h2 = TestTls.CreateHttpClient(endpoint, pki.Ca.Root.Certificate, version: HttpVersion.Version20))
        {
            Assert.Equal("service-https1", await h2.GetStringAsync(new Uri("https://localhost/")));
        }

        // curl --http1.1 offers ALPN http/1.1 (HttpClient sends no ALPN for HTTP/1.1, which would take the catch-all chain).
        var h1 = await TestTls.GetAsync(endpoint, new() { Alpn = ["http/1.1"], TrustedRoot = pki.Ca.Root.Certificate });
        Assert.Equal(200, h1.Status);
        Assert.EndsWith("service-https0", h1.Response, StringComparison.Ordinal);

        using (var plain = TestHttp.CreateClient())
        {
            Assert.Equal("service-http", await plain.GetStringAsync(legate.ListenerUri("sandbox", "/")));
        }

        Assert.Equal("h2", Assert.Single(tls1.Handshakes).Alpn);
        Assert.Equal("http/1.1", Assert.Single(tls0.Handshakes).Alpn);
        Assert.Equal(2, legate.Counter("tls_inspector.tls_found"));
        Assert.Equal(1, legate.Counter("tls_inspector.tls_not_found"));
        Assert.Equal(2, legate.Counter("tls_inspector.sni_found"));
        Assert.Equal(2, legate.Counter("tls_inspector.alpn_found"));
    }

    /// <summary>
    /// tls-sni sandbox: one listener, three server names. domain1 and domain2 are terminated with
    /// their own certificates and proxied to two HTTP services; domain3 is passed through to an HTTPS
    /// service. Then the sandbox's client proxy: plaintext in, each path to the front proxy over TLS
    /// with the matching SNI (UpstreamTlsContext sni), the same three services answering.
    /// </summary>
    [Fact]
    public async Task TlsSniSandboxTerminatesOrPassesThroughByServerName()
    {
        await using var http0 = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("service-http0"));
        await using var http1 = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("service-http1"));
        var serviceTls = new UpstreamTls(pki.Domain(3).WithKey());
        await using var https = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("service-https")), tls: serviceTls);

        string Terminated(int n, string cluster) => $$"""
                - filter_chain_match: { server_names: [domain{{n}}.example.com] }
                  transport_socket: {name: envoy.transport_sockets.tls, typed_config: {{Downstream(Cert(pki.Domain(n)))}}}
                  filters: [{{Hcm("ingress_http", $"route: {{ cluster: {cluster} }}")}}]

            """;
        var front = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: proxy
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                listener_filters: [{ name: envoy.filters.listener.tls_inspector }]
                filter_chains:
            {{Terminated(1, "proxy-domain1")}}{{Terminated(2, "proxy-domain2")}}
                - filter_chain_match: { server_names: [domain3.example.com] }
                  filters: [{{TcpProxy("proxy-domain3", "https_passthrough")}}]
              clusters:
            {{StaticCluster("proxy-domain1", http0.Port)}}{{StaticCluster("proxy-domain2", http1.Port)}}{{StaticCluster("proxy-domain3", https.Port)}}
            """;
        await using var proxy = await InProcessLegate.StartAsync(front);
        var proxyEndpoint = proxy.ListenerEndpoint("proxy");

        var expected = new[] { "service-http0", "service-http1", "service-https" };
        for (var n = 1; n <= 3; n++)
        {
            // curl --resolve domainN.example.com:10000:127.0.0.1 https://domainN.example.com:10000
            var outcome = await TestTls.GetAsync(proxyEndpoint, new() { Sni = $"domain{n}.example.com", TrustedRoot = pki.Ca.Root.Certificate }, host: $"domain{n}.example.com");
            Assert.Equal(200, outcome.Status);
            Assert.EndsWith(expected[n - 1], outcome.Response, StringComparison.Ordinal);
            Assert.Equal(pki.Domain(n).Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);
        }

        // The client proxy: /domainN over TLS to the front proxy with SNI domainN.example.com, verified against the CA.
        string ClientCluster(int n) => StaticCluster($"proxy-client-domain{n}", proxyEndpoint.Port,
            $"transport_socket: {{name: envoy.transport_sockets.tls, typed_config: {{\"@type\": \"{UpstreamType}\", sni: domain{n}.example.com, common_tls_context: {{validation_context: {{trusted_ca: {{filename: \"{pki.Ca.RootPath}\"}}}}}}}}}}");
        var routes = string.Join(", ", Enumerable.Range(1, 3).Select(n => $"{{match: {{prefix: /domain{n}}}, route: {{cluster: proxy-client-domain{n}}}}}"));
        var clientYaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: client
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                filter_chains:
                - filters: [{{HcmRoutes("ingress_http", routes)}}]
              clusters:
            {{ClientCluster(1)}}{{ClientCluster(2)}}{{ClientCluster(3)}}
            """;
        await using var client = await InProcessLegate.StartAsync(clientYaml);
        using var http = TestHttp.CreateClient();
        for (var n = 1; n <= 3; n++)
        {
            var body = await http.GetStringAsync(client.ListenerUri("client", "/domain" + n.ToString(CultureInfo.InvariantCulture)));
            Assert.Equal(expected[n - 1], body);
        }

        Assert.Equal(2, proxy.Counter("tcp.https_passthrough.downstream_cx_total"));
        Assert.All(serviceTls.Handshakes, h => Assert.Equal("domain3.example.com", h.ServerName));
        Assert.Equal(2, serviceTls.Handshakes.Count);
    }

    private static string TcpProxy(string cluster, string statPrefix) =>
        "{name: envoy.filters.network.tcp_proxy, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, "
        + $"cluster: {cluster}, stat_prefix: {statPrefix}}}}}";

    private static string Hcm(string statPrefix, string action) =>
        HcmRoutes(statPrefix, $"{{match: {{prefix: /}}, {action}}}");

    private static string HcmRoutes(string statPrefix, string routes) =>
        "{name: envoy.filters.network.http_connection_manager, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, "
        + $"stat_prefix: {statPrefix}, route_config: {{virtual_hosts: [{{name: all, domains: [\"*\"], routes: [{routes}]}}]}}, "
        + "http_filters: [{name: envoy.filters.http.router, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]}}";

    private static string StaticCluster(string name, int port, string extra = "") => $$"""
          - name: {{name}}
            connect_timeout: 5s
            {{extra}}
            load_assignment:
              cluster_name: {{name}}
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port.ToString(CultureInfo.InvariantCulture)}} } } }

        """;
}
