using System.Globalization;
using Legate.Tests.Harness;
using Xunit.Abstractions;

namespace Legate.Tests.Http;

/// <summary>
/// Malformed and hostile HTTP/1.1 input through a real listener: each request gets Envoy's status
/// and %RESPONSE_CODE_DETAILS% (or a close), never reaches the upstream, and the connection ends;
/// meanwhile other clients keep being served. Memory and connection counts return to their
/// baseline after a burst (in <see cref="MemoryBaselineCollection"/>, alone, so other tests'
/// allocations do not blur GC.GetTotalMemory).
/// </summary>
public sealed class HostileInputTests
{
    internal static readonly (string Name, string Raw, int Status, string Details)[] Cases =
    [
        ("invalid request line", "GARBAGE\r\n\r\n", 400, "http1.codec_error"),
        ("bad version", "GET / HTTP/9.9\r\nHost: a\r\n\r\n", 400, "http1.codec_error"),
        ("NUL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\0b\r\n\r\n", 400, "http1.invalid_characters"),
        ("bare CR in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\rb\r\n\r\n", 400, "http1.invalid_characters"),
        ("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n", 400, "http1.invalid_characters"),
        ("space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-Bad : a\r\n\r\n", 400, "http1.codec_error"),
        ("Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400, "http1.content_length_and_chunked_not_allowed"),
        ("duplicate differing Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, "http1.codec_error"),
        ("unsupported Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "http1.invalid_transfer_encoding"),
        ("oversized headers", "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + new string('a', 70 * 1024) + "\r\n\r\n", 431, "http1.headers_too_large"),
        ("huge chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFFFF\r\n", 400, "http1.codec_error"),
        ("invalid chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400, "http1.codec_error"),
    ];

    public static TheoryData<string> CaseNames => new(Cases.Select(c => c.Name));

    internal static ProxyConfig Config(int upstreamPort) => new(upstreamPort) { Hcm = "request_headers_timeout: 1s" };

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task MalformedRequestGetsItsStatusAndTheConnectionCloses(string name)
    {
        var (_, raw, status, details) = Cases.Single(c => c.Name == name);
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port).Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync(raw);

        var response = await client.ReadResponseAsync();
        Assert.Equal(status, response.Status);
        Assert.Equal("close", response.Header("connection"));
        Assert.True(await client.WaitForCloseAsync());
        Assert.Equal(details, (await recorder.WaitForAsync(s => s.ResponseCode == status)).Details);
        if (!name.Contains("chunk size", StringComparison.Ordinal))
        {
            // A bad head never leaves the proxy. (A bad chunk comes after the head was forwarded,
            // as in Envoy; the upstream request is then cancelled with the stream.)
            Assert.Equal(0, upstream.ConnectionCount);
        }

        // The listener serves the next client normally.
        await using var next = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        await next.WriteAsync("GET /fine HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal("ok", (await next.ReadResponseAsync()).BodyText);
    }

    [Fact]
    public async Task CodecErrorRepliesGoThroughLocalReplyConfig()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await InProcessLegate.StartAsync((Config(upstream.Port) with
        {
            Hcm = "request_headers_timeout: 0.3s\nlocal_reply_config:\n  body_format:\n    text_format: \"%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %LOCAL_REPLY_BODY%\"",
        }).Build());

        await using (var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web")))
        {
            await client.WriteAsync("GARBAGE\r\n\r\n");
            var response = await client.ReadResponseAsync();
            Assert.Equal(400, response.Status);
            Assert.Equal("400 DPE http1.codec_error Bad Request", response.BodyText);
            Assert.Equal("close", response.Header("connection"));
        }

        await using (var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web")))
        {
            await client.WriteAsync("GET / HTTP/1.1\r\n");
            Assert.Equal("408 - request_header_timeout request header timeout", (await client.ReadResponseAsync()).BodyText);
        }
    }

    [Fact]
    public async Task AllowChunkedLengthAcceptsBothAndForwardsChunked()
    {
        var seen = new TaskCompletionSource<RawRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            seen.TrySetResult((await connection.ReadRequestAsync())!);
            await connection.WriteAsync("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        });
        await using var legate = await InProcessLegate.StartAsync((Config(upstream.Port) with { Hcm = "http_protocol_options: { allow_chunked_length: true }" }).Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("POST /both HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");

        Assert.Equal(200, (await client.ReadResponseAsync()).Status);
        var request = await seen.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("hello", request.BodyText);
        Assert.Null(request.Header("content-length"));
        Assert.Equal("chunked", request.Header("transfer-encoding"));
    }

    [Fact]
    public async Task SlowHeaderClientsTimeOutWhileOthersAreServed()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        await using var legate = await InProcessLegate.StartAsync((Config(upstream.Port) with { Hcm = "request_headers_timeout: 0.5s" }).Build());

        var slow = new List<RawHttpConnection>();
        for (var i = 0; i < 20; i++)
        {
            var connection = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
            await connection.WriteAsync("GET /slow HTTP/1.1\r\nHost: a\r\nX-Drip: ");
            slow.Add(connection);
        }

        // A well-behaved client is answered while twenty slow ones hold their connections.
        await using (var fine = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web")))
        {
            await fine.WriteAsync("GET /fine HTTP/1.1\r\nHost: a\r\n\r\n");
            Assert.Equal("ok", (await fine.ReadResponseAsync()).BodyText);
        }

        foreach (var connection in slow)
        {
            Assert.Equal(408, (await connection.ReadResponseAsync()).Status);
            Assert.True(await connection.WaitForCloseAsync());
            await connection.DisposeAsync();
        }

        Assert.Equal(20, legate.Counter("http.web.downstream_rq_header_timeout"));
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_cx_active") == 0, "every connection closed");
    }
}

/// <summary>Tests that read GC.GetTotalMemory run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(MemoryBaselineCollection), DisableParallelization = true)]
public sealed class MemoryBaselineCollection;

[Collection(nameof(MemoryBaselineCollection))]
public sealed class HostileInputMemoryTests(ITestOutputHelper output)
{
    /// <summary>Generous: the burst moves hundreds of MiB through; what may stay is pools and JIT'd code.</summary>
    private const long Slack = 64L * 1024 * 1024;

    [Fact]
    public async Task BurstOfHostileConnectionsLeavesMemoryAndConnectionsAtBaseline()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        await using var legate = await InProcessLegate.StartAsync(HostileInputTests.Config(upstream.Port).Build());

        // Warm up every path once, then measure.
        await BurstAsync(legate, rounds: 1);
        var baseline = Settle();

        await BurstAsync(legate, rounds: 40);

        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_cx_active") == 0, "every hostile connection closed");
        var after = Settle();
        output.WriteLine($"GC heap: baseline {baseline / 1024} KiB, after {40 * HostileInputTests.Cases.Length} hostile connections {after / 1024} KiB");
        Assert.True(after < baseline + Slack, $"GC heap grew from {baseline} to {after} bytes");
        Assert.Equal(0, legate.Gauge("http.web.downstream_rq_active"));
    }

    private static async Task BurstAsync(InProcessLegate legate, int rounds)
    {
        for (var round = 0; round < rounds; round++)
        {
            var attacks = HostileInputTests.Cases.Select(async c =>
            {
                await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
                await client.WriteAsync(c.Raw);
                Assert.Equal(c.Status, (await client.ReadResponseAsync()).Status);
            }).ToList();

            // Someone normal in the middle of every wave.
            attacks.Add(Task.Run(async () =>
            {
                await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
                await client.WriteAsync("GET /fine HTTP/1.1\r\nHost: a\r\n\r\n");
                Assert.Equal("ok", (await client.ReadResponseAsync()).BodyText);
            }));
            await Task.WhenAll(attacks);
        }
    }

    private static long Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
