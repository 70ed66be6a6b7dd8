using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Legate.Tests.Harness;
using Microsoft.AspNetCore.Http;

namespace Legate.Tests.Router;

/// <summary>
/// The HTTP/1.1 data path end to end: a real client (HttpClient or raw bytes) → Legate's HTTP/1.1
/// codec → router → the HTTP/1.1 connection pool → a real upstream (Kestrel, or a
/// <see cref="RawUpstream"/> where the test needs exact bytes). Connection reuse, pipelining,
/// HTTP/1.0, connection close on each side, request limits, idle timeouts, body framing,
/// trailers, 100-continue, HEAD and bodiless statuses.
/// </summary>
public sealed class Http1ProxyTests
{
    private const string Http1Options = """
        typed_extension_protocol_options:
          envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
            "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        """;

    private static Task<InProcessLegate> StartAsync(ProxyConfig config) => InProcessLegate.StartAsync(config.Build());

    private static string Ok(string body, string extraHeaders = "") =>
        $"HTTP/1.1 200 OK\r\ncontent-length: {Encoding.UTF8.GetByteCount(body)}\r\n{extraHeaders}\r\n{body}";

    [Fact]
    public async Task KeepAliveRequestsShareOneDownstreamAndOneUpstreamConnection()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        using var client = TestHttp.CreateClient();

