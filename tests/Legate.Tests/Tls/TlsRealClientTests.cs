using System.Globalization;
using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Tls;

/// <summary>Downstream TLS against real clients: curl and openssl s_client (TLS 1.2/1.3, ALPN, client certificates, key type by signature algorithms).</summary>
public sealed class TlsRealClientTests : IDisposable
{
    private readonly TestCertificates _pki = new();
    private readonly TestCertificates.Issued _rsa;
    private readonly TestCertificates.Issued _ecdsa;
    private readonly TestCertificates.Issued _client;

    public TlsRealClientTests()
    {
        _rsa = _pki.Leaf("rsa", new() { Dns = ["localhost"] });
        _ecdsa = _pki.Leaf("ecdsa", new() { Dns = ["localhost"], Ecdsa = true });
        _client = _pki.Leaf("client", new() { Client = true, Uris = ["spiffe://legate.test/curl"] });
    }

    public void Dispose() => _pki.Dispose();

    [ToolFact("curl")]
    public async Task CurlSpeaksHttp2AndHttp11WithTls12And13()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_rsa), "alpn_protocols: [h2, http/1.1]"))));
        var port = legate.ListenerEndpoint("tls").Port.ToString(CultureInfo.InvariantCulture);

        async Task<string> Curl(params string[] extra) =>
            (await ExternalTool.RunAsync("curl", ["-sS", "--cacert", _pki.RootPath, "--resolve", $"localhost:{port}:127.0.0.1", "-w", "|%{http_version}|%{http_code}", .. extra, $"https://localhost:{port}/"])).All;

        Assert.Contains("tls ok|2|200", await Curl("--http2"));
        Assert.Contains("tls ok|1.1|200", await Curl("--http1.1"));
        Assert.Contains("tls ok|2|200", await Curl("--tlsv1.2", "--tls-max", "1.2"));
        Assert.Contains("tls ok|2|200", await Curl("--tlsv1.3"));
    }

    [ToolFact("curl")]
    public async Task CurlClientCertificatesAreRequiredAndChecked()
    {
        var validation = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}, match_typed_subject_alt_names: [{{san_type: URI, matcher: {{exact: \"spiffe://legate.test/curl\"}}}}]}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_rsa), validation, "require_client_certificate: true"))));
        var port = legate.ListenerEndpoint("tls").Port.ToString(CultureInfo.InvariantCulture);
        string[] common = ["-sS", "--cacert", _pki.RootPath, "--resolve", $"localhost:{port}:127.0.0.1", "-w", "|%{http_code}", $"https://localhost:{port}/"];

        var with = await ExternalTool.RunAsync("curl", ["--cert", _client.ChainPath!, "--key", _client.KeyPath!, .. common]);
        var without = await ExternalTool.RunAsync("curl", common);

        Assert.Equal(0, with.ExitCode);
        Assert.Contains("tls ok|200", with.Stdout);
        Assert.NotEqual(0, without.ExitCode);
    }

    [ToolFact("openssl")]
    public async Task OpensslSeesTheNegotiatedVersionAlpnAndChain()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_rsa), "alpn_protocols: [h2, http/1.1]"))));
        var connect = "127.0.0.1:" + legate.ListenerEndpoint("tls").Port.ToString(CultureInfo.InvariantCulture);

        var tls12 = await ExternalTool.RunAsync("openssl", ["s_client", "-connect", connect, "-servername", "localhost", "-tls1_2", "-alpn", "h2", "-CAfile", _pki.RootPath, "-verify_return_error"], stdin: string.Empty);
        var tls13 = await ExternalTool.RunAsync("openssl", ["s_client", "-connect", connect, "-servername", "localhost", "-tls1_3", "-alpn", "http/1.1", "-CAfile", _pki.RootPath, "-verify_return_error"], stdin: string.Empty);

        Assert.Contains("New, TLSv1.2", tls12.All);
        Assert.Contains("ALPN protocol: h2", tls12.All);
        Assert.Contains("Verify return code: 0 (ok)", tls12.All);
        Assert.Contains("New, TLSv1.3", tls13.All);
        Assert.Contains("ALPN protocol: http/1.1", tls13.All);
    }

    [ToolFact("openssl")]
    public async Task TheCertificateKeyTypeFollowsTheClientsSignatureAlgorithms()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_rsa) + ", " + Cert(_ecdsa)))));
        var connect = "127.0.0.1:" + legate.ListenerEndpoint("tls").Port.ToString(CultureInfo.InvariantCulture);

        async Task<string> Handshake(string sigalgs) =>
            (await ExternalTool.RunAsync("openssl", ["s_client", "-connect", connect, "-servername", "localhost", "-sigalgs", sigalgs, "-CAfile", _pki.RootPath], stdin: string.Empty)).All;

        Assert.Contains("Server public key is 256 bit", await Handshake("ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256"));
        Assert.Contains("Server public key is 2048 bit", await Handshake("rsa_pss_rsae_sha256"));
    }

    [ToolFact("openssl")]
    public async Task OpensslClientCertificateRequestGetsAnHttpAnswer()
    {
        var validation = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_ecdsa), validation, "require_client_certificate: true"))));
        var connect = "127.0.0.1:" + legate.ListenerEndpoint("tls").Port.ToString(CultureInfo.InvariantCulture);
        const string Request = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

        var accepted = await ExternalTool.RunAsync("openssl", ["s_client", "-connect", connect, "-servername", "localhost", "-cert", _client.ChainPath!, "-key", _client.KeyPath!, "-CAfile", _pki.RootPath, "-ign_eof", "-quiet"], stdin: Request);
        var refused = await ExternalTool.RunAsync("openssl", ["s_client", "-connect", connect, "-servername", "localhost", "-CAfile", _pki.RootPath, "-ign_eof", "-quiet"], stdin: Request);

        Assert.Contains("HTTP/1.1 200 OK", accepted.Stdout);
        Assert.Contains("tls ok", accepted.Stdout);
        Assert.DoesNotContain("HTTP/1.1", refused.Stdout);
    }
}
