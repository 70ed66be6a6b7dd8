using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Tls;

/// <summary>
/// Listener filters with real traffic: tls_inspector (SNI, ALPN, split ClientHellos, plaintext and
/// TLS on one port), http_inspector, proxy_protocol (v1, v2, HAProxy as the sender) and
/// listener_filters_timeout.
/// </summary>
public sealed class ListenerFilterTests(ListenerFilterTests.Pki fixture) : IClassFixture<ListenerFilterTests.Pki>
{
    private const string TlsInspector = "listener_filters: [{name: envoy.filters.listener.tls_inspector, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}}]";

    /// <summary>Certificates shared by the tests.</summary>
    public sealed class Pki : IDisposable
    {
        public Pki()
        {
            A = Main.Leaf("a", new() { Dns = ["a.test"], Ecdsa = true });
            B = Main.Leaf("b", new() { Dns = ["*.b.test"], Ecdsa = true });
            Fallback = Main.Leaf("fallback", new() { Dns = ["localhost"], Ecdsa = true });
        }

        internal TestCertificates Main { get; } = new();

        internal TestCertificates.Issued A { get; }

        internal TestCertificates.Issued B { get; }

        internal TestCertificates.Issued Fallback { get; }

        public void Dispose() => Main.Dispose();
    }

    [Fact]
    public async Task PlaintextAndTlsShareOnePortAndTlsChainsAreChosenBySni()
    {
        var chains =
            Chain(null, body: "plain", match: "{transport_protocol: raw_buffer}", name: "plain")
            + Chain(Downstream(Cert(fixture.A)), body: "chain a", match: "{server_names: [a.test], transport_protocol: tls}", name: "a")
            + Chain(Downstream(Cert(fixture.B)), body: "chain b", match: "{server_names: [\"*.b.test\"], transport_protocol: tls}", name: "b")
            + Chain(Downstream(Cert(fixture.Fallback)), body: "chain tls", match: "{transport_protocol: tls}", name: "tlsdefault");
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(chains, listenerExtra: TlsInspector));
        var endpoint = legate.ListenerEndpoint("tls");

        Assert.EndsWith("plain", await legate.Http.GetStringAsync(legate.ListenerUri("tls")));
        var a = await TestTls.GetAsync(endpoint, new() { Sni = "a.test" });
        var b = await TestTls.GetAsync(endpoint, new() { Sni = "www.b.test" });
        var other = await TestTls.GetAsync(endpoint, new() { Sni = "c.test" });
        var none = await TestTls.GetAsync(endpoint, new() { Sni = null });

