using System.Text.Json;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Tls;

/// <summary>
/// Admin <c>/certs</c> in Envoy's JSON for downstream and upstream TLS contexts,
/// <c>server.days_until_first_cert_expiring</c>, and <c>/config_dump</c> never showing a private key.
/// </summary>
public sealed class CertsAdminTests(CertsAdminTests.Pki fixture) : IClassFixture<CertsAdminTests.Pki>
{
    private readonly Pki _pki = fixture;

    public sealed class Pki : IDisposable
    {
        public Pki()
        {
            Server = Main.Leaf("server", new() { Dns = ["localhost", "edge.legate.test"], Uris = ["spiffe://legate.test/edge"] });

            // Expires in three and a half days: the fewest days left of all certificates in use.
            Client = Main.Leaf("client", new() { CommonName = "frontend", Client = true, NotAfter = DateTimeOffset.UtcNow.AddDays(3.5) });
        }

        internal TestCertificates Main { get; } = new("Certs");

        internal TestCertificates.Issued Server { get; }

        internal TestCertificates.Issued Client { get; }

        public void Dispose() => Main.Dispose();
    }

    private string Config()
    {
        // The upstream client certificate inline, so /config_dump has key material to hide.
        var inlineClient = $"{{certificate_chain: {{inline_string: {JsonSerializer.Serialize(_pki.Client.CertificatePem)}}}, private_key: {{inline_string: {JsonSerializer.Serialize(_pki.Client.KeyPem)}}}}}";
        var validation = $"validation_context: {{trusted_ca: {{filename: \"{_pki.Main.RootPath}\"}}}}";
        var cluster = $"transport_socket: {{name: envoy.transport_sockets.tls, typed_config: {{\"@type\": \"{UpstreamType}\", common_tls_context: {{tls_certificates: [{inlineClient}], {validation}}}}}}}";
        return Bootstrap(Chain(Downstream(Cert(_pki.Server), validation), upstreamPort: 1), upstreamPort: 1, clusterExtra: cluster);
    }

    [Fact]
    public async Task CertsListsEveryContextInEnvoysJson()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());

        using var json = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "certs")));
        var contexts = json.RootElement.GetProperty("certificates").EnumerateArray().ToArray();
        Assert.Equal(2, contexts.Length);

        // The listener's context (compiled after the clusters? either order: find it by path).
        var downstream = contexts.Single(c => c.GetProperty("cert_chain")[0].GetProperty("path").GetString() == _pki.Server.ChainPath);
        var leaf = downstream.GetProperty("cert_chain")[0];
        Assert.Equal(_pki.Server.Certificate.SerialNumber.ToLowerInvariant(), leaf.GetProperty("serial_number").GetString());
        Assert.Equal(
            ["{\"dns\":\"localhost\"}", "{\"dns\":\"edge.legate.test\"}", "{\"uri\":\"spiffe://legate.test/edge\"}"],
            leaf.GetProperty("subject_alt_names").EnumerateArray().Select(n => JsonSerializer.Serialize(n)).ToArray());
        var expectedDays = Math.Floor((_pki.Server.Certificate.NotAfter.ToUniversalTime() - DateTime.UtcNow).TotalDays);
        Assert.Equal(expectedDays.ToString(System.Globalization.CultureInfo.InvariantCulture), leaf.GetProperty("days_until_expiration").GetString());
        Assert.Equal(_pki.Server.Certificate.NotBefore.ToUniversalTime(), leaf.GetProperty("valid_from").GetDateTime().ToUniversalTime(), TimeSpan.FromSeconds(1));
        Assert.Equal(_pki.Server.Certificate.NotAfter.ToUniversalTime(), leaf.GetProperty("expiration_time").GetDateTime().ToUniversalTime(), TimeSpan.FromSeconds(1));
        var ca = Assert.Single(downstream.GetProperty("ca_cert").EnumerateArray());
        Assert.Equal(_pki.Main.RootPath, ca.GetProperty("path").GetString());
        Assert.Equal(_pki.Main.Root.Certificate.SerialNumber.ToLowerInvariant(), ca.GetProperty("serial_number").GetString());

        // The cluster's context: the inline client certificate and the same CA.
        var upstream = contexts.Single(c => c.GetProperty("cert_chain")[0].GetProperty("path").GetString() == "<inline>");
        Assert.Equal("3", upstream.GetProperty("cert_chain")[0].GetProperty("days_until_expiration").GetString());
        Assert.Equal(_pki.Main.RootPath, upstream.GetProperty("ca_cert")[0].GetProperty("path").GetString());
    }

    [Fact]
    public async Task TheExpiryGaugeFollowsTheCertificateThatExpiresFirst()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());

        var stats = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats?filter=days_until"));
        Assert.Equal("server.days_until_first_cert_expiring: 3\n", stats);
    }

    [Fact]
    public async Task WithoutTlsTheGaugeIsZeroAndCertsIsEmpty()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        Assert.Equal("{\n \"certificates\": []\n}", (await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "certs"))).TrimEnd());
        Assert.Equal(0, legate.Gauge("server.days_until_first_cert_expiring"));
    }

    [Fact]
    public async Task ConfigDumpNeverPrintsAPrivateKey()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());

        var dump = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "config_dump"));
        Assert.DoesNotContain("PRIVATE KEY", dump, StringComparison.Ordinal);
        Assert.Contains("\"private_key\": {\n", dump, StringComparison.Ordinal);
        Assert.Contains("\"inline_string\": \"[redacted]\"", dump, StringComparison.Ordinal);

        // The certificate itself is not secret and stays.
        Assert.Contains("BEGIN CERTIFICATE", dump, StringComparison.Ordinal);
    }
}
