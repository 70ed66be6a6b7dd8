using System.Globalization;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Tls;

/// <summary>
/// The TLS command operators of access logs, downstream and upstream, with a real mTLS client and a
/// real TLS upstream that asks for Legate's client certificate: what each operator prints, "-" on
/// plaintext, and a clear error for the one .NET cannot provide.
/// </summary>
public sealed class TlsAccessLogTests : IDisposable
{
    private readonly TestCertificates _pki = new();

    public void Dispose() => _pki.Dispose();

    private static string AccessLog(string path, string format) =>
        $"access_log: [{{name: envoy.access_loggers.file, typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: \"{path}\", log_format: {{text_format: \"{format}\\n\"}}}}}}]";

    [Fact]
    public async Task DownstreamAndUpstreamTlsOperatorsDescribeBothConnections()
    {
        var serverCert = _pki.Leaf("edge", new() { CommonName = "edge", Dns = ["localhost"], Ecdsa = true });
        var clientCert = _pki.Leaf("client", new() { CommonName = "frontend", Client = true, Ecdsa = true, Uris = ["spiffe://legate.test/frontend"], Emails = ["ops@legate.test"] });
        var upstreamCert = _pki.Leaf("upstream", new() { CommonName = "backend", Dns = ["backend.legate.test"], Uris = ["spiffe://legate.test/backend"], Ecdsa = true });
        var proxyCert = _pki.Leaf("proxy", new() { CommonName = "proxy", Client = true, Ecdsa = true, Uris = ["spiffe://legate.test/proxy"] });
        var tls = new UpstreamTls(upstreamCert.WithKey()) { RequireClientCertificate = true, ClientRoot = _pki.Root.Certificate };
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("backend ok")), tls: tls);

        var log = Path.Combine(_pki.Directory, "tls-access.log");
        var format = string.Join('|',
            "%DOWNSTREAM_TLS_VERSION%", "%DOWNSTREAM_TLS_CIPHER%", "%DOWNSTREAM_PEER_SUBJECT%", "%DOWNSTREAM_PEER_ISSUER%",
            "%DOWNSTREAM_PEER_URI_SAN%", "%DOWNSTREAM_PEER_EMAIL_SAN%", "%DOWNSTREAM_LOCAL_DNS_SAN%", "%DOWNSTREAM_LOCAL_SUBJECT%",
            "%DOWNSTREAM_PEER_FINGERPRINT_256%", "%DOWNSTREAM_PEER_SERIAL%", "%DOWNSTREAM_PEER_CERT_V_START%", "%DOWNSTREAM_PEER_CERT_V_END(%Y)%",
            "%UPSTREAM_TLS_VERSION%", "%UPSTREAM_TLS_CIPHER%", "%UPSTREAM_PEER_SUBJECT%", "%UPSTREAM_PEER_ISSUER%",
            "%UPSTREAM_PEER_URI_SAN%", "%UPSTREAM_PEER_DNS_SAN%", "%UPSTREAM_LOCAL_URI_SAN%", "%UPSTREAM_PEER_CERT_V_START%",
            "%UPSTREAM_PEER_CERT_V_END(%s)%", "%UPSTREAM_PEER_FINGERPRINT_1%", "%REQUESTED_SERVER_NAME%");
        var downstream = Downstream(Cert(serverCert), common: $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}}}", downstream: "require_client_certificate: true");
        var cluster = $"transport_socket: {{name: envoy.transport_sockets.tls, typed_config: {{\"@type\": \"{UpstreamType}\", sni: backend.legate.test, common_tls_context: {{tls_certificates: [{Cert(proxyCert)}], validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}}}}}}}}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(downstream, hcmExtra: AccessLog(log, format), upstreamPort: upstream.Port), upstreamPort: upstream.Port, clusterExtra: cluster));

        var outcome = await TestTls.GetAsync(legate.ListenerEndpoint("tls"), new() { ClientCertificate = clientCert.WithKey(), TrustedRoot = _pki.Root.Certificate, Sni = "localhost" });
        Assert.Equal(200, outcome.Status);
        Assert.EndsWith("backend ok", outcome.Response, StringComparison.Ordinal);
        var handshake = Assert.Single(tls.Handshakes);

        await InProcessLegate.WaitUntilAsync(() => File.Exists(log) && File.ReadAllText(log).Contains('\n'), "the access log line");
        var fields = File.ReadAllText(log).TrimEnd('\n').Split('|');
        Assert.Equal(23, fields.Length);
        Assert.Equal("TLSv1.3", fields[0]);
        Assert.Equal(Legate.Tls.CipherSuiteNames.NameOf(outcome.Cipher), fields[1]);
        Assert.Equal(Legate.Tls.CertificateNames.Read(clientCert.Certificate).Subject, fields[2]);
        Assert.Contains("CN=frontend", fields[2]);
        Assert.Equal(Legate.Tls.CertificateNames.Read(_pki.Root.Certificate).Subject, fields[3]);
        Assert.Equal("spiffe://legate.test/frontend", fields[4]);
        Assert.Equal("ops@legate.test", fields[5]);
        Assert.Equal("localhost", fields[6]);
        Assert.Contains("CN=edge", fields[7]);
        Assert.Equal(clientCert.Sha256Hex, fields[8]);
        Assert.Equal(clientCert.Certificate.SerialNumber.ToLowerInvariant(), fields[9]);
        Assert.Equal(clientCert.Certificate.NotBefore.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture), fields[10]);
        Assert.Equal(clientCert.Certificate.NotAfter.ToUniversalTime().Year.ToString(CultureInfo.InvariantCulture), fields[11]);

        Assert.Equal(Legate.Tls.TlsParameters.VersionName(handshake.Protocol), fields[12]);
        Assert.Matches("^(TLS_|ECDHE-)", fields[13]);
        Assert.Contains("CN=backend", fields[14]);
        Assert.Equal(Legate.Tls.CertificateNames.Read(_pki.Root.Certificate).Subject, fields[15]);
        Assert.Equal("spiffe://legate.test/backend", fields[16]);
        Assert.Equal("backend.legate.test", fields[17]);
        Assert.Equal("spiffe://legate.test/proxy", fields[18]);
        Assert.Equal(upstreamCert.Certificate.NotBefore.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture), fields[19]);
        Assert.Equal(new DateTimeOffset(upstreamCert.Certificate.NotAfter.ToUniversalTime()).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), fields[20]);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(upstreamCert.Certificate.RawData)), fields[21]);

        // The SNI the client sent, on an HTTP stream as on a tcp_proxy connection.
        Assert.Equal("localhost", fields[22]);
    }

    [Fact]
    public async Task OnPlaintextConnectionsTheTlsOperatorsPrintADash()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("plain")));
        var log = Path.Combine(_pki.Directory, "plain-access.log");
        var config = new ProxyConfig(upstream.Port)
        {
            Hcm = AccessLog(log, "%DOWNSTREAM_PEER_SUBJECT%|%DOWNSTREAM_TLS_VERSION%|%UPSTREAM_PEER_URI_SAN%|%UPSTREAM_TLS_CIPHER%|%UPSTREAM_PEER_CERT_V_END%"),
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);
        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
        Assert.Equal("plain", await response.Content.ReadAsStringAsync());
        await InProcessLegate.WaitUntilAsync(() => File.Exists(log) && File.ReadAllText(log).Contains('\n'), "the access log line");
        Assert.Equal("-|-|-|-|-\n", File.ReadAllText(log));
    }

    [Fact]
    public async Task TheTlsSessionIdOperatorIsAConfigErrorThatSaysWhy()
    {
        var log = Path.Combine(_pki.Directory, "session.log");
        var config = new ProxyConfig(1) { Hcm = AccessLog(log, "%UPSTREAM_TLS_SESSION_ID%") }.Build();
        var ex = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(config));
        Assert.Contains("UPSTREAM_TLS_SESSION_ID", ex.Message);
        Assert.Contains("session id", ex.Message);
    }
}