        Assert.EndsWith("chain a", a.Response);
        Assert.Equal(fixture.A.Certificate.Thumbprint, a.ServerCertificate!.Thumbprint);
        Assert.EndsWith("chain b", b.Response);
        Assert.Equal(fixture.B.Certificate.Thumbprint, b.ServerCertificate!.Thumbprint);
        Assert.EndsWith("chain tls", other.Response);
        Assert.EndsWith("chain tls", none.Response);
        var stats = legate.Server.Stats;
        Assert.Equal(4, stats.Counter("tls_inspector.tls_found").Value);
        Assert.Equal(1, stats.Counter("tls_inspector.tls_not_found").Value);
        Assert.Equal(3, stats.Counter("tls_inspector.sni_found").Value);
        Assert.Equal(1, stats.Counter("tls_inspector.sni_not_found").Value);
    }

    [Fact]
    public async Task ApplicationProtocolsFromAlpnChooseTheChain()
    {
        var chains =
            Chain(Downstream(Cert(fixture.Fallback), "alpn_protocols: [h2]"), body: "h2 chain", match: "{application_protocols: [h2], transport_protocol: tls}", name: "h2")
            + Chain(Downstream(Cert(fixture.Fallback)), body: "other chain", match: "{transport_protocol: tls}", name: "other");
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(chains, listenerExtra: TlsInspector));
        var endpoint = legate.ListenerEndpoint("tls");

        using var h2 = TestTls.CreateHttpClient(endpoint, fixture.Main.Root.Certificate, version: HttpVersion.Version20);
        Assert.Equal("h2 chain", await h2.GetStringAsync("https://localhost/"));
        var http11 = await TestTls.GetAsync(endpoint, new() { Alpn = ["http/1.1"] });
        Assert.EndsWith("other chain", http11.Response);
        Assert.Equal(2, legate.Server.Stats.Counter("tls_inspector.alpn_found").Value);
    }

    [Fact]
    public async Task AClientHelloSplitAcrossPacketsIsStillInspected()
    {
        var chains =
            Chain(Downstream(Cert(fixture.A)), body: "chain a", match: "{server_names: [a.test]}", name: "a")
            + Chain(Downstream(Cert(fixture.Fallback)), body: "chain tls", name: "tlsdefault");
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(chains, listenerExtra: TlsInspector));
        var endpoint = legate.ListenerEndpoint("tls");

        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(endpoint);
        await using var ssl = new System.Net.Security.SslStream(new SplittingStream(tcp.GetStream()), leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions { TargetHost = "a.test", RemoteCertificateValidationCallback = (_, _, _, _) => true });
        await ssl.WriteAsync("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"u8.ToArray());
        var response = await new StreamReader(ssl).ReadToEndAsync();

        Assert.EndsWith("chain a", response);
        Assert.Equal(1, legate.Server.Stats.Counter("tls_inspector.sni_found").Value);
    }

    [Fact]
    public async Task HttpInspectorSetsTheApplicationProtocolForPlaintext()
    {
        const string HttpInspector = "listener_filters: [{name: envoy.filters.listener.http_inspector}]";
        var chains =
            Chain(null, body: "h2c chain", match: "{application_protocols: [h2c]}", name: "h2c").Replace("stat_prefix: h2c", "stat_prefix: h2c\n          codec_type: HTTP2", StringComparison.Ordinal)
            + Chain(null, body: "http11 chain", match: "{application_protocols: [http/1.1]}", name: "h11")
            + Chain(null, body: "other chain", name: "other", hcmExtra: "http_protocol_options: {accept_http_10: true}");
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(chains, listenerExtra: HttpInspector));

        using var h2c = TestHttp.CreateClient(HttpVersion.Version20);
        Assert.Equal("h2c chain", await h2c.GetStringAsync(legate.ListenerUri("tls")));
        Assert.Equal("http11 chain", await legate.Http.GetStringAsync(legate.ListenerUri("tls")));
        Assert.EndsWith("other chain", await RawAsync(legate.ListenerEndpoint("tls"), "GET / HTTP/1.0\r\nHost: x\r\n\r\n"));
        var stats = legate.Server.Stats;
        Assert.Equal(1, stats.Counter("http_inspector.http2_found").Value);
        Assert.Equal(1, stats.Counter("http_inspector.http11_found").Value);
        Assert.Equal(1, stats.Counter("http_inspector.http10_found").Value);
    }

    [Theory]
    [InlineData("PROXY TCP4 203.0.113.7 127.0.0.1 51000 80\r\n", "203.0.113.7")]
    [InlineData("PROXY TCP6 2001:db8::7 ::1 51000 80\r\n", "2001:db8::7")]
    [InlineData("v2", "198.51.100.9")]
    public async Task ProxyProtocolMakesTheAnnouncedClientTheRemoteAddress(string header, string client)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()));
        const string Filters = "listener_filters: [{name: envoy.filters.listener.proxy_protocol, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol}}]";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null, hcmExtra: "use_remote_address: true", upstreamPort: upstream.Port), upstream.Port, listenerExtra: Filters));

        var bytes = header == "v2" ? ProxyV2(IPAddress.Parse(client), 51000, IPAddress.Loopback, 80) : Encoding.ASCII.GetBytes(header);
        var response = await RawAsync(legate.ListenerEndpoint("tls"), "GET /pp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", bytes);

        var body = response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
        Assert.Equal(client, EchoedRequest.Parse(body).Header("x-forwarded-for"));
        Assert.Equal(1, legate.Server.Stats.Counter(header == "v2" ? "proxy_proto.versions.v2.found" : "proxy_proto.versions.v1.found").Value);
    }

    [Fact]
    public async Task WithoutAHeaderTheConnectionClosesUnlessAllowed()
    {
        string Filters(bool allow) => "listener_filters: [{name: envoy.filters.listener.proxy_protocol, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol, allow_requests_without_proxy_protocol: " + (allow ? "true" : "false") + "}}]";

        await using (var strict = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: Filters(false))))
        {
            Assert.Equal(string.Empty, await RawAsync(strict.ListenerEndpoint("tls"), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
            Assert.Equal(1, strict.Server.Stats.Counter("proxy_proto.not_found_disallowed").Value);
        }

        await using var lenient = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: Filters(true)));
        Assert.EndsWith("tls ok", await RawAsync(lenient.ListenerEndpoint("tls"), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        Assert.Equal(1, lenient.Server.Stats.Counter("proxy_proto.not_found_allowed").Value);
    }

    [ToolFact("haproxy")]
    public async Task HaproxySendProxyV1AndV2ReachLegateWithTheClientsAddress()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()));
        const string Filters = "listener_filters: [{name: envoy.filters.listener.proxy_protocol, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol}}]";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null, hcmExtra: "use_remote_address: true\n          internal_address_config: { cidr_ranges: [{ address_prefix: 10.0.0.0, prefix_len: 8 }] }", upstreamPort: upstream.Port), upstream.Port, listenerExtra: Filters));
        var legatePort = legate.ListenerEndpoint("tls").Port;

        foreach (var mode in new[] { "send-proxy", "send-proxy-v2" })
        {
            var frontPort = FreePort.Get();
            var config = Path.Combine(Path.GetTempPath(), "legate-haproxy-" + Guid.NewGuid().ToString("N") + ".cfg");
            File.WriteAllText(config, $"""
                global
                  maxconn 100
                defaults
                  mode tcp
                  timeout connect 5s
                  timeout client 30s
                  timeout server 30s
                frontend front
                  bind 127.0.0.1:{frontPort}
                  default_backend legate
                backend legate
                  server legate 127.0.0.1:{legatePort} {mode}

                """);
            using var haproxy = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(ExternalTool.Find("haproxy")!, ["-db", "-f", config]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            try
            {
                // The client binds to 127.0.0.2 so the address HAProxy announces differs from HAProxy's own.
                var response = await RetryUntilListeningAsync(() => RawAsync(new IPEndPoint(IPAddress.Loopback, frontPort), "GET /haproxy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", source: IPAddress.Parse("127.0.0.2")));
                var body = response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
                // x-forwarded-for would carry Legate's own address for a loopback client (Envoy's rule),
                // so the announced client is read from x-envoy-external-address (an edge request: loopback is
                // made external by internal_address_config).
                Assert.Equal("127.0.0.2", EchoedRequest.Parse(body).Header("x-envoy-external-address"));
            }
            finally
            {
                haproxy.Kill(entireProcessTree: true);
                await haproxy.WaitForExitAsync();
                File.Delete(config);
            }
        }

        Assert.Equal(1, legate.Server.Stats.Counter("proxy_proto.versions.v1.found").Value);
        Assert.Equal(1, legate.Server.Stats.Counter("proxy_proto.versions.v2.found").Value);
    }

    [Fact]
    public async Task ListenerFiltersTimeoutClosesOrContinues()
    {
        var strictExtra = TlsInspector + "\n    listener_filters_timeout: 0.5s";
        await using (var strict = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: strictExtra)))
        {
            var endpoint = strict.ListenerEndpoint("tls");
            using var silent = new TcpClient();
            await silent.ConnectAsync(endpoint);
            var read = await silent.GetStream().ReadAsync(new byte[16]).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(0, read);
            Assert.Equal(1, strict.Server.Stats.Counter("listener." + Legate.Network.SocketAddresses.Format(endpoint).Replace(':', '_') + ".downstream_pre_cx_timeout").Value);
        }

        var lenientExtra = TlsInspector + "\n    listener_filters_timeout: 0.5s\n    continue_on_listener_filters_timeout: true";
        await using var lenient = await InProcessLegate.StartAsync(Bootstrap(Chain(null, body: "late but served"), listenerExtra: lenientExtra));
        var lenientEndpoint = lenient.ListenerEndpoint("tls");
        using var late = new TcpClient();
        await late.ConnectAsync(lenientEndpoint);
        var timeouts = lenient.Server.Stats.Counter("listener." + Legate.Network.SocketAddresses.Format(lenientEndpoint).Replace(':', '_') + ".downstream_pre_cx_timeout");
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while (timeouts.Value == 0)
            {
                await Task.Delay(10, wait.Token);
            }
        }

        await late.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"u8.ToArray());
        var response = await new StreamReader(late.GetStream()).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.EndsWith("late but served", response);
    }

    internal static byte[] ProxyV2(IPAddress source, int sourcePort, IPAddress destination, int destinationPort)
    {
        var v6 = source.AddressFamily == AddressFamily.InterNetworkV6;
        var tlv = new byte[] { 0x04, 0x00, 0x03, (byte)'a', (byte)'b', (byte)'c' }; // PP2_TYPE_NOOP
        var addressLength = v6 ? 36 : 12;
        var header = new List<byte> { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, (byte)(v6 ? 0x21 : 0x11) };
        var length = addressLength + tlv.Length;
        header.Add((byte)(length >> 8));
        header.Add((byte)length);
        header.AddRange(source.GetAddressBytes());
        header.AddRange(v6 ? IPAddress.IPv6Loopback.GetAddressBytes() : destination.GetAddressBytes());
        header.Add((byte)(sourcePort >> 8));
        header.Add((byte)sourcePort);
        header.Add((byte)(destinationPort >> 8));
        header.Add((byte)destinationPort);
        header.AddRange(tlv);
        return [.. header];
    }

    /// <summary>Sends <paramref name="prefix"/> then <paramref name="request"/> on a plain connection and reads to the end.</summary>
    internal static async Task<string> RawAsync(IPEndPoint endpoint, string request, byte[]? prefix = null, IPAddress? source = null)
    {
        using var tcp = source is null ? new TcpClient() : new TcpClient(new IPEndPoint(source, 0));
        await tcp.ConnectAsync(endpoint);
        var stream = tcp.GetStream();
        if (prefix is not null)
        {
            await stream.WriteAsync(prefix);
        }

        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        try
        {
            return await new StreamReader(stream, Encoding.Latin1).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    private static async Task<string> RetryUntilListeningAsync(Func<Task<string>> attempt)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                var result = await attempt();
                if (result.Length > 0 || DateTime.UtcNow > deadline)
                {
                    return result;
                }
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                // HAProxy is still starting: its port refuses until it is bound.
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Writes the first write (the ClientHello) in two packets, with a pause between.</summary>
    private sealed class SplittingStream(Stream inner) : Stream
    {
        private bool _split;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_split && buffer.Length > 20)
            {
                _split = true;
                await inner.WriteAsync(buffer[..20], cancellationToken);
                await inner.FlushAsync(cancellationToken);
                await Task.Delay(100, cancellationToken);
                await inner.WriteAsync(buffer[20..], cancellationToken);
                return;
            }

            await inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
