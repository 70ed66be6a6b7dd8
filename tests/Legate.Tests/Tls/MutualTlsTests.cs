using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Tls;

/// <summary>
/// Client certificates: the accept/reject matrix of require_client_certificate, trusted_ca, SAN
/// matchers, pins, CRLs, expiry and ACCEPT_UNTRUSTED, each rejection counted under Envoy's name;
/// and what the upstream learns through x-forwarded-client-cert.
/// </summary>
public sealed class MutualTlsTests(MutualTlsTests.Pki fixture) : IClassFixture<MutualTlsTests.Pki>
{
    private readonly TestCertificates _pki = fixture.Main;
    private readonly TestCertificates.Issued _server = fixture.Server;
    private readonly TestCertificates.Issued _client = fixture.Client;
    private readonly TestCertificates.Issued _spiffe = fixture.Spiffe;

    /// <summary>The certificates every test here shares (RSA keys are slow to make).</summary>
    public sealed class Pki : IDisposable
    {
        public Pki()
        {
            Server = Main.Leaf("server", new() { Dns = ["localhost"], Uris = ["spiffe://legate.test/ns/edge/sa/proxy"] });
            Client = Main.Leaf("client", new() { CommonName = "Test Client", Dns = ["client.legate.test"], Emails = ["ops@legate.test"], Ips = [IPAddress.Parse("10.1.2.3")], Client = true });
            Spiffe = Main.Leaf("spiffe", new() { CommonName = "workload", Uris = ["spiffe://legate.test/ns/default/sa/frontend"], Client = true });
            Expired = Main.Leaf("expired", new() { Dns = ["old.legate.test"], Client = true, NotBefore = DateTimeOffset.UtcNow.AddDays(-30), NotAfter = DateTimeOffset.UtcNow.AddDays(-1) });
            Stranger = Other.Leaf("stranger", new() { Dns = ["client.legate.test"], Client = true });
            Revoked = Main.Leaf("revoked", new() { Client = true });
        }

        internal TestCertificates Main { get; } = new();

        internal TestCertificates Other { get; } = new("Other");

        internal TestCertificates.Issued Server { get; }

        internal TestCertificates.Issued Client { get; }

        internal TestCertificates.Issued Spiffe { get; }

        internal TestCertificates.Issued Expired { get; }

        internal TestCertificates.Issued Stranger { get; }

        internal TestCertificates.Issued Revoked { get; }

        public void Dispose()
        {
            Main.Dispose();
            Other.Dispose();
        }
    }

    public static TheoryData<string, string, bool> SanMatrix => new()
    {
        // matcher, which client, accepted
        { "{san_type: URI, matcher: {exact: \"spiffe://legate.test/ns/default/sa/frontend\"}}", "spiffe", true },
        { "{san_type: URI, matcher: {exact: \"spiffe://legate.test/ns/default/sa/backend\"}}", "spiffe", false },
        { "{san_type: URI, matcher: {prefix: \"spiffe://legate.test/ns/default/\"}}", "spiffe", true },
        { "{san_type: URI, matcher: {safe_regex: {regex: \"spiffe://legate\\\\.test/ns/[a-z]+/sa/front.*\"}}}", "spiffe", true },
        { "{san_type: DNS, matcher: {suffix: \".legate.test\"}}", "client", true },
        { "{san_type: DNS, matcher: {exact: \"client.legate.test\"}}", "client", true },
        { "{san_type: DNS, matcher: {contains: \"nomatch\"}}", "client", false },
        { "{san_type: EMAIL, matcher: {prefix: \"ops@\"}}", "client", true },
        { "{san_type: EMAIL, matcher: {exact: \"dev@legate.test\"}}", "client", false },
        { "{san_type: IP_ADDRESS, matcher: {exact: \"10.1.2.3\"}}", "client", true },
        { "{san_type: IP_ADDRESS, matcher: {exact: \"10.1.2.4\"}}", "client", false },
        { "{san_type: DNS, matcher: {exact: \"client.legate.test\"}}", "spiffe", false },
    };

