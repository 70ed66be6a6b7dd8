using System.Globalization;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Tls;

/// <summary>
/// Server-side TLS session resumption on downstream listeners, against <c>openssl s_client</c>
/// saving a session (<c>-sess_out</c>) and offering it on the next connection (<c>-sess_in</c>):
/// resumed by default (TLS 1.3 tickets and PSK, TLS 1.2 tickets and session ids), counted in
/// Envoy's <c>ssl.session_reused</c>, never resumed when a <c>disable_*_session_resumption</c>
/// switch is set; a resumed session still carries the client certificate to later consumers.
/// </summary>
public sealed class SessionResumptionTests : IDisposable
{
    private const string Request = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

    private readonly TestCertificates _pki = new();
    private readonly TestCertificates.Issued _server;
    private readonly TestCertificates.Issued _client;

    public SessionResumptionTests()
    {
        _server = _pki.Leaf("server", new() { Dns = ["localhost"] });
        _client = _pki.Leaf("client", new() { CommonName = "resuming-client", Client = true });
    }

    public void Dispose() => _pki.Dispose();

    [ToolFact("openssl")]
    public async Task SessionsResumeByTicketAndByIdAndAreCounted()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server)))));
        var connect = Connect(legate);

        string[][] modes = [["-tls1_3"], ["-tls1_3", "-no_ticket"], ["-tls1_2"], ["-tls1_2", "-no_ticket"]];
        foreach (var mode in modes)
        {
            var (first, second) = await ConnectTwiceAsync(connect, mode);
            var name = string.Join(' ', mode);
            Assert.True(first.Contains("New, TLSv1.", StringComparison.Ordinal), name + ": " + first);
            Assert.True(second is not null && second.Contains("Reused, TLSv1.", StringComparison.Ordinal), name + ": " + second);
            Assert.Contains("tls ok", second, StringComparison.Ordinal);
        }

        Assert.Equal(8, Counter(legate, "handshake"));
        Assert.Equal(4, Counter(legate, "session_reused"));
    }

    [ToolFact("openssl")]
    public Task DisablingStatelessResumptionTurnsResumptionOff() => ResumptionOffAsync("disable_stateless_session_resumption: true");

    /// <summary>.NET has one switch for both kinds (AllowTlsResume), so either field turns both off.</summary>
    [ToolFact("openssl")]
    public Task DisablingStatefulResumptionTurnsResumptionOff() => ResumptionOffAsync("disable_stateful_session_resumption: true");

    private async Task ResumptionOffAsync(string field)
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), downstream: field))));
        var connect = Connect(legate);

        string[][] modes = [["-tls1_3"], ["-tls1_3", "-no_ticket"], ["-tls1_2"], ["-tls1_2", "-no_ticket"]];
        foreach (var mode in modes)
        {
            var (first, second) = await ConnectTwiceAsync(connect, mode);
            var name = string.Join(' ', mode);
            Assert.True(first.Contains("New, TLSv1.", StringComparison.Ordinal), name + ": " + first);

            // TLS 1.2 without a ticket or session id leaves s_client nothing to save.
            Assert.True(second is null || second.Contains("New, TLSv1.", StringComparison.Ordinal), name + ": " + second);
        }

        Assert.Equal(0, Counter(legate, "session_reused"));
    }

    /// <summary>
    /// With <c>cipher_suites</c> set, .NET builds its OpenSSL context per handshake (it caches one
    /// per certificate only without a <c>CipherSuitesPolicy</c>), so nothing can be resumed: pinned
    /// so that a .NET that lifts this shows up here.
    /// </summary>
    [ToolFact("openssl")]
    public async Task ConfiguredCipherSuitesLeaveNothingToResume()
    {
        var ciphers = "tls_params: {cipher_suites: [ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES256-GCM-SHA384]}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(Downstream(Cert(_server), common: ciphers))));

        var (first, second) = await ConnectTwiceAsync(Connect(legate), ["-tls1_3"]);
        Assert.Contains("New, TLSv1.3", first, StringComparison.Ordinal);
        Assert.NotNull(second);
        Assert.Contains("New, TLSv1.3", second, StringComparison.Ordinal);
        Assert.Equal(0, Counter(legate, "session_reused"));
    }

    [ToolFact("openssl")]
    public async Task AResumedMutualTlsSessionStillCarriesTheClientCertificate()
    {
        var log = Path.Combine(_pki.Directory, "resumed.log");
        var accessLog = $"access_log: [{{name: envoy.access_loggers.file, typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: \"{log}\", log_format: {{text_format: \"%DOWNSTREAM_PEER_SUBJECT%|%DOWNSTREAM_TLS_VERSION%\\n\"}}}}}}]";
        var downstream = Downstream(Cert(_server), common: $"validation_context: {{trusted_ca: {{filename: \"{_pki.RootPath}\"}}}}", downstream: "require_client_certificate: true");
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(downstream, hcmExtra: accessLog)));

        var (first, second) = await ConnectTwiceAsync(Connect(legate), ["-tls1_3", "-cert", _client.ChainPath!, "-key", _client.KeyPath!]);
        Assert.Contains("New, TLSv1.3", first, StringComparison.Ordinal);
        Assert.NotNull(second);
        Assert.Contains("Reused, TLSv1.3", second, StringComparison.Ordinal);
        Assert.Equal(1, Counter(legate, "session_reused"));
        Assert.Equal(0, Counter(legate, "no_certificate"));

        await InProcessLegate.WaitUntilAsync(() => File.Exists(log) && File.ReadAllLines(log).Length >= 2, "two access log lines");
        var lines = File.ReadAllLines(log);
        Assert.All(lines, line => Assert.Contains("CN=resuming-client", line, StringComparison.Ordinal));
    }

    private static string Connect(InProcessLegate legate) => "127.0.0.1:" + legate.ListenerEndpoint("tls").Port.ToString(CultureInfo.InvariantCulture);

    private static long Counter(InProcessLegate legate, string name) =>
        legate.Counter("listener.127.0.0.1_" + legate.ListenerEndpoint("tls").Port.ToString(CultureInfo.InvariantCulture) + ".ssl." + name);

    /// <summary>
    /// Two s_client connections, each sending one request and reading until the server closes
    /// (so TLS 1.3 tickets, sent after the handshake, are read): the first saves its session, the
    /// second offers it. The second is null when the first had no session to save.
    /// </summary>
    private async Task<(string First, string? Second)> ConnectTwiceAsync(string connect, string[] mode)
    {
        var session = Path.Combine(_pki.Directory, "session-" + Guid.NewGuid().ToString("N") + ".pem");
        string[] common = ["s_client", "-connect", connect, "-servername", "localhost", "-CAfile", _pki.RootPath, "-ign_eof", .. mode];
        var first = await ExternalTool.RunAsync("openssl", [.. common, "-sess_out", session], stdin: Request);
        if (!File.Exists(session) || new FileInfo(session).Length == 0)
        {
            return (first.All, null);
        }

        var second = await ExternalTool.RunAsync("openssl", [.. common, "-sess_in", session], stdin: Request);
        return (first.All, second.All);
    }
}
