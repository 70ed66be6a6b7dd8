using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Tls;

/// <summary>
/// The OpenSSL engine (Tls/OpenSsl), which serves the chains whose DownstreamTlsContext sets
/// session_ticket_keys, session_timeout, ecdh_curves or signature_algorithms, proven with real
/// sockets and <c>openssl s_client</c>: tickets shared between instances by their keys, key
/// rotation, the ticket lifetime hint, curves, and what such a chain must still do (SNI, ALPN h2,
/// mTLS, stats, session facts, a bad ClientHello failing one connection only).
/// </summary>
public sealed class OpenSslEngineTests : IDisposable
{
    private const string Request = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

    private readonly TestCertificates _pki = new();
    private readonly TestCertificates.Issued _server;
    private readonly string _keyA = TicketKey();
    private readonly string _keyB = TicketKey();

    public OpenSslEngineTests()
    {
        _server = _pki.Leaf("server", new() { Dns = ["localhost"] });
    }

    public void Dispose() => _pki.Dispose();

    [ToolFact("openssl")]
    public async Task ATicketFromOneInstanceResumesOnAnotherWithTheSameKeysOnly()
    {
        var sameKeys = Downstream(Cert(_server), downstream: Keys(_keyA));
        await using var first = await InProcessLegate.StartAsync(Bootstrap(Chain(sameKeys)));
        await using var second = await InProcessLegate.StartAsync(Bootstrap(Chain(sameKeys)));
        await using var other = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: Keys(_keyB)))));

        foreach (var version in new[] { "-tls1_3", "-tls1_2" })
        {
            var session = NewSessionFile();
            var issued = await SClientAsync(first, [version, "-sess_out", session]);
            Assert.Contains("New, TLSv1.", issued, StringComparison.Ordinal);
            Assert.Contains("tls ok", issued, StringComparison.Ordinal);

            var resumed = await SClientAsync(second, [version, "-sess_in", session]);
            Assert.True(resumed.Contains("Reused, TLSv1.", StringComparison.Ordinal), version + ": " + resumed);
            Assert.Contains("tls ok", resumed, StringComparison.Ordinal);

            var refused = await SClientAsync(other, [version, "-sess_in", session]);
            Assert.True(refused.Contains("New, TLSv1.", StringComparison.Ordinal), version + ": " + refused);
            Assert.Contains("tls ok", refused, StringComparison.Ordinal);
        }

        Assert.Equal(2, Counter(second, "session_reused"));
        Assert.Equal(0, Counter(other, "session_reused"));
        Assert.Equal(0, Counter(first, "session_reused"));
        Assert.Equal(2, Counter(other, "handshake"));
    }

    [ToolFact("openssl")]
    public async Task ARotatedOutKeyStillOpensTicketsAsTheSecondKey()
    {
        await using var before = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: Keys(_keyA)))));
        await using var after = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: Keys(_keyB, _keyA)))));
        await using var dropped = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: Keys(_keyB)))));

        var session = NewSessionFile();
        Assert.Contains("New, TLSv1.3", await SClientAsync(before, ["-tls1_3", "-sess_out", session]), StringComparison.Ordinal);

        // The old key decrypts; the server answers with a ticket under the new first key, which the key-B-only instance opens.
        var renewed = NewSessionFile();
        var resumed = await SClientAsync(after, ["-tls1_3", "-sess_in", session, "-sess_out", renewed]);
        Assert.Contains("Reused, TLSv1.3", resumed, StringComparison.Ordinal);
        Assert.Contains("Reused, TLSv1.3", await SClientAsync(dropped, ["-tls1_3", "-sess_in", renewed]), StringComparison.Ordinal);
        Assert.Contains("New, TLSv1.3", await SClientAsync(dropped, ["-tls1_3", "-sess_in", session]), StringComparison.Ordinal);
    }

    /// <summary>
    /// Keys from a Secret: a static secret on one instance, a file SDS secret on another; the file
    /// rotates to [B, A] and the instance then seals with B and still opens A's tickets.
    /// </summary>
    [ToolFact("openssl")]
    public async Task TicketKeysFromSecretsResumeAcrossInstancesAndRotate()
    {
        var sdsPath = Path.Combine(_pki.Directory, "ticket-keys.yaml");
        WriteKeysSecret(sdsPath, _keyA);
        var fromFile = Downstream(Cert(_server), downstream: $"session_ticket_keys_sds_secret_config: {{name: ticket_keys, sds_config: {{path_config_source: {{path: \"{sdsPath}\"}}}}}}");
        var fromStatic = Downstream(Cert(_server), downstream: "session_ticket_keys_sds_secret_config: {name: ticket_keys}");
        var staticSecret = $$"""
              secrets:
              - name: ticket_keys
                session_ticket_keys: { keys: [ { inline_bytes: "{{_keyA}}" } ] }
            """;
        await using var sds = await InProcessLegate.StartAsync(Bootstrap(Chain(fromFile)));
        await using var stat = await InProcessLegate.StartAsync(Bootstrap(Chain(fromStatic), staticExtra: staticSecret));

        var underA = NewSessionFile();
        Assert.Contains("New, TLSv1.3", await SClientAsync(stat, ["-tls1_3", "-sess_out", underA]), StringComparison.Ordinal);
        Assert.Contains("Reused, TLSv1.3", await SClientAsync(sds, ["-tls1_3", "-sess_in", underA]), StringComparison.Ordinal);

        WriteKeysSecret(sdsPath, _keyB, _keyA);
        await InProcessLegate.WaitUntilAsync(() => sds.Counter("sds.ticket_keys.update_success") >= 1, "the rotated ticket keys");

        Assert.Contains("Reused, TLSv1.3", await SClientAsync(sds, ["-tls1_3", "-sess_in", underA]), StringComparison.Ordinal);
        var underB = NewSessionFile();
        Assert.Contains("New, TLSv1.3", await SClientAsync(sds, ["-tls1_3", "-sess_out", underB]), StringComparison.Ordinal);
        Assert.Contains("New, TLSv1.3", await SClientAsync(stat, ["-tls1_3", "-sess_in", underB]), StringComparison.Ordinal);
        Assert.Contains("Reused, TLSv1.3", await SClientAsync(sds, ["-tls1_3", "-sess_in", underB]), StringComparison.Ordinal);
    }

    private static void WriteKeysSecret(string path, params string[] keys)
    {
        // Written beside, then renamed over: an atomic replace, as Envoy expects of SDS files.
        var temp = path + ".tmp";
        File.WriteAllText(temp, "resources:\n- \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\n  name: ticket_keys\n  "
            + Keys(keys) + "\n");
        File.Move(temp, path, overwrite: true);
    }

    [ToolFact("openssl")]
    public async Task SessionTimeoutIsTheTicketLifetimeHint()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: "session_timeout: 321s"))));

        foreach (var version in new[] { "-tls1_3", "-tls1_2" })
        {
            var output = await SClientAsync(legate, [version]);
            Assert.True(output.Contains("TLS session ticket lifetime hint: 321 (seconds)", StringComparison.Ordinal), version + ": " + output);
        }

        // Without session_timeout the chain stays on SslStream, with OpenSSL's default of 7200 s.
        await using var plain = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server)))));
        Assert.Contains("TLS session ticket lifetime hint: 7200 (seconds)", await SClientAsync(plain, ["-tls1_3"]), StringComparison.Ordinal);
    }

    /// <summary>On this engine the two switches are separate, as in Envoy: tickets (stateless) and the session cache (stateful).</summary>
    [ToolFact("openssl")]
    public async Task StatelessAndStatefulResumptionAreSeparateSwitches()
    {
        await using var noTickets = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: "session_timeout: 300s, disable_stateless_session_resumption: true"))));
        await using var noCache = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: "session_timeout: 300s, disable_stateful_session_resumption: true"))));

        async Task<string> ResumeAsync(InProcessLegate legate, string[] mode)
        {
            var session = NewSessionFile();
            Assert.Contains("New, TLSv1.", await SClientAsync(legate, [.. mode, "-sess_out", session]), StringComparison.Ordinal);
            return await SClientAsync(legate, [.. mode, "-sess_in", session]);
        }

        // No tickets: a TLS 1.2 session id still resumes from the cache, and s_client is given no ticket.
        var byId = await ResumeAsync(noTickets, ["-tls1_2", "-no_ticket"]);
        Assert.Contains("Reused, TLSv1.2", byId, StringComparison.Ordinal);
        Assert.DoesNotContain("TLS session ticket:", await SClientAsync(noTickets, ["-tls1_2"]), StringComparison.Ordinal);

        // No cache: a ticket resumes; without one the server gives no session id, so s_client has nothing to keep.
        Assert.Contains("Reused, TLSv1.2", await ResumeAsync(noCache, ["-tls1_2"]), StringComparison.Ordinal);
        Assert.Contains("Reused, TLSv1.3", await ResumeAsync(noCache, ["-tls1_3"]), StringComparison.Ordinal);
        var idOnly = NewSessionFile();
        Assert.Contains("New, TLSv1.2", await SClientAsync(noCache, ["-tls1_2", "-no_ticket", "-sess_out", idOnly]), StringComparison.Ordinal);
        Assert.False(File.Exists(idOnly) && new FileInfo(idOnly).Length > 0, "a session id to resume");
        Assert.Equal(3, Counter(noCache, "session_reused") + Counter(noTickets, "session_reused"));
    }

    [ToolFact("openssl")]
    public async Task EcdhCurvesAcceptOnlyTheConfiguredGroups()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), common: "tls_params: {ecdh_curves: [P-256]}"))));

        foreach (var version in new[] { "-tls1_3", "-tls1_2" })
        {
            var accepted = await SClientAsync(legate, [version, "-groups", "P-256"]);
            Assert.True(accepted.Contains("tls ok", StringComparison.Ordinal), version + ": " + accepted);
            Assert.Contains("Server Temp Key: ECDH, prime256v1", accepted, StringComparison.Ordinal);

            var refused = await SClientAsync(legate, [version, "-groups", "X25519"]);
            Assert.DoesNotContain("tls ok", refused, StringComparison.Ordinal);
        }

        // s_client leaves on the alert; the refusal is counted when the handshake call returns to Legate.
        await InProcessLegate.WaitUntilAsync(() => Counter(legate, "connection_error") >= 2, "both refused handshakes counted");
        Assert.Equal(2, Counter(legate, "handshake"));
        Assert.Equal(2, Counter(legate, "connection_error"));
        Assert.Equal(2, Counter(legate, "curves.P-256"));
    }

    [ToolFact("openssl")]
    public async Task SignatureAlgorithmsBoundWhatTheServerSigns()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), common: "tls_params: {signature_algorithms: [rsa_pss_rsae_sha384]}"))));

        var accepted = await SClientAsync(legate, ["-tls1_3"]);
        Assert.Contains("tls ok", accepted, StringComparison.Ordinal);
        Assert.Contains("Peer signature type: RSA-PSS", accepted, StringComparison.Ordinal);
        Assert.Contains("Peer signing digest: SHA384", accepted, StringComparison.Ordinal);

        var refused = await SClientAsync(legate, ["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"]);
        Assert.DoesNotContain("tls ok", refused, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SniPicksTheCertificateAndTheSessionFactsReachTheAccessLog()
    {
        var alpha = _pki.Leaf("alpha", new() { CommonName = "alpha", Dns = ["alpha.test"] });
        var beta = _pki.Leaf("beta", new() { CommonName = "beta", Dns = ["*.beta.test"] });
        var log = Path.Combine(_pki.Directory, "openssl.log");
        var accessLog = $"access_log: [{{name: envoy.access_loggers.file, typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: \"{log}\", log_format: {{text_format: \"%DOWNSTREAM_TLS_VERSION%|%DOWNSTREAM_TLS_CIPHER%|%DOWNSTREAM_LOCAL_SUBJECT%\\n\"}}}}}}]";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(
            Downstream(string.Join(", ", Cert(alpha), Cert(beta)), downstream: "session_timeout: 600s"), hcmExtra: accessLog)));
        var endpoint = legate.ListenerEndpoint("tls");

        var toBeta = await TestTls.GetAsync(endpoint, new() { Sni = "www.beta.test", Protocols = SslProtocols.Tls12 });
        var toAlpha = await TestTls.GetAsync(endpoint, new() { Sni = "alpha.test" });
        var toNobody = await TestTls.GetAsync(endpoint, new() { Sni = null });

        Assert.Equal(200, toBeta.Status);
        Assert.Equal(beta.Certificate.Thumbprint, toBeta.ServerCertificate!.Thumbprint);
        Assert.Equal(alpha.Certificate.Thumbprint, toAlpha.ServerCertificate!.Thumbprint);
        Assert.Equal(alpha.Certificate.Thumbprint, toNobody.ServerCertificate!.Thumbprint);
        Assert.Equal(1, Counter(legate, "versions.TLSv1.2"));
        Assert.Equal(2, Counter(legate, "versions.TLSv1.3"));
        Assert.Equal(1, Counter(legate, "ciphers.ECDHE-RSA-AES128-GCM-SHA256"));
        Assert.Equal(3, Counter(legate, "curves.X25519"));

        await InProcessLegate.WaitUntilAsync(() => File.Exists(log) && File.ReadAllLines(log).Length >= 3, "three access log lines");
        var lines = File.ReadAllLines(log);
        Assert.StartsWith("TLSv1.2|ECDHE-RSA-AES128-GCM-SHA256|", lines[0], StringComparison.Ordinal);
        Assert.EndsWith(",CN=beta", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("TLSv1.3|TLS_", lines[1], StringComparison.Ordinal);
        Assert.EndsWith(",CN=alpha", lines[1], StringComparison.Ordinal);
    }

    /// <summary>An RSA and an ECDSA certificate for one name: ECDSA when the client offers ECDSA signatures, else RSA (as ServerTlsContext chooses).</summary>
    [ToolFact("openssl")]
    public async Task TheKeyTypeFollowsTheClientsSignatureAlgorithms()
    {
        var ecdsa = _pki.Leaf("ecdsa", new() { Dns = ["localhost"], Ecdsa = true });
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(string.Join(", ", Cert(_server), Cert(ecdsa)), downstream: "session_timeout: 60s"))));

        var modern = await SClientAsync(legate, ["-tls1_3"]);
        Assert.Contains("Peer signature type: ECDSA", modern, StringComparison.Ordinal);
        Assert.Contains("tls ok", modern, StringComparison.Ordinal);

        var rsaOnly = await SClientAsync(legate, ["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"]);
        Assert.Contains("Peer signature type: RSA-PSS", rsaOnly, StringComparison.Ordinal);
        Assert.Contains("tls ok", rsaOnly, StringComparison.Ordinal);
    }

    /// <summary>A certificate from file SDS rotates for new handshakes; a connection opened before keeps serving.</summary>
    [Fact]
    public async Task ARotatedCertificateServesNewHandshakesAndKeepsEstablishedOnes()
    {
        var next = _pki.Leaf("next", new() { Dns = ["localhost"], CommonName = "next" });
        var sdsPath = Path.Combine(_pki.Directory, "server-cert.yaml");
        _server.WriteSdsFile(sdsPath);
        var tls = $"{{\"@type\": \"{DownstreamType}\", session_timeout: 60s, common_tls_context: {{tls_certificate_sds_secret_configs: [{{name: server_cert, sds_config: {{path_config_source: {{path: \"{sdsPath}\"}}}}}}]}}}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(tls)));
        var endpoint = legate.ListenerEndpoint("tls");

        using var established = TestTls.CreateHttpClient(endpoint, _pki.Root.Certificate);
        Assert.Equal(HttpStatusCode.OK, (await established.GetAsync("https://localhost/before")).StatusCode);

        next.WriteSdsFile(sdsPath);
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("sds.server_cert.update_success") >= 1, "the rotated certificate");

        Assert.Equal(next.Certificate.Thumbprint, (await TestTls.GetAsync(endpoint, new())).ServerCertificate!.Thumbprint);
        Assert.Equal(HttpStatusCode.OK, (await established.GetAsync("https://localhost/after")).StatusCode);
        Assert.Equal(2, Counter(legate, "handshake"));
    }

    /// <summary>A PKCS#12 certificate with a password: its key is handed to OpenSSL as well.</summary>
    [Fact]
    public async Task APkcs12CertificateIsServed()
    {
        var p12 = Path.Combine(_pki.Directory, "server.p12");
        var rsa = (RSA)_server.Key;
        await File.WriteAllBytesAsync(p12, _server.Certificate.CopyWithPrivateKey(rsa).Export(X509ContentType.Pkcs12, "secret"));
        var cert = $"{{pkcs12: {{filename: \"{p12}\"}}, password: {{inline_string: secret}}}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(cert, downstream: "session_timeout: 60s"))));

        var outcome = await TestTls.GetAsync(legate.ListenerEndpoint("tls"), new());

        Assert.Equal(200, outcome.Status);
        Assert.Equal(_server.Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);
    }

    [Fact]
    public async Task AlpnH2RunsHttp2AndHttp11RunsHttp11()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()));
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(
            Chain(Downstream(Cert(_server), common: "alpn_protocols: [h2, http/1.1]", downstream: Keys(_keyA)), upstreamPort: upstream.Port), upstream.Port));
        var endpoint = legate.ListenerEndpoint("tls");

        foreach (var version in new[] { HttpVersion.Version20, HttpVersion.Version11 })
        {
            using var client = TestTls.CreateHttpClient(endpoint, _pki.Root.Certificate, version: version);
            for (var i = 0; i < 3; i++)
            {
                using var response = await client.GetAsync("https://localhost/alpn/" + i.ToString(CultureInfo.InvariantCulture));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal(version, response.Version);
                var echoed = await EchoedRequest.ReadAsync(response);
                Assert.Equal("https", echoed.Header("x-forwarded-proto"));
            }
        }

        Assert.Equal(2, Counter(legate, "handshake"));
    }

    [Fact]
    public async Task MutualTlsAcceptsTrustedClientsAndRejectsOthersWithTheirStats()
    {
        var client = _pki.Leaf("client", new() { CommonName = "client", Uris = ["spiffe://test/client"], Client = true });
        var otherPki = new TestCertificates("Other CA");
        try
        {
            var stranger = otherPki.Leaf("stranger", new() { CommonName = "stranger", Client = true });
            var wrongSan = _pki.Leaf("wrong-san", new() { CommonName = "wrong", Uris = ["spiffe://test/other"], Client = true });
            var validation = $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}, match_typed_subject_alt_names: [{{san_type: URI, matcher: {{exact: \"spiffe://test/client\"}}}}]}}";
            await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(
                Downstream(Cert(_server), common: validation, downstream: "require_client_certificate: true, session_timeout: 60s"))));
            var endpoint = legate.ListenerEndpoint("tls");

            Assert.Equal(200, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = client.WithKey() })).Status);
            Assert.Equal(0, (await TestTls.GetAsync(endpoint, new() { })).Status);
            Assert.Equal(0, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = stranger.WithKey() })).Status);
            Assert.Equal(0, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = wrongSan.WithKey() })).Status);

            // OpenSSL sends the alert inside the handshake; the failure is counted when the handshake
            // call returns to Legate, which can be just after the client has seen the alert.
            await InProcessLegate.WaitUntilAsync(
                () => Counter(legate, "fail_verify_no_cert") + Counter(legate, "fail_verify_error") + Counter(legate, "fail_verify_san") >= 3,
                "the three rejected handshakes counted");
            Assert.Equal(1, Counter(legate, "handshake"));
            Assert.Equal(1, Counter(legate, "fail_verify_no_cert"));
            Assert.Equal(1, Counter(legate, "fail_verify_error"));
            Assert.Equal(1, Counter(legate, "fail_verify_san"));
            Assert.Equal(0, Counter(legate, "no_certificate"));
        }
        finally
        {
            otherPki.Dispose();
        }
    }

    [ToolFact("openssl")]
    public async Task AResumedMutualTlsSessionCarriesTheClientCertificate()
    {
        var client = _pki.Leaf("client", new() { CommonName = "resuming-client", Client = true });
        var log = Path.Combine(_pki.Directory, "resumed.log");
        var accessLog = $"access_log: [{{name: envoy.access_loggers.file, typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: \"{log}\", log_format: {{text_format: \"%DOWNSTREAM_PEER_SUBJECT%\\n\"}}}}}}]";
        var downstream = Downstream(Cert(_server), common: $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}}}", downstream: "require_client_certificate: true, " + Keys(_keyA));
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(downstream, hcmExtra: accessLog)));

        var session = NewSessionFile();
        string[] mtls = ["-tls1_3", "-cert", client.ChainPath!, "-key", client.KeyPath!];
        Assert.Contains("New, TLSv1.3", await SClientAsync(legate, [.. mtls, "-sess_out", session]), StringComparison.Ordinal);
        Assert.Contains("Reused, TLSv1.3", await SClientAsync(legate, [.. mtls, "-sess_in", session]), StringComparison.Ordinal);
        Assert.Equal(1, Counter(legate, "session_reused"));

        await InProcessLegate.WaitUntilAsync(() => File.Exists(log) && File.ReadAllLines(log).Length >= 2, "two access log lines");
        Assert.All(File.ReadAllLines(log), line => Assert.EndsWith(",CN=resuming-client", line, StringComparison.Ordinal));
    }

    /// <summary>
    /// tcp_proxy over the engine: 8 MiB each way at once (reads and writes of one SSL from two
    /// tasks), the client's close_notify passed on as a FIN upstream, the upstream's FIN as close_notify.
    /// </summary>
    [Fact]
    public async Task TcpProxyCarriesBothDirectionsAndHalfCloses()
    {
        const int Size = 8 * 1024 * 1024;
        using var upstream = SendingUpstream(Size, seed: 2);
        await using var legate = await StartTcpProxyAsync(upstream.Port);

        await using var ssl = await TestTls.ConnectAsync(legate.ListenerEndpoint("tls"), new());
        var upload = Task.Run(async () =>
        {
            await ssl.WriteAsync(Pattern(Size, 1));
            await ssl.ShutdownAsync();
        });
        var downloaded = await HashToEndAsync(ssl).WaitAsync(TimeSpan.FromMinutes(2));
        await upload;
        var uploaded = await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(Convert.ToHexString(SHA256.HashData(Pattern(Size, 2))), downloaded);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(Pattern(Size, 1))), uploaded);
        Assert.Equal(1, Counter(legate, "handshake"));
    }

    /// <summary>
    /// A client that sends its whole upload before it reads anything, while the upstream answers at
    /// once: Legate's write towards the client stalls (the client is not reading) and its read of
    /// the upload must go on regardless — a read that waited for the stalled write to finish (to
    /// send its own bytes first) stopped the upload, and the client never got to read.
    /// </summary>
    [Fact]
    public async Task AStalledWriteTowardsTheClientDoesNotStopItsUpload()
    {
        const int Size = 32 * 1024 * 1024;
        using var upstream = SendingUpstream(Size, seed: 4);
        await using var legate = await StartTcpProxyAsync(upstream.Port);

        await using var ssl = await TestTls.ConnectAsync(legate.ListenerEndpoint("tls"), new());
        await ssl.WriteAsync(Pattern(Size, 3)).AsTask().WaitAsync(TimeSpan.FromMinutes(2));
        await ssl.ShutdownAsync();
        var downloaded = await HashToEndAsync(ssl).WaitAsync(TimeSpan.FromMinutes(2));
        var uploaded = await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(Convert.ToHexString(SHA256.HashData(Pattern(Size, 4))), downloaded);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(Pattern(Size, 3))), uploaded);
    }

    /// <summary>An upstream that sends <paramref name="size"/> bytes of pattern <paramref name="seed"/> while it hashes what arrives until the FIN, then closes its side.</summary>
    private static Legate.Tests.Extensions.Filters.Network.TcpProxyTests.TcpUpstream SendingUpstream(int size, int seed) =>
        Legate.Tests.Extensions.Filters.Network.TcpProxyTests.TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var sending = Task.Run(async () => await stream.WriteAsync(Pattern(size, seed)));
            var received = await HashToEndAsync(stream);
            await sending;
            socket.Shutdown(SocketShutdown.Send);
            return received;
        });

    /// <summary>Legate with tcp_proxy behind a TLS chain on the OpenSSL engine (session ticket keys).</summary>
    private Task<InProcessLegate> StartTcpProxyAsync(int upstreamPort)
    {
        var tls = Downstream(Cert(_server), downstream: Keys(_keyA));
        return InProcessLegate.StartAsync(TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: tls
                address:
                  socket_address: { address: 127.0.0.1, port_value: 0 }
                filter_chains:
                - transport_socket: {name: envoy.transport_sockets.tls, typed_config: {{tls}}}
                  filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: tcp, cluster: backend}
            {{Cluster(upstreamPort)}}
            """);
    }

    private static byte[] Pattern(int size, int seed)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static async Task<string> HashToEndAsync(Stream stream)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            hash.AppendData(buffer, 0, n);
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    [Fact]
    public async Task AMalformedClientHelloFailsOnlyItsConnection()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: Keys(_keyA)))));
        var endpoint = legate.ListenerEndpoint("tls");

        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(endpoint);
            // A handshake record whose ClientHello body is garbage.
            byte[] garbage = [0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef];
            await socket.SendAsync(garbage);
            var buffer = new byte[256];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var total = 0;
            int read;
            while ((read = await socket.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None, timeout.Token)) > 0)
            {
                total += read;
            }

            // OpenSSL answers with a fatal alert record, then the connection is closed.
            Assert.True(total >= 7, "an alert record");
            Assert.Equal(0x15, buffer[0]);
            Assert.Equal(2, buffer[5]);
        }

        Assert.Equal(200, (await TestTls.GetAsync(endpoint, new())).Status);
        Assert.Equal(1, Counter(legate, "connection_error"));
        Assert.Equal(1, Counter(legate, "handshake"));
    }

    [Fact]
    public async Task BadTicketKeysAndSdsKeysAreRejectedNamingTheField()
    {
        var shortKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(79));
        var ex = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: Keys(_keyA, shortKey))))));
        Assert.Contains("session_ticket_keys.keys[1]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Incorrect TLS session ticket key length. Length 79, expected length 80.", ex.Message, StringComparison.Ordinal);

        var sds = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: "session_ticket_keys_sds_secret_config: {name: keys}")))));
        Assert.Contains("session_ticket_keys_sds_secret_config.name", sds.Message, StringComparison.Ordinal);
        Assert.Contains("Unknown static secret: keys", sds.Message, StringComparison.Ordinal);

        var curve = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), common: "tls_params: {ecdh_curves: [P-999]}")))));
        Assert.Contains("tls_params.ecdh_curves", curve.Message, StringComparison.Ordinal);
    }

    private static string TicketKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(80));

    private static string Keys(params string[] keys) =>
        "session_ticket_keys: {keys: [" + string.Join(", ", keys.Select(k => $"{{inline_bytes: \"{k}\"}}")) + "]}";

    private string NewSessionFile() => Path.Combine(_pki.Directory, "session-" + Guid.NewGuid().ToString("N") + ".pem");

    private static long Counter(InProcessLegate legate, string name) =>
        legate.Counter("listener.127.0.0.1_" + legate.ListenerEndpoint("tls").Port.ToString(CultureInfo.InvariantCulture) + ".ssl." + name);

    /// <summary>One s_client connection sending a request and reading until the server closes (so TLS 1.3 tickets are read).</summary>
    private async Task<string> SClientAsync(InProcessLegate legate, string[] extra)
    {
        var connect = "127.0.0.1:" + legate.ListenerEndpoint("tls").Port.ToString(CultureInfo.InvariantCulture);
        var result = await ExternalTool.RunAsync("openssl", ["s_client", "-connect", connect, "-servername", "localhost", "-CAfile", _pki.RootPath, "-ign_eof", .. extra], stdin: Request);
        return result.All;
    }
}