    [Theory]
    [MemberData(nameof(SanMatrix))]
    public async Task SubjectAltNameMatchersAcceptOrReject(string matcher, string who, bool accepted)
    {
        var validation = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}, match_typed_subject_alt_names: [{matcher}]}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), validation, "require_client_certificate: true"))));
        var endpoint = legate.ListenerEndpoint("tls");
        var client = who == "spiffe" ? _spiffe : _client;

        var outcome = await TestTls.GetAsync(endpoint, new() { ClientCertificate = client.WithKey() });

        Assert.True((accepted ? 200 : 0) == outcome.Status, outcome.Error + " | " + legate.Logs.Text);
        Assert.Equal(accepted ? 0 : 1, Counter(legate, endpoint, "fail_verify_san"));
        Assert.Equal(accepted ? 1 : 0, Counter(legate, endpoint, "handshake"));
    }

    [Fact]
    public async Task ChainExpiryAndPresenceDecideWhoGetsIn()
    {
        var expired = fixture.Expired;
        var stranger = fixture.Stranger;
        var validation = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), validation, "require_client_certificate: true"))));
        var endpoint = legate.ListenerEndpoint("tls");

        Assert.Equal(200, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = _client.WithKey() })).Status);
        Assert.Equal(0, (await TestTls.GetAsync(endpoint, new())).Status);
        Assert.Equal(0, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = stranger.WithKey() })).Status);
        Assert.Equal(0, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = expired.WithKey() })).Status);

        Assert.Equal(1, Counter(legate, endpoint, "handshake"));
        Assert.Equal(1, Counter(legate, endpoint, "fail_verify_no_cert"));
        Assert.Equal(2, Counter(legate, endpoint, "fail_verify_error"));
        Assert.Equal(0, Counter(legate, endpoint, "connection_error"));
    }

    [Fact]
    public async Task AllowExpiredAcceptUntrustedAndOptionalCertificates()
    {
        var expired = fixture.Expired;
        var stranger = fixture.Stranger;

        var allowExpired = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}, allow_expired_certificate: true}}";
        await using (var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), allowExpired, "require_client_certificate: true")))))
        {
            var endpoint = legate.ListenerEndpoint("tls");
            Assert.Equal(200, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = expired.WithKey() })).Status);
            Assert.Equal(0, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = stranger.WithKey() })).Status);
        }

        var untrusted = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}, trust_chain_verification: ACCEPT_UNTRUSTED}}";
        await using (var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), untrusted)))))
        {
            var endpoint = legate.ListenerEndpoint("tls");
            Assert.Equal(200, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = stranger.WithKey() })).Status);

            // Without require_client_certificate a client may also come without one.
            Assert.Equal(200, (await TestTls.GetAsync(endpoint, new())).Status);
            Assert.Equal(1, Counter(legate, endpoint, "no_certificate"));
        }
    }

    [Fact]
    public async Task RouteTlsContextMatchesTheConnectionsClientCertificate()
    {
        var untrusted = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}, trust_chain_verification: ACCEPT_UNTRUSTED}}";
        // The chain's catch-all route answers "anonymous"; two tls_context routes go before it.
        var chain = Chain(Downstream(Cert(_server), untrusted), body: "anonymous");
        var at = chain.IndexOf("- match: { prefix: \"/\" }", StringComparison.Ordinal);
        var indent = new string(' ', at - chain.LastIndexOf('\n', at) - 1);
        chain = chain.Insert(at,
            "- match: { prefix: \"/\", tls_context: { presented: true, validated: true } }\n" + indent + "  direct_response: { status: 200, body: { inline_string: validated } }\n" + indent +
            "- match: { prefix: \"/\", tls_context: { presented: true } }\n" + indent + "  direct_response: { status: 200, body: { inline_string: presented } }\n" + indent);
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(chain));
        var endpoint = legate.ListenerEndpoint("tls");

        Assert.EndsWith("validated", (await TestTls.GetAsync(endpoint, new() { ClientCertificate = _client.WithKey() })).Response, StringComparison.Ordinal);
        Assert.EndsWith("presented", (await TestTls.GetAsync(endpoint, new() { ClientCertificate = fixture.Stranger.WithKey() })).Response, StringComparison.Ordinal);
        Assert.EndsWith("anonymous", (await TestTls.GetAsync(endpoint, new())).Response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CertificateHashAndSpkiPinsAcceptOnlyThePinnedClient()
    {
        var validation = $"validation_context: {{verify_certificate_hash: [\"{_client.Sha256Hex.ToUpperInvariant()}\"], verify_certificate_spki: [\"{_spiffe.SpkiBase64}\"]}}";
        var stranger = fixture.Stranger;
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), validation, "require_client_certificate: true"))));
        var endpoint = legate.ListenerEndpoint("tls");

        Assert.Equal(200, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = _client.WithKey() })).Status);
        Assert.Equal(200, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = _spiffe.WithKey() })).Status);
        Assert.Equal(0, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = stranger.WithKey() })).Status);
        Assert.Equal(1, Counter(legate, endpoint, "fail_verify_cert_hash"));
    }

    [Fact]
    public async Task ARevokedCertificateIsRefusedByTheCrl()
    {
        var revoked = fixture.Revoked;
        var crl = _pki.Crl("root.crl", _pki.Root, revoked);
        var validation = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}, crl: {{filename: \"{crl}\"}}, only_verify_leaf_cert_crl: true}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), validation, "require_client_certificate: true"))));
        var endpoint = legate.ListenerEndpoint("tls");

        Assert.Equal(200, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = _spiffe.WithKey() })).Status);
        Assert.Equal(0, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = revoked.WithKey() })).Status);
        Assert.Equal(1, Counter(legate, endpoint, "fail_verify_error"));
    }

    [Fact]
    public async Task SanitizeSetSendsThisHopsClientCertificateDetails()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()));
        var validation = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}}}";
        var hcm = "forward_client_cert_details: SANITIZE_SET\n          set_current_client_cert_details: {subject: true, uri: true, dns: true, cert: true}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(
            Chain(Downstream(Cert(_server), validation), hcmExtra: hcm, upstreamPort: upstream.Port), upstream.Port));
        var endpoint = legate.ListenerEndpoint("tls");

        using var client = TestTls.CreateHttpClient(endpoint, _pki.Root.Certificate, _client.WithKey());
        using var request = new HttpRequestMessage(HttpMethod.Get, "https://localhost/xfcc");
        request.Headers.TryAddWithoutValidation("x-forwarded-client-cert", "By=spoofed;Hash=00");
        using var response = await client.SendAsync(request);
        var xfcc = (await EchoedRequest.ReadAsync(response)).Header("x-forwarded-client-cert");

        var expected = "By=spiffe://legate.test/ns/edge/sa/proxy;Hash=" + _client.Sha256Hex
            + ";Cert=\"" + Uri.EscapeDataString(_client.CertificatePem) + "\""
            + ";Subject=\"C=US,O=Legate Tests,CN=Test Client\";URI=;DNS=client.legate.test";
        Assert.Equal(expected, xfcc);

        // Without a client certificate the spoofed header is removed (SANITIZE_SET needs mTLS).
        using var anonymous = TestTls.CreateHttpClient(endpoint, _pki.Root.Certificate);
        using var request2 = new HttpRequestMessage(HttpMethod.Get, "https://localhost/xfcc");
        request2.Headers.TryAddWithoutValidation("x-forwarded-client-cert", "By=spoofed;Hash=00");
        using var response2 = await anonymous.SendAsync(request2);
        Assert.Null((await EchoedRequest.ReadAsync(response2)).Header("x-forwarded-client-cert"));
    }

    [Theory]
    [InlineData("APPEND_FORWARD", true, "By=a;Hash=00,")]
    [InlineData("FORWARD_ONLY", true, "By=a;Hash=00")]
    [InlineData("SANITIZE", true, null)]
    [InlineData("ALWAYS_FORWARD_ONLY", false, "By=a;Hash=00")]
    [InlineData("FORWARD_ONLY", false, null)]
    public async Task ForwardClientCertDetailsModes(string mode, bool withCertificate, string? expectedPrefix)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()));
        var validation = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(
            Chain(Downstream(Cert(_server), validation), hcmExtra: "forward_client_cert_details: " + mode, upstreamPort: upstream.Port), upstream.Port));
        using var client = TestTls.CreateHttpClient(legate.ListenerEndpoint("tls"), _pki.Root.Certificate, withCertificate ? _spiffe.WithKey() : null);
        using var request = new HttpRequestMessage(HttpMethod.Get, "https://localhost/");
        request.Headers.TryAddWithoutValidation("x-forwarded-client-cert", "By=a;Hash=00");

        using var response = await client.SendAsync(request);
        var xfcc = (await EchoedRequest.ReadAsync(response)).Header("x-forwarded-client-cert");

        if (expectedPrefix is null)
        {
            Assert.Null(xfcc);
        }
        else if (mode == "APPEND_FORWARD")
        {
            Assert.Equal(expectedPrefix + "By=spiffe://legate.test/ns/edge/sa/proxy;Hash=" + _spiffe.Sha256Hex, xfcc);
        }
        else
        {
            Assert.Equal(expectedPrefix, xfcc);
        }
    }

    private static long Counter(InProcessLegate legate, IPEndPoint endpoint, string name) =>
        legate.Server.Stats.Counter("listener." + Legate.Network.SocketAddresses.Format(endpoint).Replace(':', '_') + ".ssl." + name).Value;
}
