using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// CONNECT over HTTP/1.1 as Envoy: routes select CONNECT requests with <c>connect_matcher</c> and
/// allow them with a CONNECT <c>upgrade_configs</c> entry (else 403 <c>upgrade_failed</c>); with
/// <c>connect_config</c> the router terminates the CONNECT (200 once a raw TCP connection to the
/// cluster host is up, then bytes both ways), without it the CONNECT goes upstream and the
/// upstream's 2xx opens the tunnel. The upstreams are raw TCP echo servers.
/// </summary>
public sealed class Http1ConnectTests
{
    private const string HcmConnect = "upgrade_configs: [{ upgrade_type: CONNECT }]";

    private const string TerminatingRoute = """
        - match: { connect_matcher: {} }
          route: { cluster: backend, upgrade_configs: [{ upgrade_type: CONNECT, connect_config: {} }] }
        """;

    private const string ProxyingRoute = """
        - match: { connect_matcher: {} }
          route: { cluster: backend }
        """;

    /// <summary>A TCP upstream that records what it received and echoes every byte; "quit" makes it close its side.</summary>
    private static RawUpstream EchoUpstream(StringBuilder received) => RawUpstream.Start(async connection =>
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await connection.Stream.ReadAsync(buffer);
            if (read == 0)
            {
                return;
            }

            var text = Encoding.Latin1.GetString(buffer, 0, read);
            lock (received)
            {
                received.Append(text);
                if (received.ToString().EndsWith("quit", StringComparison.Ordinal))
                {
                    connection.Socket.Shutdown(SocketShutdown.Send);
                    return;
                }
            }

            await connection.WriteAsync(buffer.AsMemory(0, read));
        }
    });

    [Fact]
    public async Task TerminatedConnectRelaysRawBytesBothWaysUntilTheUpstreamCloses()
    {
        var received = new StringBuilder();
        await using var upstream = EchoUpstream(received);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Hcm = HcmConnect, Routes = TerminatingRoute, Route = "timeout: 0.5s" }.Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: raw\r\n\r\n");
        var head = RawResponse.ParseHead((await client.ReadHeadAsync())!);

        Assert.Equal(200, head.Status);
        Assert.Null(head.Header("content-length"));
        Assert.Null(head.Header("transfer-encoding"));
        Assert.Null(head.Header("connection"));
        Assert.NotNull(head.Header("x-envoy-upstream-service-time"));

        // Past the route timeout (0.5 s) on purpose: a tunnel has none.
        var big = new byte[300_000];
        Random.Shared.NextBytes(big);
        foreach (var payload in new[] { "hello"u8.ToArray(), big, "third"u8.ToArray() })
        {
            await client.WriteAsync(payload);
            Assert.Equal(payload, await client.ReadExactlyAsync(payload.Length));
        }

        Assert.Equal(1, legate.Gauge("http.web.downstream_cx_upgrades_active"));
        Assert.Equal(1, legate.Counter("http.web.downstream_cx_upgrades_total"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_total"));

        // The upstream's FIN ends the response and the downstream connection.
        await client.WriteAsync("quit");
        Assert.True(await client.WaitForCloseAsync());
        var stream = await recorder.WaitForAsync(_ => true);
        Assert.Equal(200, stream.ResponseCode);
        Assert.Equal("-", stream.Flags);

        // The upstream saw the payload only: the CONNECT head is not forwarded.
        lock (received)
        {
            Assert.StartsWith("hello", received.ToString(), StringComparison.Ordinal);
        }

        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_cx_upgrades_active") == 0, "the tunnel ended");
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("cluster.backend.upstream_cx_active") == 0, "the upstream connection closed");
        Assert.Empty(upstream.Errors);
    }

    [Fact]
    public async Task PayloadSentWithTheHeadIsRelayedOnceTheUpstreamIsUp()
    {
        var received = new StringBuilder();
        await using var upstream = EchoUpstream(received);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Hcm = HcmConnect, Routes = TerminatingRoute }.Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        // Early data in the same segment as the head (as clients that do not wait for the 200 send it).
        await client.WriteAsync("CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nearly-bytes");

        Assert.Equal(200, RawResponse.ParseHead((await client.ReadHeadAsync())!).Status);
        Assert.Equal("early-bytes", Encoding.ASCII.GetString(await client.ReadExactlyAsync("early-bytes".Length)));
    }

    [Fact]
    public async Task ConnectFailureIs503UpstreamConnectError()
    {
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        var port = ((System.Net.IPEndPoint)closed.LocalEndPoint!).Port;
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(port) { Hcm = HcmConnect, Routes = TerminatingRoute }.Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        var response = await client.ReadResponseAsync();

        Assert.Equal(503, response.Status);
        Assert.Equal("upstream connect error or disconnect/reset before headers. reset reason: connection failure", response.BodyText);
        var stream = await recorder.WaitForAsync(_ => true);
        Assert.Equal("UF", stream.Flags);
        Assert.Equal("upstream_reset_before_response_started{connection_failure}", stream.Details);
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_connect_fail"));
    }

    [Theory]
    [InlineData("", TerminatingRoute, 200)]
    [InlineData(HcmConnect, ProxyingRoute, 200)]
    [InlineData("", ProxyingRoute, 403)]
    [InlineData(HcmConnect, "", 404)]
    public async Task ConnectNeedsAConnectMatcherRouteAndAnUpgradeConfig(string hcm, string routes, int status)
    {
        // Route-level CONNECT upgrade_configs enable it without the connection manager's (Envoy's table).
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\n\r\n");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Hcm = hcm, Routes = routes }.Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        var head = RawResponse.ParseHead((await client.ReadHeadAsync())!);

        Assert.Equal(status, head.Status);
        if (status == 403)
        {
            Assert.Equal("upgrade_failed", (await recorder.WaitForAsync(_ => true)).Details);
            Assert.Equal(1, legate.Counter("http.web.downstream_rq_ws_on_non_ws_route"));
        }
        else if (status == 404)
        {
            // Prefix routes never match a CONNECT: it has no path (Envoy's FAQ "404ing CONNECT requests").
            Assert.Equal("route_not_found", (await recorder.WaitForAsync(_ => true)).Details);
        }
    }

    [Fact]
    public async Task ProxiedConnectGoesUpstreamAndItsTwoHundredOpensTheTunnel()
    {
        var requestLine = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var head = (await connection.ReadHeadAsync())!;
            requestLine.TrySetResult(head);
            await connection.WriteAsync("HTTP/1.1 200 Connection established\r\n\r\n");
            while (true)
            {
                var line = await connection.ReadLineAsync();
                if (line is null or "quit")
                {
                    return;
                }

                await connection.WriteAsync("echo:" + line + "\n");
            }
        });
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Hcm = HcmConnect, Routes = ProxyingRoute, Route = "timeout: 0.5s" }.Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        var head = RawResponse.ParseHead((await client.ReadHeadAsync())!);
        Assert.Equal(200, head.Status);
        Assert.Null(head.Header("transfer-encoding"));
        Assert.Null(head.Header("content-length"));

        await client.WriteAsync("one\n");
        Assert.Equal("echo:one", await client.ReadLineAsync());
        await Task.Delay(TimeSpan.FromSeconds(1)); // past the route timeout: the tunnel stays (not synchronisation)
        await client.WriteAsync("two\n");
        Assert.Equal("echo:two", await client.ReadLineAsync());

        var forwarded = await requestLine.Task;
        Assert.StartsWith("CONNECT example.com:443 HTTP/1.1\r\n", forwarded, StringComparison.Ordinal);
        Assert.DoesNotContain("transfer-encoding", forwarded, StringComparison.OrdinalIgnoreCase);
        await client.WriteAsync("quit\n");
        Assert.True(await client.WaitForCloseAsync());
    }

    [ToolFact("curl")]
    public async Task CurlProxyTunnelThroughATerminatedConnect()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("through the tunnel\n"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Hcm = HcmConnect, Routes = TerminatingRoute }.Build());

        // curl -p opens a CONNECT tunnel through the proxy and speaks HTTP/1.1 inside it to the cluster's host.
        var result = await ExternalTool.RunAsync("curl", ["-sS", "--max-time", "30", "-p", "-x", legate.ListenerUri("web").ToString(), "http://backend.test:" + upstream.Port + "/in"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("through the tunnel\n", result.Stdout);
        var request = Assert.Single(upstream.Log.Requests);
        Assert.Equal("/in", request.RawTarget);
    }
}
