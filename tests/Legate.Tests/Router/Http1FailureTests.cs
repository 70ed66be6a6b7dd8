using System.Net;
using System.Net.Sockets;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// The HTTP/1.1 data path's failure modes, each with Envoy's status, body, response flag,
/// %RESPONSE_CODE_DETAILS% and stats: routing failures (NR, NC, UH), connect failures (UF),
/// upstream terminations and garbage (UC, UPE), timeouts (UT, request headers) and a downstream
/// that goes away (DC, with the upstream request cancelled and its connection not reused).
/// </summary>
public sealed class Http1FailureTests
{
    private const string ResetPrefix = "upstream connect error or disconnect/reset before headers. reset reason: ";

    private static Task<InProcessLegate> StartAsync(ProxyConfig config) => InProcessLegate.StartAsync(config.Build());

    [Fact]
    public async Task NoRouteIs404NR()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build().Replace("prefix: \"/\"", "prefix: \"/api\"", StringComparison.Ordinal));
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var response = await SendAsync(legate, "GET /other HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(404, response.Status);
        Assert.Empty(response.Body);
        Assert.Equal("0", response.Header("content-length"));
        Assert.Equal("envoy", response.Header("server"));
        var stream = await recorder.WaitForPathAsync("/other");
        Assert.Equal("NR", stream.Flags);
        Assert.Equal("route_not_found", stream.Details);
        Assert.Equal(1, legate.Counter("http.web.no_route"));
        Assert.Equal(0, upstream.ConnectionCount);
    }

    [Theory]
    [InlineData("", 503)]
    [InlineData(", cluster_not_found_response_code: NOT_FOUND", 404)]
    [InlineData(", cluster_not_found_response_code: INTERNAL_SERVER_ERROR", 500)]
    public async Task UnknownClusterIsNC(string codeField, int status)
    {
        await using var legate = await StartAsync(new ProxyConfig(1)
        {
            RouteConfig = "validate_clusters: false",
            Routes = "- match: { prefix: \"/nc\" }\n  route: { cluster: missing" + codeField + " }",
        });
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var response = await SendAsync(legate, "GET /nc HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(status, response.Status);
        Assert.Empty(response.Body);
        var stream = await recorder.WaitForPathAsync("/nc");
        Assert.Equal("NC", stream.Flags);
        Assert.Equal("cluster_not_found", stream.Details);
        Assert.Equal(1, legate.Counter("http.web.no_cluster"));
    }

    [Fact]
    public async Task ClusterWithoutHostsIs503UH()
    {
        await using var legate = await StartAsync(new ProxyConfig(1)
        {
            Routes = "- match: { prefix: \"/uh\" }\n  route: { cluster: empty }",
            Clusters = "- name: empty\n  connect_timeout: 1s\n  load_assignment: { cluster_name: empty }",
        });
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var response = await SendAsync(legate, "GET /uh HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(503, response.Status);
        Assert.Equal("no healthy upstream", response.BodyText);
        Assert.Equal("text/plain", response.Header("content-type"));
        var stream = await recorder.WaitForPathAsync("/uh");
        Assert.Equal("UH", stream.Flags);
        Assert.Equal("no_healthy_upstream", stream.Details);
        Assert.Equal(1, legate.Counter("cluster.empty.upstream_cx_none_healthy"));
    }

    [Fact]
    public async Task ConnectionRefusedIs503UF()
    {
        using var portRefusing = FreePort.Refusing();
        var port = portRefusing.Port;
        await using var legate = await StartAsync(new ProxyConfig(port));
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var response = await SendAsync(legate, "GET /uf HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(503, response.Status);
        Assert.Equal(ResetPrefix + "connection failure", response.BodyText);
        var stream = await recorder.WaitForPathAsync("/uf");
        Assert.Equal("UF", stream.Flags);
        Assert.Equal("upstream_reset_before_response_started{connection_failure}", stream.Details);
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_connect_fail"));
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_cx_total"));
    }

    [Fact]
    public async Task ConnectTimeoutIs503UFConnectionTimeout()
    {
        // A listener whose accept queue is full (backlog 0, one connection parked): further SYNs are
        // dropped by the kernel, so a connect hangs until the cluster's connect_timeout.
        using var full = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        full.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        full.Listen(0);
        var parked = new List<Socket>();
        try
        {
            await FillBacklogAsync((IPEndPoint)full.LocalEndPoint!, parked);
            await using var legate = await StartAsync(new ProxyConfig(((IPEndPoint)full.LocalEndPoint!).Port) { ConnectTimeout = "0.5s" });
            using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

            var response = await SendAsync(legate, "GET /ct HTTP/1.1\r\nHost: a\r\n\r\n");

            Assert.Equal(503, response.Status);
            Assert.Equal(ResetPrefix + "connection timeout", response.BodyText);
            var stream = await recorder.WaitForPathAsync("/ct");
            Assert.Equal("UF", stream.Flags);
            Assert.Equal("upstream_reset_before_response_started{connection_timeout}", stream.Details);
            Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_connect_timeout"));
            Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_connect_fail"));
        }
        finally
        {
            parked.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task UpstreamCloseBeforeHeadersIs503UC()
    {
        await using var upstream = RawUpstream.Start(async connection => await connection.ReadRequestAsync());
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var response = await SendAsync(legate, "GET /uc HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(503, response.Status);
        Assert.Equal(ResetPrefix + "connection termination", response.BodyText);
        var stream = await recorder.WaitForPathAsync("/uc");
        Assert.Equal("UC", stream.Flags);
        Assert.Equal("upstream_reset_before_response_started{connection_termination}", stream.Details);
    }

    [Theory]
    [InlineData("garbage\r\n\r\n")]
    [InlineData("HTTP/1.1 2000 Huge\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab")]
    [InlineData("HTTP/1.1 200 OK\r\nbad header\r\n\r\n")]
    public async Task InvalidUpstreamResponseIs502UPE(string garbage)
    {
        await using var upstream = RawUpstream.Serve(_ => garbage);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var response = await SendAsync(legate, "GET /upe HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(502, response.Status);
        Assert.Equal(ResetPrefix + "protocol error", response.BodyText);
        var stream = await recorder.WaitForPathAsync("/upe");
        Assert.Equal("UPE", stream.Flags);
        Assert.Equal("upstream_reset_before_response_started{protocol_error}", stream.Details);
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_protocol_error"));
    }

    [Fact]
    public async Task RouteTimeoutIs504UTAndTheUpstreamConnectionIsClosed()
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            await connection.ReadRequestAsync();
            if (await connection.WaitForCloseAsync())
            {
                closed.TrySetResult();
            }
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Route = "timeout: 0.3s" });
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var response = await SendAsync(legate, "GET /ut HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(504, response.Status);
        Assert.Equal("upstream request timeout", response.BodyText);
        var stream = await recorder.WaitForPathAsync("/ut");
        Assert.Equal("UT", stream.Flags);
        Assert.Equal("upstream_response_timeout", stream.Details);
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_rq_timeout"));
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task UpstreamCloseAfterTheResponseStartedResetsTheDownstream()
    {
        await using var upstream = RawUpstream.Start(async connection =>
        {
            await connection.ReadRequestAsync();
            await connection.WriteAsync("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789");
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /late HTTP/1.1\r\nHost: a\r\n\r\n");
        var head = RawResponse.ParseHead((await client.ReadHeadAsync())!);
        Assert.Equal(200, head.Status);
        Assert.Equal("100", head.Header("content-length"));

        // The ten body bytes the upstream sent still arrive, then the connection ends: the client
        // sees a truncated body (as with Envoy, which flushes and closes), never a complete response.
        Assert.Equal("0123456789"u8.ToArray(), await client.ReadExactlyAsync(10));
        Assert.True(await client.WaitForCloseAsync());
        var stream = await recorder.WaitForPathAsync("/late");
        Assert.Equal("UC", stream.Flags);
        Assert.Equal("upstream_reset_after_response_started{connection_termination}", stream.Details);
        Assert.True(stream.Reset);
    }

    [Fact]
    public async Task DownstreamDisconnectIsDCAndCancelsTheUpstreamRequest()
    {
        var requestSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var upstreamClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var request = await connection.ReadRequestAsync();
            if (request?.Target == "/next")
            {
                await connection.WriteAsync("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext");
                await connection.ReadRequestAsync();
                return;
            }

            requestSeen.TrySetResult();
            if (await connection.WaitForCloseAsync())
            {
                upstreamClosed.TrySetResult();
            }
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        await client.WriteAsync("GET /gone HTTP/1.1\r\nHost: a\r\n\r\n");
        await requestSeen.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await client.DisposeAsync();

        // The upstream sees its connection closed, the stream is DC, and the connection is not reused.
        await upstreamClosed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var stream = await recorder.WaitForPathAsync("/gone");
        Assert.Equal("DC", stream.Flags);
        Assert.Equal("downstream_remote_disconnect", stream.Details);
        Assert.Equal(1, legate.Counter("http.web.downstream_rq_rx_reset"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_rq_tx_reset"));

        var next = await SendAsync(legate, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal("next", next.BodyText);
        Assert.Equal(2, upstream.ConnectionCount);
    }

    [Fact]
    public async Task DownstreamDisconnectMidRequestBodyIsDC()
    {
        var bodyStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var upstreamClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            await connection.ReadHeadAsync();
            await connection.ReadExactlyAsync(5);
            bodyStarted.TrySetResult();
            try
            {
                await connection.ReadToEndAsync();
            }
            finally
            {
                upstreamClosed.TrySetResult();
            }
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        await client.WriteAsync("POST /half HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nhello");
        await bodyStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await client.DisposeAsync();

        await upstreamClosed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var stream = await recorder.WaitForPathAsync("/half");
        Assert.Equal("DC", stream.Flags);
    }

    [Fact]
    public async Task RequestHeadersTimeoutAnswers408AndCloses()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = "request_headers_timeout: 0.3s" });
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        // Half a head, then nothing (slowloris).
        await client.WriteAsync("GET /slow HTTP/1.1\r\nHost: a\r\n");

        var response = await client.ReadResponseAsync();
        Assert.Equal(408, response.Status);
        Assert.Equal("request header timeout", response.BodyText);
        Assert.Equal("close", response.Header("connection"));
        Assert.True(await client.WaitForCloseAsync());
        Assert.Equal(1, legate.Counter("http.web.downstream_rq_header_timeout"));
        var stream = await recorder.WaitForAsync(s => s.ResponseCode == 408);
        Assert.Equal("request_header_timeout", stream.Details);
        Assert.Equal(0, upstream.ConnectionCount);
    }

    [Fact]
    public async Task StreamIdleTimeoutWhileTheUpstreamBodyStallsResetsTheStream()
    {
        await using var upstream = RawUpstream.Start(async connection =>
        {
            await connection.ReadRequestAsync();
            await connection.WriteAsync("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
            await connection.WaitForCloseAsync();
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = "stream_idle_timeout: 0.3s" });
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /stall HTTP/1.1\r\nHost: a\r\n\r\n");
        var head = RawResponse.ParseHead((await client.ReadHeadAsync())!);
        Assert.Equal(200, head.Status);

        // The response started, so the timeout can only reset: what was sent arrives, then the connection ends.
        Assert.Equal("abc"u8.ToArray(), await client.ReadExactlyAsync(3));
        Assert.True(await client.WaitForCloseAsync());
        var stream = await recorder.WaitForPathAsync("/stall");
        Assert.Equal("SI", stream.Flags);
        Assert.Equal("stream_idle_timeout", stream.Details);
        Assert.Equal(1, legate.Counter("http.web.downstream_rq_idle_timeout"));
    }

    [Fact]
    public async Task LocalReplyFormatCarriesTheResponseFlagsAndDetails()
    {
        using var portRefusing = FreePort.Refusing();
        var port = portRefusing.Port;
        await using var legate = await StartAsync(new ProxyConfig(port)
        {
            Hcm = "local_reply_config:\n  body_format:\n    text_format: \"%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %LOCAL_REPLY_BODY%\"",
        });

        var response = await SendAsync(legate, "GET /fmt HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(503, response.Status);
        Assert.Equal("503 UF upstream_reset_before_response_started{connection_failure} " + ResetPrefix + "connection failure", response.BodyText);
    }

    private static async Task<RawResponse> SendAsync(InProcessLegate legate, string request)
    {
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        await client.WriteAsync(request);
        return await client.ReadResponseAsync();
    }

    private static async Task FillBacklogAsync(IPEndPoint endpoint, List<Socket> parked)
    {
        for (var i = 0; i < 16; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            parked.Add(socket);
            using var attempt = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await socket.ConnectAsync(endpoint, attempt.Token);
            }
            catch (OperationCanceledException)
            {
                // This one hangs: the queue is full.
                return;
            }
        }

        Assert.Fail("the accept queue never filled up");
    }
}
