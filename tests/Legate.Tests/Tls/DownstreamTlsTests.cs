using System.Net;
using System.Security.Authentication;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Tls;

/// <summary>Downstream TLS termination (DownstreamTlsContext) with real TLS clients and test-made certificates.</summary>
public sealed class DownstreamTlsTests : IDisposable
{
    private readonly TestCertificates _pki = new();
    private readonly TestCertificates.Issued _server;

    public DownstreamTlsTests()
    {
        _server = _pki.Leaf("server", new() { CommonName = "localhost", Dns = ["localhost", "*.example.com"], Ips = [IPAddress.Loopback] });
    }

    public void Dispose() => _pki.Dispose();

    [Fact]
    public async Task TerminatesTlsAndServesHttp11()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server)))));
        var endpoint = legate.ListenerEndpoint("tls");

        var outcome = await TestTls.GetAsync(endpoint, new() { TrustedRoot = _pki.Root.Certificate });

        Assert.Null(outcome.Error);
        Assert.Equal(200, outcome.Status);
        Assert.EndsWith("tls ok", outcome.Response);
        Assert.Equal(_server.Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);
        Assert.Equal(SslProtocols.Tls13, outcome.Protocol);
        var stats = legate.Server.Stats;
        var prefix = "listener." + Legate.Network.SocketAddresses.Format(endpoint).Replace(':', '_') + ".ssl.";
        Assert.Equal(1, stats.Counter(prefix + "handshake").Value);
        Assert.Equal(1, stats.Counter(prefix + "versions.TLSv1.3").Value);
        Assert.Equal(1, stats.Counter(prefix + "ciphers.TLS_AES_256_GCM_SHA384").Value + stats.Counter(prefix + "ciphers.TLS_AES_128_GCM_SHA256").Value + stats.Counter(prefix + "ciphers.TLS_CHACHA20_POLY1305_SHA256").Value);
        Assert.Equal(1, stats.Counter(prefix + "no_certificate").Value);
        Assert.Equal(0, stats.Counter(prefix + "connection_error").Value);
    }

    [Fact]
    public async Task CertificatesLoadFromInlineStringInlineBytesAndEnvironment()
    {
        var ecdsa = _pki.Leaf("ecdsa", new() { Dns = ["ecdsa.test"], Ecdsa = true });
        var bytes = _pki.Leaf("bytes", new() { Dns = ["bytes.test"] });
        var env = _pki.Leaf("env", new() { Dns = ["env.test"] });
        var variable = "LEGATE_TEST_KEY_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, env.KeyPem);
        try
        {
            string Inline(string s) => "\"" + s.Replace("\n", "\\n", StringComparison.Ordinal) + "\"";
            var certs = string.Join(", ",
                $"{{certificate_chain: {{inline_string: {Inline(ecdsa.CertificatePem)}}}, private_key: {{inline_string: {Inline(ecdsa.KeyPem)}}}}}",
                $"{{certificate_chain: {{inline_bytes: \"{Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(bytes.CertificatePem))}\"}}, private_key: {{inline_bytes: \"{Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(bytes.KeyPem))}\"}}}}",
                $"{{certificate_chain: {{filename: \"{env.ChainPath}\"}}, private_key: {{environment_variable: \"{variable}\"}}}}");
            await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(certs))));
            var endpoint = legate.ListenerEndpoint("tls");

            foreach (var (sni, expected) in new[] { ("ecdsa.test", ecdsa), ("bytes.test", bytes), ("env.test", env) })
            {
                var outcome = await TestTls.GetAsync(endpoint, new() { Sni = sni, TrustedRoot = _pki.Root.Certificate });
                Assert.Equal(200, outcome.Status);
                Assert.Equal(expected.Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public async Task SniPicksExactThenWildcardThenTheFirstCertificate()
    {
        var api = _pki.Leaf("api", new() { Dns = ["api.example.com"] });
        var wildcard = _pki.Leaf("wild", new() { Dns = ["*.example.com"] });
        var fallback = _pki.Leaf("default", new() { Dns = ["default.test"] });
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(string.Join(", ", Cert(fallback), Cert(wildcard), Cert(api))))));
        var endpoint = legate.ListenerEndpoint("tls");

        async Task<string> Served(string? sni) => (await TestTls.GetAsync(endpoint, new() { Sni = sni })).ServerCertificate!.Thumbprint;

        Assert.Equal(api.Certificate.Thumbprint, await Served("api.example.com"));
        Assert.Equal(wildcard.Certificate.Thumbprint, await Served("www.example.com"));
        Assert.Equal(fallback.Certificate.Thumbprint, await Served("other.test"));
        Assert.Equal(fallback.Certificate.Thumbprint, await Served(null));
    }

    /// <summary>
    /// A server name no certificate carries: by default the first certificate answers; with
    /// <c>full_scan_certs_on_sni_mismatch</c> every certificate is a candidate and the key type the
    /// client accepts decides (the .NET client accepts ECDSA, so the ECDSA one, listed second).
    /// </summary>
    [Fact]
    public async Task FullScanOnSniMismatchConsidersEveryCertificate()
    {
        var rsa = _pki.Leaf("rsa-first", new() { Dns = ["first.test"] });
        var ecdsa = _pki.Leaf("ecdsa-second", new() { Dns = ["second.test"], Ecdsa = true });
        var certs = string.Join(", ", Cert(rsa), Cert(ecdsa));

        async Task<string> Served(string downstreamExtra)
        {
            await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(certs, downstream: downstreamExtra))));
            return (await TestTls.GetAsync(legate.ListenerEndpoint("tls"), new() { Sni = "unknown.test" })).ServerCertificate!.Thumbprint;
        }

        Assert.Equal(rsa.Certificate.Thumbprint, await Served(string.Empty));
        Assert.Equal(ecdsa.Certificate.Thumbprint, await Served("full_scan_certs_on_sni_mismatch: true"));
    }

    [Fact]
    public async Task AlpnH2RunsHttp2AndHttp11RunsHttp11OverTls()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()));
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(
            Chain(Downstream(Cert(_server), common: "alpn_protocols: [h2, http/1.1]"), upstreamPort: upstream.Port), upstream.Port));
        var endpoint = legate.ListenerEndpoint("tls");

        foreach (var version in new[] { HttpVersion.Version20, HttpVersion.Version11 })
        {
            using var client = TestTls.CreateHttpClient(endpoint, _pki.Root.Certificate, version: version);
            using var response = await client.GetAsync("https://localhost/alpn");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(version, response.Version);
            var echoed = await EchoedRequest.ReadAsync(response);
            Assert.Equal("https", echoed.Header("x-forwarded-proto"));
            Assert.Null(echoed.Header("x-forwarded-client-cert"));
        }
    }

    [Fact]
    public async Task TlsParamsBoundTheVersionAndCiphers()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server),
            common: "tls_params: {tls_maximum_protocol_version: TLSv1_2, cipher_suites: [ECDHE-RSA-AES256-GCM-SHA384]}"))));
        var endpoint = legate.ListenerEndpoint("tls");

        var outcome = await TestTls.GetAsync(endpoint, new());

        Assert.Equal(200, outcome.Status);
        Assert.Equal(SslProtocols.Tls12, outcome.Protocol);
        Assert.Equal(System.Net.Security.TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, outcome.Cipher);
        var prefix = "listener." + Legate.Network.SocketAddresses.Format(endpoint).Replace(':', '_') + ".ssl.";
        Assert.Equal(1, legate.Server.Stats.Counter(prefix + "versions.TLSv1.2").Value);
        Assert.Equal(1, legate.Server.Stats.Counter(prefix + "ciphers.ECDHE-RSA-AES256-GCM-SHA384").Value);
    }

    [Fact]
    public async Task ATls12OnlyClientIsRefusedWhenTheMinimumIsTls13()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server),
            common: "tls_params: {tls_minimum_protocol_version: TLSv1_3}"))));
        var endpoint = legate.ListenerEndpoint("tls");

        var refused = await TestTls.GetAsync(endpoint, new() { Protocols = SslProtocols.Tls12 });
        var accepted = await TestTls.GetAsync(endpoint, new());

        Assert.NotNull(refused.Error);
        Assert.Equal(200, accepted.Status);
        var prefix = "listener." + Legate.Network.SocketAddresses.Format(endpoint).Replace(':', '_') + ".ssl.";
        Assert.Equal(1, legate.Server.Stats.Counter(prefix + "connection_error").Value);
        Assert.Equal(1, legate.Server.Stats.Counter(prefix + "handshake").Value);
    }

    [Fact]
    public async Task GarbageAndStalledHandshakesFailAloneAndAreBoundedByTheTimeout()
    {
        var chain = Chain(Downstream(Cert(_server))).Replace("transport_socket:", "transport_socket_connect_timeout: 1s\n      transport_socket:", StringComparison.Ordinal);
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(chain));
        var endpoint = legate.ListenerEndpoint("tls");

        using var stalled = new System.Net.Sockets.TcpClient();
        await stalled.ConnectAsync(endpoint);
        using var garbage = new System.Net.Sockets.TcpClient();
        await garbage.ConnectAsync(endpoint);
        await garbage.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());

        var good = await TestTls.GetAsync(endpoint, new());
        Assert.Equal(200, good.Status);

        // Both bad connections are closed by Legate: the garbage one at once, the silent one at the 1 s timeout.
        var buffer = new byte[256];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.Equal(0, await ReadToEndAsync(garbage.GetStream(), buffer, wait.Token));
        Assert.Equal(0, await ReadToEndAsync(stalled.GetStream(), buffer, wait.Token));
        var prefix = "listener." + Legate.Network.SocketAddresses.Format(endpoint).Replace(':', '_') + ".ssl.";
        Assert.Equal(2, legate.Server.Stats.Counter(prefix + "connection_error").Value);
        Assert.Equal(1, legate.Server.Stats.Counter(prefix + "handshake").Value);
    }

    [Fact]
    public async Task BadCertificateConfigIsAnErrorWithTheFieldPath()
    {
        var other = _pki.Leaf("other", new() { Dns = ["other.test"] });
        var mismatched = $"{{certificate_chain: {{filename: \"{_server.ChainPath}\"}}, private_key: {{filename: \"{other.KeyPath}\"}}}}";
        var ex = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(mismatched)))));
        Assert.Contains("filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates[0].private_key", ex.Message);

        var badCipher = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), common: "tls_params: {cipher_suites: [NOT-A-CIPHER]}")))));
        Assert.Contains("tls_params.cipher_suites[0]", badCipher.Message);
        Assert.Contains("NOT-A-CIPHER", badCipher.Message);
    }

    private static async Task<int> ReadToEndAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var n = await stream.ReadAsync(buffer, cancellationToken);
                if (n == 0)
                {
                    return 0;
                }
            }
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
