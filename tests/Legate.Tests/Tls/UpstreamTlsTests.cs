using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Tls;

/// <summary>
/// TLS origination (a cluster's UpstreamTlsContext) against real TLS upstreams: SNI, server
/// verification with trusted_ca and SAN matchers, client certificates, h2 over TLS chosen by ALPN,
/// auto_sni / auto_san_validation from the request's host, handshake failures as 503 UF with
/// Envoy's details and transport failure reason, cluster ssl.* stats, tcp_proxy to a TLS cluster.
/// </summary>
public sealed class UpstreamTlsTests(UpstreamTlsTests.Pki fixture) : IClassFixture<UpstreamTlsTests.Pki>
{
    private const string VerifyFailed = "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:";

    private readonly Pki _pki = fixture;

    /// <summary>The certificates every test here shares (RSA keys are slow to make).</summary>
    public sealed class Pki : IDisposable
    {
        public Pki()
        {
            Server = Main.Leaf("upstream", new() { CommonName = "backend", Dns = ["backend.legate.test", "*.svc.legate.test"] });
            Client = Main.Leaf("client", new() { CommonName = "frontend", Uris = ["spiffe://legate.test/ns/edge/sa/frontend"], Client = true });
            Stranger = Other.Leaf("stranger", new() { Dns = ["backend.legate.test"] });
        }

        internal TestCertificates Main { get; } = new("Upstream TLS");

        internal TestCertificates Other { get; } = new("Other");

        internal TestCertificates.Issued Server { get; }

        internal TestCertificates.Issued Client { get; }

        internal TestCertificates.Issued Stranger { get; }

        public void Dispose()
        {
            Main.Dispose();
            Other.Dispose();
        }
    }

    private string TrustedCa => $"trusted_ca: {{filename: \"{_pki.Main.RootPath}\"}}";

    private static string Transport(string upstreamTls) =>
        $"transport_socket: {{name: envoy.transport_sockets.tls, typed_config: {{\"@type\": \"{UpstreamType}\", {upstreamTls}}}}}";

    /// <summary>A cluster <c>secure</c> over TLS to <paramref name="port"/> and an aggregate <c>agg</c> listing it (flow YAML list items).</summary>
    private string SecureAndAggregate(int port) => $$"""
        - name: secure
          connect_timeout: 5s
          {{Transport($"sni: backend.legate.test, common_tls_context: {{validation_context: {{{TrustedCa}}}}}")}}
          load_assignment:
            cluster_name: secure
            endpoints:
            - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port.ToString(System.Globalization.CultureInfo.InvariantCulture)}} } } }
        - name: agg
          connect_timeout: 5s
          lb_policy: CLUSTER_PROVIDED
          cluster_type: { name: envoy.clusters.aggregate, typed_config: { "@type": type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig, clusters: [secure] } }
        """;

