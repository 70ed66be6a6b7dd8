using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// Upstream 1xx heads on the HTTP/1.1 path, as Envoy: 102 and 103 are forwarded (only the first
/// 1xx of a stream), other 1xx are dropped, 100 Continue is Legate's own answer unless the
/// connection manager sets <c>proxy_100_continue</c>, in which case Expect goes upstream and the
/// upstream's 100 comes back. Checked byte by byte with raw sockets on both sides.
/// </summary>
public sealed class Http1InformationalTests
{
    [Fact]
    public async Task FirstEarlyHintsIsForwardedWithItsHeadersAndOtherInformationalHeadsAreDropped()
    {
        await using var upstream = RawUpstream.Serve(_ =>
            "HTTP/1.1 199 Odd\r\nx-odd: 1\r\n\r\n" +
            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nConnection: keep-alive\r\n\r\n" +
            "HTTP/1.1 102 Processing\r\n\r\n" +
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /hints HTTP/1.1\r\nHost: a\r\n\r\n");
        var hints = RawResponse.ParseHead((await client.ReadHeadAsync())!);
        var final = await client.ReadResponseAsync();

        Assert.Equal(103, hints.Status);
        Assert.Equal("</style.css>; rel=preload", hints.Header("link"));
        Assert.Null(hints.Header("x-odd"));
        Assert.Null(hints.Header("connection"));
        Assert.Equal(200, final.Status);
        Assert.Equal("ok", final.BodyText);

        // The connection stays usable: the next exchange starts cleanly with its own heads.
        await client.WriteAsync("GET /again HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal(103, RawResponse.ParseHead((await client.ReadHeadAsync())!).Status);
        Assert.Equal(200, (await client.ReadResponseAsync()).Status);
    }

    [Fact]
    public async Task ProcessingIsForwarded()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /p HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(102, RawResponse.ParseHead((await client.ReadHeadAsync())!).Status);
        Assert.Equal(201, (await client.ReadResponseAsync()).Status);
    }

    [Fact]
    public async Task WithoutProxy100ContinueLegateAnswersContinueAndDropsTheUpstreams()
    {
        var head = new TaskCompletionSource<RawRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var request = (await connection.ReadRequestAsync())!;
            head.TrySetResult(request);
            await connection.WriteAsync("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: " + request.Body.Length + "\r\n\r\n" + request.BodyText);
        });
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("POST /c HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
        Assert.Equal(100, RawResponse.ParseHead((await client.ReadHeadAsync())!).Status);
        await client.WriteAsync("hello");
        var response = await client.ReadResponseAsync();

        Assert.Equal(200, response.Status);
        Assert.Equal("hello", response.BodyText);
        Assert.Null((await head.Task).Header("expect"));
    }

    [Fact]
    public async Task WithProxy100ContinueExpectGoesUpstreamAndItsContinueComesBack()
    {
        var sawHead = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var sendContinue = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var requestHead = (await connection.ReadHeadAsync())!;
            sawHead.TrySetResult(requestHead);
            await sendContinue.Task;
            await connection.WriteAsync("HTTP/1.1 100 Continue\r\nx-from: upstream\r\n\r\n");
            var body = await connection.ReadExactlyAsync(5);
            await connection.WriteAsync("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n" + System.Text.Encoding.ASCII.GetString(body));
        });
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Hcm = "proxy_100_continue: true" }.Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("POST /c HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");

        // The request head reaches the upstream with Expect before anyone answered 100.
        Assert.Contains("expect: 100-continue", await sawHead.Task, StringComparison.OrdinalIgnoreCase);
        sendContinue.SetResult();
        var continueHead = RawResponse.ParseHead((await client.ReadHeadAsync())!);
        Assert.Equal(100, continueHead.Status);
        Assert.Equal("upstream", continueHead.Header("x-from"));
        await client.WriteAsync("hello");
        var response = await client.ReadResponseAsync();

        Assert.Equal(200, response.Status);
        Assert.Equal("hello", response.BodyText);
    }
}