        for (var i = 0; i < 20; i++)
        {
            using var response = await client.GetAsync(legate.ListenerUri("web", "/k/" + i.ToString(CultureInfo.InvariantCulture)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("ok", await response.Content.ReadAsStringAsync());
        }

        var seen = upstream.Log.Requests;
        Assert.Equal(20, seen.Count);
        Assert.Single(seen.Select(r => r.ConnectionId).Distinct());
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_total"));
        Assert.Equal(1, legate.Counter("http.web.downstream_cx_total"));
        Assert.Equal(20, legate.Counter("http.web.downstream_rq_http1_total"));
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_rq_completed") == 20, "20 upstream requests completed");
        Assert.Equal(20, legate.Counter("cluster.backend.upstream_rq_2xx"));
        Assert.Equal(1, legate.Gauge("cluster.backend.upstream_cx_active"));
    }

    [Fact]
    public async Task PipelinedRequestsAreAnsweredInOrder()
    {
        await using var upstream = RawUpstream.Serve(request => Ok(request.Method + " " + request.Target + " " + request.BodyText));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        // Three requests in one write: the proxy must answer them one after the other, in order.
        await client.WriteAsync(
            "GET /one HTTP/1.1\r\nHost: a\r\n\r\n" +
            "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody" +
            "GET /three HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal("GET /one ", (await client.ReadResponseAsync()).BodyText);
        Assert.Equal("POST /two body", (await client.ReadResponseAsync()).BodyText);
        Assert.Equal("GET /three ", (await client.ReadResponseAsync()).BodyText);
        Assert.Equal(1, upstream.ConnectionCount);
        Assert.Equal(3, legate.Counter("http.web.downstream_rq_total"));
    }

    [Fact]
    public async Task Http10IsAcceptedWithTheDefaultHostAndAnsweredAsHttp10()
    {
        await using var upstream = RawUpstream.Serve(request => Ok("host=" + request.Header("host") + " " + request.RequestLine));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Hcm = "http_protocol_options: { accept_http_10: true, default_host_for_http_10: legacy.example }",
        });

        // Without keep-alive: answered in HTTP/1.0, then closed.
        await using (var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web")))
        {
            await client.WriteAsync("GET /old HTTP/1.0\r\n\r\n");
            var response = await client.ReadResponseAsync();
            Assert.Equal("HTTP/1.0 200 OK", response.StatusLine);
            Assert.Equal("host=legacy.example GET /old HTTP/1.1", response.BodyText);
            Assert.True(await client.WaitForCloseAsync());
        }

        // With keep-alive: the connection stays for the next request, and says so.
        await using (var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web")))
        {
            await client.WriteAsync("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            var first = await client.ReadResponseAsync();
            Assert.Equal("HTTP/1.0 200 OK", first.StatusLine);
            Assert.Equal("keep-alive", first.Header("connection"));
            await client.WriteAsync("GET /b HTTP/1.0\r\nHost: given\r\nConnection: keep-alive\r\n\r\n");
            Assert.Equal("host=given GET /b HTTP/1.1", (await client.ReadResponseAsync()).BodyText);
        }
    }

    [Fact]
    public async Task Http10IsRefusedWith426UnlessAccepted()
    {
        await using var upstream = RawUpstream.Serve(_ => Ok("never"));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /old HTTP/1.0\r\n\r\n");

        var response = await client.ReadResponseAsync();
        Assert.Equal(426, response.Status);
        Assert.True(await client.WaitForCloseAsync());
        Assert.Equal(0, upstream.ConnectionCount);
        var stream = await recorder.WaitForAsync(_ => true);
        Assert.Equal("low_version", stream.Details);
    }

    [Fact]
    public async Task ClientConnectionCloseEndsTheDownstreamConnectionButNotTheUpstreamOne()
    {
        var heads = Channel.CreateUnbounded<RawRequest>();
        await using var upstream = RawUpstream.Start(async connection =>
        {
            while (await connection.ReadRequestAsync() is { } request)
            {
                heads.Writer.TryWrite(request);
                await connection.WriteAsync(Ok("hi"));
            }
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));

        for (var i = 0; i < 2; i++)
        {
            await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
            await client.WriteAsync("GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
            var response = await client.ReadResponseAsync();
            Assert.Equal(200, response.Status);
            Assert.Equal("close", response.Header("connection"));
            Assert.True(await client.WaitForCloseAsync());
            var seen = await heads.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Null(seen.Header("connection"));
        }

        // Both requests went over the one pooled upstream connection.
        Assert.Equal(1, upstream.ConnectionCount);
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_total"));
    }

    [Fact]
    public async Task UpstreamConnectionCloseIsNotForwardedAndTheUpstreamConnectionIsNotReused()
    {
        await using var upstream = RawUpstream.Start(async connection =>
        {
            if (await connection.ReadRequestAsync() is not null)
            {
                await connection.WriteAsync(Ok("closing", "connection: close\r\n"));
            }
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        for (var i = 0; i < 3; i++)
        {
            await client.WriteAsync("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
            var response = await client.ReadResponseAsync();
            Assert.Equal("closing", response.BodyText);
            Assert.Null(response.Header("connection"));
        }

        Assert.Equal(3, upstream.ConnectionCount);
        Assert.Equal(3, legate.Counter("cluster.backend.upstream_cx_total"));
        Assert.Equal(1, legate.Counter("http.web.downstream_cx_total"));
    }

    [Fact]
    public async Task UpstreamMaxRequestsPerConnectionOpensANewConnectionAfterTheLimit()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Cluster = Http1Options + "\n    common_http_protocol_options: { max_requests_per_connection: 2 }\n    explicit_http_config: { http_protocol_options: {} }",
        });
        using var client = TestHttp.CreateClient();

        for (var i = 0; i < 5; i++)
        {
            using var response = await client.GetAsync(legate.ListenerUri("web", "/m"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var connections = upstream.Log.Requests.Select(r => r.ConnectionId).ToList();
        Assert.Equal(3, connections.Distinct().Count());
        Assert.Equal(connections[0], connections[1]);
        Assert.Equal(connections[2], connections[3]);
        Assert.Equal(3, legate.Counter("cluster.backend.upstream_cx_total"));
        Assert.Equal(2, legate.Counter("cluster.backend.upstream_cx_max_requests"));
    }

    [Fact]
    public async Task DownstreamMaxRequestsPerConnectionClosesAfterTheLimit()
    {
        await using var upstream = RawUpstream.Serve(_ => Ok("ok"));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Hcm = "common_http_protocol_options: { max_requests_per_connection: 2 }",
        });
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Null((await client.ReadResponseAsync()).Header("connection"));
        await client.WriteAsync("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
        var second = await client.ReadResponseAsync();
        Assert.Equal(200, second.Status);
        Assert.Equal("close", second.Header("connection"));
        Assert.True(await client.WaitForCloseAsync());
        Assert.Equal(1, legate.Counter("http.web.downstream_cx_max_requests_reached"));
    }

    [Fact]
    public async Task UpstreamIdleTimeoutClosesThePooledConnection()
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            try
            {
                while (await connection.ReadRequestAsync() is not null)
                {
                    await connection.WriteAsync(Ok("ok"));
                }
            }
            finally
            {
                // EOF or a reset: either way the proxy closed it.
                closed.TrySetResult();
            }
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Cluster = Http1Options + "\n    common_http_protocol_options: { idle_timeout: 0.3s }\n    explicit_http_config: { http_protocol_options: {} }",
        });

        using (var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/i")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Nobody uses the pooled connection: the proxy closes it on its own.
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_cx_idle_timeout") == 1, "upstream_cx_idle_timeout");
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("cluster.backend.upstream_cx_active") == 0, "no active upstream connection");

        using (var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/j")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(2, upstream.ConnectionCount);
    }

    [Fact]
    public async Task DownstreamIdleTimeoutClosesAnIdleConnection()
    {
        await using var upstream = RawUpstream.Serve(_ => Ok("ok"));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Hcm = "common_http_protocol_options: { idle_timeout: 0.3s }",
        });
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal(200, (await client.ReadResponseAsync()).Status);

        Assert.True(await client.WaitForCloseAsync());
        Assert.Equal(1, legate.Counter("http.web.downstream_cx_idle_timeout"));
    }

    [Fact]
    public async Task ChunkedRequestBodyIsStreamedToTheUpstreamPieceByPiece()
    {
        var received = Channel.CreateUnbounded<string>();
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var request = RawRequest.ParseHead((await connection.ReadHeadAsync())!);
            Assert.Equal("chunked", request.Header("transfer-encoding"));
            var all = new StringBuilder();
            while (true)
            {
                var size = int.Parse((await connection.ReadLineAsync())!, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (size == 0)
                {
                    await connection.ReadLineAsync();
                    break;
                }

                var piece = Encoding.ASCII.GetString(await connection.ReadExactlyAsync(size));
                await connection.ReadLineAsync();
                all.Append(piece);
                received.Writer.TryWrite(piece);
            }

            await connection.WriteAsync(Ok(all.ToString()));
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");

        // The upstream has the first piece while the request is still open.
        Assert.Equal("hello", await received.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        await client.WriteAsync("6\r\n world\r\n0\r\n\r\n");
        Assert.Equal(" world", await received.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal("hello world", (await client.ReadResponseAsync()).BodyText);
    }

    [Fact]
    public async Task ChunkedResponseBodyIsStreamedToTheClientPieceByPiece()
    {
        var next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            await connection.ReadRequestAsync();
            await connection.WriteAsync("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n");
            await next.Task;
            await connection.WriteAsync("6\r\nsecond\r\n0\r\n\r\n");
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /down HTTP/1.1\r\nHost: a\r\n\r\n");
        var head = RawResponse.ParseHead((await client.ReadHeadAsync())!);
        Assert.Equal("chunked", head.Header("transfer-encoding"));
        Assert.Equal("5", await client.ReadLineAsync());
        Assert.Equal("first", Encoding.ASCII.GetString(await client.ReadExactlyAsync(5)));
        Assert.Equal("", await client.ReadLineAsync());
        next.SetResult();
        var (rest, _, _) = await client.ReadChunkedAsync();
        Assert.Equal("second", Encoding.ASCII.GetString(rest));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task LargeBodiesGoBothWaysIntact(bool contentLength)
    {
        const long size = 64L * 1024 * 1024;
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Sized(size))
            .OnPath("/upload", UpstreamResponse.Custom(
                async context =>
                {
                    using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    var buffer = new byte[64 * 1024];
                    long total = 0;
                    int read;
                    while ((read = await context.Request.Body.ReadAsync(buffer)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                        total += read;
                    }

                    await context.Response.WriteAsync(total.ToString(CultureInfo.InvariantCulture) + " " + Convert.ToHexString(hash.GetHashAndReset()));
                },
                bufferRequestBody: false)));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Route = "timeout: 0s" });
        using var client = TestHttp.CreateClient();
        var expected = GeneratedHash(size);

        using var upload = await client.PostAsync(legate.ListenerUri("web", "/upload"), new GeneratedContent(size, contentLength));
        Assert.Equal(HttpStatusCode.OK, upload.StatusCode);
        Assert.Equal(size.ToString(CultureInfo.InvariantCulture) + " " + expected, await upload.Content.ReadAsStringAsync());

        using var download = await client.GetAsync(legate.ListenerUri("web", "/download"), HttpCompletionOption.ResponseHeadersRead);
        await using var body = await download.Content.ReadAsStreamAsync();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long total = 0;
        int read;
        while ((read = await body.ReadAsync(buffer)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            total += read;
        }

        Assert.Equal(size, total);
        Assert.Equal(expected, Convert.ToHexString(hash.GetHashAndReset()));
    }

    [Fact]
    public async Task ResponseTrailersReachTheClientOnlyWithEnableTrailersOnBothSides()
    {
        await using var upstream = RawUpstream.Serve(_ =>
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\nx-checksum: abc\r\nx-other: 2\r\n\r\n");
        // Envoy parses HTTP/1.1 trailers only with enable_trailers: the cluster's to read them, the HCM's to write them.
        const string clusterTrailers = Http1Options + "\n    explicit_http_config: { http_protocol_options: { enable_trailers: true } }";
        await using var with = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = "http_protocol_options: { enable_trailers: true }", Cluster = clusterTrailers });
        await using var without = await StartAsync(new ProxyConfig(upstream.Port) { Cluster = clusterTrailers });

        var trailing = await GetRawAsync(with, "GET /t HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n");
        Assert.Equal("body", trailing.BodyText);
        Assert.Equal(["x-checksum: abc", "x-other: 2"], trailing.Trailers);

        var plain = await GetRawAsync(without, "GET /t HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n");
        Assert.Equal("body", plain.BodyText);
        Assert.Empty(plain.Trailers);
    }

    [Fact]
    public async Task RequestTrailersReachTheUpstreamWithEnableTrailersOnBothSides()
    {
        var seen = new TaskCompletionSource<RawRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var request = (await connection.ReadRequestAsync())!;
            seen.TrySetResult(request);
            await connection.WriteAsync(Ok("ok"));
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Hcm = "http_protocol_options: { enable_trailers: true }",
            Cluster = Http1Options + "\n    explicit_http_config: { http_protocol_options: { enable_trailers: true } }",
        });

        var response = await GetRawAsync(legate, "POST /rt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-request-trailer: yes\r\n\r\n");

        Assert.Equal(200, response.Status);
        var request = await seen.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("abc", request.BodyText);
        Assert.Equal(["x-request-trailer: yes"], request.Trailers);
    }

    [Fact]
    public async Task Expect100ContinueIsAnsweredByTheProxyAndNotForwarded()
    {
        var seen = new TaskCompletionSource<RawRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var request = (await connection.ReadRequestAsync())!;
            seen.TrySetResult(request);
            await connection.WriteAsync(Ok("got " + request.BodyText));
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");

        // The interim answer comes before the body is sent.
        Assert.Equal("HTTP/1.1 100 Continue\r\n\r\n", await client.ReadHeadAsync());
        await client.WriteAsync("hello");
        var response = await client.ReadResponseAsync();
        Assert.Equal(200, response.Status);
        Assert.Equal("got hello", response.BodyText);
        var request = await seen.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Null(request.Header("expect"));
    }

    [Fact]
    public async Task HeadResponseKeepsItsLengthButHasNoBody()
    {
        await using var upstream = RawUpstream.Serve(request => request.Method == "HEAD"
            ? "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"
            : Ok("after head"));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n");
        var head = await client.ReadResponseAsync(noBody: true);
        Assert.Equal(200, head.Status);
        Assert.Equal("1000", head.Header("content-length"));

        // No stray body bytes: the next response on the connection parses cleanly.
        await client.WriteAsync("GET /g HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal("after head", (await client.ReadResponseAsync()).BodyText);
    }

    [Theory]
    [InlineData("HTTP/1.1 204 No Content\r\n\r\n", 204)]
    [InlineData("HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\ncontent-length: 1234\r\n\r\n", 304)]
    [InlineData("HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n", 304)]
    public async Task BodilessStatusesHaveNoBodyAndKeepTheConnection(string upstreamResponse, int status)
    {
        await using var upstream = RawUpstream.Serve(request => request.Target == "/next" ? Ok("next") : upstreamResponse);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /nb HTTP/1.1\r\nHost: a\r\n\r\n");
        var response = await client.ReadResponseAsync();
        Assert.Equal(status, response.Status);
        Assert.Null(response.Header("transfer-encoding"));
        Assert.Empty(response.Body);

        await client.WriteAsync("GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal("next", (await client.ReadResponseAsync()).BodyText);
        Assert.Equal(1, upstream.ConnectionCount);
    }

    private static async Task<RawResponse> GetRawAsync(InProcessLegate legate, string request)
    {
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        await client.WriteAsync(request);
        return await client.ReadResponseAsync();
    }

    private static string GeneratedHash(long size)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        for (long offset = 0; offset < size; offset += buffer.Length)
        {
            var n = (int)Math.Min(buffer.Length, size - offset);
            UpstreamResponse.FillGenerated(buffer.AsSpan(0, n), offset);
            hash.AppendData(buffer, 0, n);
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>A request body of <see cref="UpstreamResponse.GeneratedBody"/> bytes, produced as it is sent.</summary>
    internal sealed class GeneratedContent(long size, bool announceLength) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            var buffer = new byte[64 * 1024];
            for (long offset = 0; offset < size; offset += buffer.Length)
            {
                var n = (int)Math.Min(buffer.Length, size - offset);
                UpstreamResponse.FillGenerated(buffer.AsSpan(0, n), offset);
                await stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = size;
            return announceLength;
        }
    }
}