    [Fact]
    public async Task ShadowsGoOverTheChosenClustersTlsDirectlyAndThroughAnAggregate()
    {
        await using var main = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("main")));
        var tls = new UpstreamTls(_pki.Server.WithKey());
        await using var shadow = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("shadow")), tls: tls);
        var config = new ProxyConfig(main.Port)
        {
            Routes = """
                - match: { prefix: "/direct" }
                  route: { cluster: backend, request_mirror_policies: [ { cluster: secure } ] }
                """,
            Route = "request_mirror_policies: [ { cluster: agg } ]",
            Clusters = SecureAndAggregate(shadow.Port),
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);

        foreach (var path in new[] { "/direct", "/via-aggregate" })
        {
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", path));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("main", await response.Content.ReadAsStringAsync());
            var mirrored = await shadow.Log.WaitForRequestAsync(r => r.Path == path);
            Assert.Contains("-shadow", mirrored.Headers["host"][0], StringComparison.Ordinal);
        }

        // The shadows' connection was TLS, with the secure cluster's SNI; its requests counted on it,
        // the aggregate's shadow outcome on the aggregate (the policy's cluster), as the router counts.
        Assert.All(tls.Handshakes, h => Assert.Equal("backend.legate.test", h.ServerName));
        Assert.NotEmpty(tls.Handshakes);
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.agg.upstream_rq_completed") == 1, "the aggregate's shadow to complete");
        Assert.Equal(2, legate.Counter("cluster.secure.upstream_rq_total"));
        Assert.Equal(0, legate.Counter("cluster.agg.upstream_rq_total"));
    }

    [Fact]
    public async Task ATerminatedConnectToAnAggregateUsesTheChosenClustersTls()
    {
        var tls = new UpstreamTls(_pki.Server.WithKey());
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("tunnelled over tls")), tls: tls);
        var config = new ProxyConfig(1)
        {
            Hcm = "upgrade_configs: [{ upgrade_type: CONNECT }]",
            Routes = """
                - match: { connect_matcher: {} }
                  route: { cluster: agg, upgrade_configs: [{ upgrade_type: CONNECT, connect_config: {} }] }
                """,
            Clusters = SecureAndAggregate(upstream.Port),
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("CONNECT backend.legate.test:443 HTTP/1.1\r\nHost: backend.legate.test:443\r\n\r\n");
        Assert.Equal(200, RawResponse.ParseHead((await client.ReadHeadAsync())!).Status);

        // Plain HTTP into the tunnel; the upstream connection is TLS (the secure cluster's context).
        await client.WriteAsync("GET /inside HTTP/1.1\r\nHost: backend.legate.test\r\n\r\n");
        var response = await client.ReadResponseAsync();
        Assert.Equal(200, response.Status);
        Assert.Equal("tunnelled over tls", response.BodyText);
        Assert.Equal("backend.legate.test", Assert.Single(tls.Handshakes).ServerName);
        Assert.Equal(1, legate.Counter("cluster.secure.upstream_cx_total"));
        Assert.Equal(1, legate.Counter("cluster.secure.ssl.handshake"));
        Assert.Equal(0, legate.Counter("cluster.agg.upstream_cx_total"));
    }

    [Fact]
    public async Task SendsSniVerifiesTheServerAndCountsTheHandshake()
    {
        var tls = new UpstreamTls(_pki.Server.WithKey());
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("over tls")), tls: tls);
        var config = new ProxyConfig(upstream.Port)
        {
            Cluster = Transport($"sni: backend.legate.test, common_tls_context: {{validation_context: {{{TrustedCa}, match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: backend.legate.test}}}}]}}}}"),
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);

        for (var i = 0; i < 2; i++)
        {
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/x"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("over tls", await response.Content.ReadAsStringAsync());
        }

        // One connection, reused: one handshake, with the configured SNI and HTTP/1.1 offered by ALPN.
        var handshake = Assert.Single(tls.Handshakes);
        Assert.Equal("backend.legate.test", handshake.ServerName);
        Assert.Equal("http/1.1", handshake.Alpn);
        Assert.Null(handshake.ClientCertificate);
        Assert.Equal(1, legate.Counter("cluster.backend.ssl.handshake"));
        Assert.Equal(1, legate.Counter("cluster.backend.ssl.versions.TLSv1.3"));
        Assert.Equal(0, legate.Counter("cluster.backend.ssl.connection_error"));
    }

    [Fact]
    public async Task WithoutAValidationContextTheServerIsNotVerified()
    {
        // Envoy's default: no validation_context, no verification (a certificate of another CA, no SNI).
        var tls = new UpstreamTls(_pki.Stranger.WithKey());
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("anyone")), tls: tls);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Cluster = Transport("common_tls_context: {}") }.Build());

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(string.Empty, Assert.Single(tls.Handshakes).ServerName);
    }

    [Fact]
    public async Task AWrongSanIs503UpstreamFailureWithTheTransportFailureReason()
    {
        var log = Path.Combine(_pki.Main.Directory, "wrong-san.log");
        var tls = new UpstreamTls(_pki.Server.WithKey());
        await using var upstream = await ScriptedUpstream.StartAsync(tls: tls);
        var config = new ProxyConfig(upstream.Port)
        {
            Cluster = Transport($"common_tls_context: {{validation_context: {{{TrustedCa}, match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: other.legate.test}}}}]}}}}"),
            Hcm = $"access_log: [{{name: envoy.access_loggers.file, typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: \"{log}\", log_format: {{text_format: \"%RESPONSE_CODE% %RESPONSE_FLAGS% [%UPSTREAM_TRANSPORT_FAILURE_REASON%]\\n\"}}}}}}]",
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/san"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var reason = VerifyFailed + "verify cert failed: SAN matcher:TLS_error_end";
        Assert.Equal("upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: " + reason, await response.Content.ReadAsStringAsync());

        var stream = await recorder.WaitForPathAsync("/san");
        Assert.Equal("UF", stream.Flags);
        Assert.Equal("upstream_reset_before_response_started{connection_failure," + reason.Replace(' ', '_') + "}", stream.Details);
        await InProcessLegate.WaitUntilAsync(() => File.Exists(log) && File.ReadAllText(log).Contains('\n'), "the access log line");
        Assert.Equal($"503 UF [{reason}]\n", File.ReadAllText(log));

        Assert.Equal(1, legate.Counter("cluster.backend.ssl.fail_verify_san"));
        Assert.Equal(0, legate.Counter("cluster.backend.ssl.handshake"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_connect_fail"));
        Assert.Empty(upstream.Log.Requests);
    }

    [Fact]
    public async Task AnUntrustedServerIsRefused()
    {
        var tls = new UpstreamTls(_pki.Stranger.WithKey());
        await using var upstream = await ScriptedUpstream.StartAsync(tls: tls);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Cluster = Transport($"common_tls_context: {{validation_context: {{{TrustedCa}}}}}") }.Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/ca"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var stream = await recorder.WaitForPathAsync("/ca");
        Assert.Equal("UF", stream.Flags);
        Assert.StartsWith("upstream_reset_before_response_started{connection_failure,TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify_cert_failed:", stream.Details, StringComparison.Ordinal);
        Assert.Equal(1, legate.Counter("cluster.backend.ssl.fail_verify_error"));
        Assert.Empty(upstream.Log.Requests);
    }

    [Fact]
    public async Task SendsTheClientCertificateAnUpstreamRequires()
    {
        var tls = new UpstreamTls(_pki.Server.WithKey()) { RequireClientCertificate = true, ClientRoot = _pki.Main.Root.Certificate };
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("mtls")), tls: tls);
        var config = new ProxyConfig(upstream.Port)
        {
            Cluster = Transport($"sni: backend.legate.test, common_tls_context: {{tls_certificates: [{Cert(_pki.Client)}], validation_context: {{{TrustedCa}}}}}"),
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("mtls", await response.Content.ReadAsStringAsync());
        var handshake = Assert.Single(tls.Handshakes);
        Assert.Equal(_pki.Client.Certificate.Thumbprint, handshake.ClientCertificate?.Thumbprint);
    }

    /// <summary>
    /// A real OpenSSL server that requires a client certificate (<c>-Verify</c>) over TLS 1.2, where
    /// the refusal comes inside the handshake (with TLS 1.3 the client finishes first and learns of
    /// it on its first read, in Envoy as here).
    /// </summary>
    [ToolFact("openssl")]
    public async Task WithoutTheClientCertificateTheUpstreamRefusesTheHandshake()
    {
        var port = FreePort.Get();
        using var server = await StartOpenSslServerAsync(port, "-CAfile", _pki.Main.RootPath, "-Verify", "1", "-tls1_2");
        try
        {
            await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(port) { Cluster = Transport($"common_tls_context: {{validation_context: {{{TrustedCa}}}}}") }.Build());
            using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/nocert"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            var stream = await recorder.WaitForPathAsync("/nocert");
            Assert.Equal("UF", stream.Flags);
            Assert.StartsWith("upstream_reset_before_response_started{connection_failure,TLS_error:|", stream.Details, StringComparison.Ordinal);
            Assert.Contains("transport failure reason: TLS_error:|", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Equal(1, legate.Counter("cluster.backend.ssl.connection_error"));
            Assert.Equal(0, legate.Counter("cluster.backend.ssl.handshake"));
        }
        finally
        {
            server.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// Session resumption against a real OpenSSL server (its <c>-www</c> page says whether the
    /// session was <c>New</c> or <c>Reused</c>): a second connection resumes; with
    /// <c>max_session_keys: 0</c> it does not.
    /// </summary>
    [ToolFact("openssl")]
    public Task ASecondConnectionResumesTheSession() => SessionResumptionAsync(resume: true);

    [ToolFact("openssl")]
    public Task MaxSessionKeysZeroTurnsResumptionOff() => SessionResumptionAsync(resume: false);

    private async Task SessionResumptionAsync(bool resume)
    {
        var port = FreePort.Get();
        using var server = await StartOpenSslServerAsync(port);
        try
        {
            var keys = resume ? string.Empty : "max_session_keys: 0, ";
            var config = new ProxyConfig(port)
            {
                // One request per connection, so each request makes a new handshake.
                Cluster = "max_requests_per_connection: 1\n" + Transport($"{keys}sni: backend.legate.test, common_tls_context: {{validation_context: {{{TrustedCa}}}}}"),
            }.Build();
            await using var legate = await InProcessLegate.StartAsync(config);

            var first = await legate.Http.GetStringAsync(legate.ListenerUri("web", "/"));
            var second = await legate.Http.GetStringAsync(legate.ListenerUri("web", "/"));
            Assert.Contains("New, ", first, StringComparison.Ordinal);
            Assert.Contains(resume ? "Reused, " : "New, ", second, StringComparison.Ordinal);
            Assert.Equal(2, legate.Counter("cluster.backend.ssl.handshake"));

            // Envoy's ssl.session_reused, read from the server's flight (ResumptionDetector), agrees with s_server.
            Assert.Equal(resume ? 1 : 0, legate.Counter("cluster.backend.ssl.session_reused"));
        }
        finally
        {
            server.Kill(entireProcessTree: true);
        }
    }

    /// <summary>Starts <c>openssl s_server -www</c> with the upstream certificate on <paramref name="port"/>, once it accepts.</summary>
    private async Task<System.Diagnostics.Process> StartOpenSslServerAsync(int port, params string[] extra)
    {
        var info = new System.Diagnostics.ProcessStartInfo(ExternalTool.Find("openssl")!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "s_server", "-accept", "127.0.0.1:" + port, "-cert", _pki.Server.ChainPath!, "-key", _pki.Server.KeyPath!, "-www" }.Concat(extra))
        {
            info.ArgumentList.Add(argument);
        }

        var server = System.Diagnostics.Process.Start(info)!;
        var output = new LineBuffer();
        server.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                output.Add(e.Data);
            }
        };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            await output.WaitForAsync("ACCEPT", TimeSpan.FromSeconds(30));
        }
        catch
        {
            server.Kill(entireProcessTree: true);
            server.Dispose();
            throw;
        }

        return server;
    }

    [Fact]
    public async Task Http2ClustersSpeakH2OverTlsChosenByAlpn()
    {
        var tls = new UpstreamTls(_pki.Server.WithKey());
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()), UpstreamProtocols.Http2, tls: tls);
        var config = new ProxyConfig(upstream.Port)
        {
            Cluster = "http2_protocol_options: {}\n" + Transport($"sni: backend.legate.test, common_tls_context: {{validation_context: {{{TrustedCa}}}}}"),
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);

        for (var i = 0; i < 3; i++)
        {
            using var response = await legate.Http.PostAsync(legate.ListenerUri("web", "/h2"), new StringContent("body " + i));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var echoed = await EchoedRequest.ReadAsync(response);
            Assert.Equal("HTTP/2", echoed.Protocol);
            Assert.Equal("body " + i, echoed.Body);
        }

        var handshake = Assert.Single(tls.Handshakes);
        Assert.Equal("h2", handshake.Alpn);
        Assert.Equal("backend.legate.test", handshake.ServerName);
        Assert.Equal(1, legate.Counter("cluster.backend.ssl.handshake"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_http2_total"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AutoSniAndAutoSanValidationFollowTheRequestHost(bool http2)
    {
        var tls = new UpstreamTls(_pki.Server.WithKey());
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("auto")), http2 ? UpstreamProtocols.Http2 : UpstreamProtocols.Http1, tls: tls);
        var explicitConfig = http2 ? "explicit_http_config: {http2_protocol_options: {}}" : "explicit_http_config: {http_protocol_options: {}}";
        var config = new ProxyConfig(upstream.Port)
        {
            Cluster = $$"""
                typed_extension_protocol_options:
                  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                    {{explicitConfig}}
                    upstream_http_protocol_options: {auto_sni: true, auto_san_validation: true}
                """ + "\n" + Transport($"common_tls_context: {{validation_context: {{{TrustedCa}}}}}"),
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        foreach (var host in new[] { "a.svc.legate.test:8443", "b.svc.legate.test", "a.svc.legate.test" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/ok"));
            request.Headers.Host = host;
            using var response = await legate.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // One connection per host name (the port is not part of it), each with that name as SNI.
        Assert.Equal(["a.svc.legate.test", "b.svc.legate.test"], tls.Handshakes.Select(h => h.ServerName).Order().ToArray());

        using var wrong = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/wrong"));
        wrong.Headers.Host = "evil.example";
        using var refused = await legate.Http.SendAsync(wrong);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        var stream = await recorder.WaitForPathAsync("/wrong");
        Assert.Equal("UF", stream.Flags);
        Assert.Equal("upstream_reset_before_response_started{connection_failure,TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify_cert_failed:_verify_SAN_list:TLS_error_end}", stream.Details);
        Assert.Equal(1, legate.Counter("cluster.backend.ssl.fail_verify_san"));
    }

    [Fact]
    public async Task TransportSocketMatchesPickTlsByEndpointMetadata()
    {
        var tls = new UpstreamTls(_pki.Server.WithKey());
        await using var secure = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("secure")), tls: tls);
        await using var plain = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("plain")));
        var yaml = TestConfigs.Admin() + $$"""
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
                      route_config: { virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: mixed } }] }] }
                      http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }]
              clusters:
              - name: mixed
                connect_timeout: 5s
                transport_socket_matches:
                - name: mtls
                  match: { acceptMTLS: true }
                  transport_socket: { name: envoy.transport_sockets.tls, typed_config: { "@type": {{UpstreamType}}, sni: backend.legate.test, common_tls_context: { validation_context: { {{TrustedCa}} } } } }
                load_assignment:
                  cluster_name: mixed
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{secure.Port}} } } }
                      metadata: { filter_metadata: { envoy.transport_socket_match: { acceptMTLS: true } } }
                    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{plain.Port}} } } }
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);

        var bodies = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            bodies.Add(await legate.Http.GetStringAsync(legate.ListenerUri("web", "/")));
        }

        // Round robin over both: the matched host over TLS, the other in the clear (the default, no transport_socket).
        Assert.Equal(["plain", "plain", "secure", "secure"], bodies.Order().ToArray());
        Assert.Equal("backend.legate.test", Assert.Single(tls.Handshakes).ServerName);
        Assert.Equal(2, plain.Log.Requests.Count);
        Assert.Equal(1, legate.Counter("cluster.mixed.mtls.total_match_count"));
        Assert.Equal(1, legate.Counter("cluster.mixed.default.total_match_count"));
        Assert.Equal(1, legate.Counter("cluster.mixed.ssl.handshake"));
    }

    [Fact]
    public async Task AHandshakeThatNeverEndsIsAConnectTimeout()
    {
        // Accepts, reads the ClientHello and never answers: connect_timeout covers the handshake.
        var silent = new TaskCompletionSource();
        await using var upstream = RawUpstream.Start(_ => silent.Task);
        var config = new ProxyConfig(upstream.Port) { ConnectTimeout = "0.5s", Cluster = Transport("common_tls_context: {}") }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/slow"));
        silent.TrySetResult();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var stream = await recorder.WaitForPathAsync("/slow");
        Assert.Equal("UF", stream.Flags);
        Assert.Equal("upstream_reset_before_response_started{connection_timeout}", stream.Details);
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_connect_timeout"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_connect_fail"));
        Assert.Equal(0, legate.Gauge("cluster.backend.upstream_cx_active"));
    }

    [Fact]
    public async Task TheClientCertificateAndCaCanComeFromStaticSecrets()
    {
        var tls = new UpstreamTls(_pki.Server.WithKey()) { RequireClientCertificate = true, ClientRoot = _pki.Main.Root.Certificate };
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("by name")), tls: tls);
        var config = new ProxyConfig(upstream.Port)
        {
            Cluster = Transport("common_tls_context: {tls_certificate_sds_secret_configs: [{name: client_cert}], validation_context_sds_secret_config: {name: upstream_ca}}"),
            Clusters = $$"""
                secrets:
                - name: client_cert
                  tls_certificate: { certificate_chain: { filename: "{{_pki.Client.ChainPath}}" }, private_key: { filename: "{{_pki.Client.KeyPath}}" } }
                - name: upstream_ca
                  validation_context: { {{TrustedCa}}, match_typed_subject_alt_names: [{ san_type: DNS, matcher: { suffix: ".legate.test" } }] }
                """,
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(_pki.Client.Certificate.Thumbprint, Assert.Single(tls.Handshakes).ClientCertificate?.Thumbprint);
    }

    [Fact]
    public async Task ASecondClientCertificateIsAConfigError()
    {
        var config = new ProxyConfig(1)
        {
            Cluster = Transport($"common_tls_context: {{tls_certificates: [{Cert(_pki.Client)}, {Cert(_pki.Client)}]}}"),
        }.Build();
        var ex = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(config));
        Assert.Contains("static_resources.clusters[0].transport_socket.typed_config.common_tls_context.tls_certificates", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Multiple TLS certificates are not supported for client contexts", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Envoy's double-proxy sandbox: a front proxy takes plaintext TCP and carries it over mTLS
    /// (tcp_proxy to a TLS cluster with a client certificate, verifying the backend's SAN) to a back
    /// proxy that requires that client certificate and passes the bytes on in the clear.
    /// </summary>
    [Fact]
    public async Task DoubleProxyCarriesPlaintextOverMutualTls()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()));
        var backendYaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: backend
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                filter_chains:
                - transport_socket:
                    name: envoy.transport_sockets.tls
                    typed_config:
                      "@type": {{DownstreamType}}
                      require_client_certificate: true
                      common_tls_context:
                        tls_certificates: [{{Cert(_pki.Server)}}]
                        validation_context: { {{TrustedCa}} }
                  filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: backend, cluster: app }
              clusters:
              - name: app
                connect_timeout: 5s
                load_assignment: { cluster_name: app, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstream.Port}} } } } }] }] }
            """;
        await using var backend = await InProcessLegate.StartAsync(backendYaml);
        var frontendYaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: frontend
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: frontend, cluster: backend_tls }
              clusters:
              - name: backend_tls
                connect_timeout: 5s
                load_assignment: { cluster_name: backend_tls, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{backend.ListenerEndpoint("backend").Port}} } } } }] }] }
                transport_socket:
                  name: envoy.transport_sockets.tls
                  typed_config:
                    "@type": {{UpstreamType}}
                    common_tls_context:
                      tls_certificates: [{{Cert(_pki.Client)}}]
                      validation_context:
                        {{TrustedCa}}
                        match_typed_subject_alt_names: [{ san_type: DNS, matcher: { exact: backend.legate.test } }]
            """;
        await using var frontend = await InProcessLegate.StartAsync(frontendYaml);

        // HTTP in the clear to the front proxy, through both, to the upstream (twice, two connections).
        for (var i = 0; i < 2; i++)
        {
            await using var connection = await RawHttpConnection.ConnectAsync(frontend.ListenerEndpoint("frontend"));
            await connection.WriteAsync($"POST /db HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nConnection: close\r\n\r\nrow {i}");
            var response = await connection.ReadResponseAsync();
            Assert.Equal(200, response.Status);
            Assert.Contains($"row {i}", response.BodyText, StringComparison.Ordinal);
        }

        Assert.Equal(2, frontend.Counter("cluster.backend_tls.ssl.handshake"));
        Assert.Equal(2, backend.Counter("listener.127.0.0.1_" + backend.ListenerEndpoint("backend").Port + ".ssl.handshake"));
        Assert.Equal(0, backend.Counter("listener.127.0.0.1_" + backend.ListenerEndpoint("backend").Port + ".ssl.no_certificate"));
    }

    /// <summary>
    /// A mesh hop: Legate → Legate over mTLS and h2 (ALPN), the back proxy checking the front's
    /// SPIFFE identity and passing it on in x-forwarded-client-cert.
    /// </summary>
    [Fact]
    public async Task LegateToLegateOverMutualTlsAndH2()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()));
        var backendYaml = Bootstrap(
            Chain(
                Downstream(
                    Cert(_pki.Server),
                    $"alpn_protocols: [h2, http/1.1], validation_context: {{{TrustedCa}, match_typed_subject_alt_names: [{{san_type: URI, matcher: {{exact: \"spiffe://legate.test/ns/edge/sa/frontend\"}}}}]}}",
                    "require_client_certificate: true"),
                upstreamPort: upstream.Port,
                hcmExtra: "forward_client_cert_details: SANITIZE_SET\n          set_current_client_cert_details: {uri: true}"),
            upstreamPort: upstream.Port);
        await using var backend = await InProcessLegate.StartAsync(backendYaml);
        var config = new ProxyConfig(backend.ListenerEndpoint("tls").Port)
        {
            Cluster = "http2_protocol_options: {}\n" + Transport($"sni: backend.legate.test, common_tls_context: {{tls_certificates: [{Cert(_pki.Client)}], validation_context: {{{TrustedCa}, match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: backend.legate.test}}}}]}}}}"),
        }.Build();
        await using var frontend = await InProcessLegate.StartAsync(config);

        using var response = await frontend.Http.PostAsync(frontend.ListenerUri("web", "/hop"), new StringContent("payload"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echoed = await EchoedRequest.ReadAsync(response);
        Assert.Equal("payload", echoed.Body);
        Assert.Equal($"Hash={_pki.Client.Sha256Hex};URI=spiffe://legate.test/ns/edge/sa/frontend", echoed.Header("x-forwarded-client-cert"));
        Assert.Equal(1, frontend.Counter("cluster.backend.ssl.handshake"));
        Assert.Equal(1, frontend.Counter("cluster.backend.upstream_cx_http2_total"));
        Assert.Equal(1, backend.Counter("http.tls.downstream_cx_http2_total"));
    }

    [Fact]
    public async Task TcpProxyToAnUntrustedTlsUpstreamClosesTheConnection()
    {
        var tls = new UpstreamTls(_pki.Stranger.WithKey());
        await using var upstream = await ScriptedUpstream.StartAsync(tls: tls);
        var yaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: tcp
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: tcp, cluster: backend }
              clusters:
              - name: backend
                connect_timeout: 5s
                load_assignment: { cluster_name: backend, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstream.Port}} } } } }] }] }
                {{Transport($"common_tls_context: {{validation_context: {{{TrustedCa}}}}}")}}
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);

        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            // Closed without a byte: a FIN, or a reset since the request was never read.
            Assert.Equal(0, await stream.ReadAsync(new byte[64], timeout.Token));
        }
        catch (IOException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
        {
        }

        Assert.Equal(1, legate.Counter("cluster.backend.ssl.fail_verify_error"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_connect_fail"));
        Assert.Empty(upstream.Log.Requests);
    }
}
