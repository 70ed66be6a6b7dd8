using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// Downstream HTTP/2 (h2c) end to end: HttpClient speaking HTTP/2 with prior knowledge to a Legate
/// listener (codec_type HTTP2 or AUTO) in front of a scripted HTTP/1.1 upstream.
/// </summary>
public sealed class Http2DownstreamTests
{
    private static string Config(int upstreamPort, string codec, string extraHcm = "") => TestConfigs.Admin() + $$"""
        static_resources:
          listeners:
          - name: web
            address:
              socket_address: { address: 127.0.0.1, port_value: 0 }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  codec_type: {{codec}}
                  {{extraHcm}}
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/direct" }
                        direct_response: { status: 201, body: { inline_string: "direct over h2\n" } }
                      - match: { prefix: "/up" }
                        route: { cluster: backend }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: backend
            connect_timeout: 1s
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstreamPort.ToString(CultureInfo.InvariantCulture)}} } } }
        """;

    [Theory]
    [InlineData("HTTP2")]
    [InlineData("AUTO")]
    public async Task GetIsProxiedToAnHttp1UpstreamWithTargetAndHeadersIntact(string codec)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo().WithHeader("x-from-upstream", "yes"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, codec));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/up/a%2Fb?x=1&y=%20"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Add("x-custom", "one");
        request.Headers.Add("x-custom", "two");
        request.Headers.Add("cookie", "a=1");

        using var response = await h2.SendAsync(request);

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("yes", Assert.Single(response.Headers.GetValues("x-from-upstream")));
        Assert.Equal("envoy", Assert.Single(response.Headers.GetValues("server")));
        var echoed = await EchoedRequest.ReadAsync(response);
        Assert.Equal("GET", echoed.Method);
        Assert.Equal("/up/a%2Fb?x=1&y=%20", echoed.Target);
        Assert.Equal("HTTP/1.1", echoed.Protocol);
        Assert.Equal(SocketAddressesOf(legate), echoed.Header("host"));
        Assert.Equal("one, two", echoed.Header("x-custom"));
        Assert.Equal("a=1", echoed.Header("cookie"));
        Assert.Equal("http", echoed.Header("x-forwarded-proto"));
        Assert.NotNull(echoed.Header("x-request-id"));

        // A request without a body (END_STREAM on HEADERS) goes upstream without framing headers.
        Assert.Null(echoed.Header("transfer-encoding"));
        Assert.Null(echoed.Header("content-length"));
        Assert.Equal(1, Counter(legate, "http.web.downstream_cx_http2_total"));
        Assert.Equal(1, Counter(legate, "http.web.downstream_rq_http2_total"));
        Assert.Equal(0, Counter(legate, "http.web.downstream_cx_http1_total"));
    }

    [Fact]
    public async Task LargeStreamedPostBodyArrivesUpstreamByteForByte()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);
        var body = UpstreamResponse.GeneratedBody(3 * 1024 * 1024 + 17);

        // Unknown length: the client streams DATA frames; the router sends it upstream chunked.
        using var content = new StreamContent(new NonSeekableStream(body));
        using var response = await h2.PostAsync(legate.ListenerUri("web", "/up/post"), content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echoed = await EchoedRequest.ReadAsync(response);
        Assert.Equal("POST", echoed.Method);
        Assert.Equal("chunked", echoed.Header("transfer-encoding"));
        Assert.True(body.AsSpan().SequenceEqual(echoed.BodyBytes), $"body differs: sent {body.Length} bytes, upstream got {echoed.BodyBytes.Length}");
    }

    [Fact]
    public async Task PostWithContentLengthKeepsIt()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        using var response = await h2.PostAsync(legate.ListenerUri("web", "/up/form"), new ByteArrayContent("a=1&b=2"u8.ToArray()));

        var echoed = await EchoedRequest.ReadAsync(response);
        Assert.Equal("7", echoed.Header("content-length"));
        Assert.Null(echoed.Header("transfer-encoding"));
        Assert.Equal("a=1&b=2", echoed.Body);
    }

    [Fact]
    public async Task LargeResponseBodyAndHeadersComeBackIntact()
    {
        const int size = 2 * 1024 * 1024 + 5;
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Sized(size).WithHeader("x-a", "1").WithHeader("x-b", "two words"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        using var response = await h2.GetAsync(legate.ListenerUri("web", "/up/big"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("1", Assert.Single(response.Headers.GetValues("x-a")));
        Assert.Equal("two words", Assert.Single(response.Headers.GetValues("x-b")));
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(size, bytes.Length);
        Assert.True(UpstreamResponse.GeneratedBody(size).AsSpan().SequenceEqual(bytes));
    }

    [Fact]
    public async Task ManyConcurrentStreamsShareOneConnection()
    {
        const int streams = 200;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo() with { HoldUntil = release.Task }));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        var requests = Enumerable.Range(0, streams).Select(i => h2.GetAsync(legate.ListenerUri("web", $"/up/{i}"))).ToArray();

        // All streams are open at once (the upstream holds every answer until all arrived).
        await upstream.Log.WaitForRequestsAsync(streams);
        release.SetResult();
        var responses = await Task.WhenAll(requests);
        for (var i = 0; i < streams; i++)
        {
            using var response = responses[i];
            Assert.Equal(HttpVersion.Version20, response.Version);
            Assert.Equal($"/up/{i}", (await EchoedRequest.ReadAsync(response)).Target);
        }

        Assert.Equal(1, Counter(legate, "http.web.downstream_cx_http2_total"));
        Assert.Equal(streams, Counter(legate, "http.web.downstream_rq_http2_total"));
    }

    [Fact]
    public async Task StreamsThatReuseAnEarlierStreamsObjectsCarryNothingOver()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        // Waves of concurrent streams on one connection: later streams run on the objects of
        // finished ones (the per-connection pool); headers, routes and status must be their own.
        for (var wave = 0; wave < 4; wave++)
        {
            var requests = Enumerable.Range(0, 12).Select(async i =>
            {
                var direct = i % 3 == 0;
                using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", direct ? "/direct" : $"/up/{wave}/{i}"))
                {
                    Version = HttpVersion.Version20,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                };
                if (i % 2 == 1)
                {
                    request.Headers.Add("x-odd", $"{wave}-{i}");
                }

                using var response = await h2.SendAsync(request);
                if (direct)
                {
                    Assert.Equal(HttpStatusCode.Created, response.StatusCode);
                    Assert.Equal("direct over h2\n", await response.Content.ReadAsStringAsync());
                    return;
                }

                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var echoed = await EchoedRequest.ReadAsync(response);
                Assert.Equal($"/up/{wave}/{i}", echoed.Target);
                Assert.Equal(i % 2 == 1 ? $"{wave}-{i}" : null, echoed.Header("x-odd"));
            }).ToArray();
            await Task.WhenAll(requests);
        }

        Assert.Equal(1, Counter(legate, "http.web.downstream_cx_http2_total"));
        Assert.Equal(48, Counter(legate, "http.web.downstream_rq_http2_total"));
        Assert.Equal(16, Counter(legate, "http.web.rq_direct_response"));
    }

    [Fact]
    public async Task MaxConcurrentStreamsIsAdvertisedToTheClient()
    {
        const int limit = 5;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("ok") with { HoldUntil = release.Task }));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2", "http2_protocol_options: { max_concurrent_streams: 5 }"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        var requests = Enumerable.Range(0, 4 * limit).Select(i => h2.GetAsync(legate.ListenerUri("web", $"/up/{i}"))).ToArray();

        // The client may open only `limit` streams; the rest wait for one to finish.
        await upstream.Log.WaitForRequestsAsync(limit);
        Assert.Equal(limit, upstream.Log.ActiveRequests);
        release.SetResult();
        foreach (var response in await Task.WhenAll(requests))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }

        Assert.Equal(limit, upstream.Log.MaxConcurrentRequests);
        Assert.Equal(1, Counter(legate, "http.web.downstream_cx_http2_total"));
    }

    /// <summary>
    /// <c>hpack_table_size</c> is the SETTINGS_HEADER_TABLE_SIZE the server advertises (how large a
    /// dynamic table the client's encoder may use); at the default 4096 it is not sent, as that is
    /// the protocol's default. Read from the server's first SETTINGS frame on a raw h2c connection.
    /// </summary>
    [Theory]
    [InlineData("http2_protocol_options: { hpack_table_size: 0 }", 0L)]
    [InlineData("http2_protocol_options: { hpack_table_size: 65536 }", 65536L)]
    [InlineData("", null)]
    public async Task HpackTableSizeIsAdvertised(string hcm, long? expected)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("unused"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2", hcm));
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(legate.ListenerEndpoint("web"));
        await using var stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await stream.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray(), timeout.Token);
        await stream.WriteAsync(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }, timeout.Token);

        // The server's first frame is its SETTINGS: 6-byte entries of a 16-bit id and a 32-bit value.
        var header = new byte[9];
        await stream.ReadExactlyAsync(header, timeout.Token);
        Assert.Equal(4, header[3]);
        var payload = new byte[(header[0] << 16) | (header[1] << 8) | header[2]];
        await stream.ReadExactlyAsync(payload, timeout.Token);
        long? advertised = null;
        for (var i = 0; i + 6 <= payload.Length; i += 6)
        {
            if (System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(payload.AsSpan(i)) == 1)
            {
                advertised = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i + 2));
            }
        }

        Assert.Equal(expected, advertised);
    }

    [Fact]
    public async Task DirectResponseAndNoRouteOverH2()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("unused"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        using var direct = await h2.GetAsync(legate.ListenerUri("web", "/direct"));
        using var none = await h2.PostAsync(legate.ListenerUri("web", "/nowhere"), new StringContent("ignored"));

        Assert.Equal(HttpStatusCode.Created, direct.StatusCode);
        Assert.Equal(HttpVersion.Version20, direct.Version);
        Assert.Equal("direct over h2\n", await direct.Content.ReadAsStringAsync());
        Assert.Equal("text/plain", direct.Content.Headers.ContentType?.ToString());
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
        Assert.Equal(HttpVersion.Version20, none.Version);
        Assert.Equal(string.Empty, await none.Content.ReadAsStringAsync());
        Assert.Equal(1, Counter(legate, "http.web.no_route"));
        Assert.Equal(1, Counter(legate, "http.web.rq_direct_response"));
        Assert.Empty(upstream.Log.Requests);
    }

    [Fact]
    public async Task AutoServesHttp1AndH2cOnOnePort()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "AUTO"));
        using var h1 = TestHttp.CreateClient(HttpVersion.Version11);
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        using var over1 = await h1.GetAsync(legate.ListenerUri("web", "/up/one"));
        using var over2 = await h2.GetAsync(legate.ListenerUri("web", "/up/two"));
        using var direct1 = await h1.GetAsync(legate.ListenerUri("web", "/direct"));

        Assert.Equal(HttpVersion.Version11, over1.Version);
        Assert.Equal(HttpVersion.Version20, over2.Version);
        Assert.Equal("/up/one", (await EchoedRequest.ReadAsync(over1)).Target);
        Assert.Equal("/up/two", (await EchoedRequest.ReadAsync(over2)).Target);
        Assert.Equal("direct over h2\n", await direct1.Content.ReadAsStringAsync());
        Assert.Equal(1, Counter(legate, "http.web.downstream_cx_http1_total"));
        Assert.Equal(1, Counter(legate, "http.web.downstream_cx_http2_total"));
        Assert.Equal(2, Counter(legate, "http.web.downstream_rq_http1_total"));
        Assert.Equal(1, Counter(legate, "http.web.downstream_rq_http2_total"));
    }

    [Fact]
    public async Task Http1CodecDoesNotSpeakH2()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP1"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        await Assert.ThrowsAsync<HttpRequestException>(() => h2.GetAsync(legate.ListenerUri("web", "/direct")));

        Assert.Equal(0, Counter(legate, "http.web.downstream_cx_http2_total"));
    }

    [Fact]
    public async Task ClientResetOfAnInFlightStreamIsADownstreamDisconnect()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("late") with { HoldUntil = release.Task }));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);
        using var cancel = new CancellationTokenSource();

        var request = h2.GetAsync(legate.ListenerUri("web", "/up/hold"), cancel.Token);
        await upstream.Log.WaitForRequestsAsync(1);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        await WaitUntilAsync(() => Counter(legate, "http.web.downstream_rq_rx_reset") == 1);
        release.SetResult();

        // The connection survives a stream reset.
        using var next = await h2.GetAsync(legate.ListenerUri("web", "/direct"));
        Assert.Equal(HttpStatusCode.Created, next.StatusCode);
        Assert.Equal(1, Counter(legate, "http.web.downstream_cx_http2_total"));
    }

    [Fact]
    public async Task StoppingTheListenerLetsTheInFlightStreamFinish()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("finished") with { HoldUntil = release.Task }));
        var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        var request = h2.GetAsync(legate.ListenerUri("web", "/up/slow"));
        await upstream.Log.WaitForRequestsAsync(1);
        var stop = legate.DisposeAsync().AsTask();
        Assert.False(stop.IsCompleted);
        release.SetResult();

        using var response = await request;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("finished", await response.Content.ReadAsStringAsync());
        await stop;
    }

    [H2loadFact]
    public async Task H2loadRunHasNoErrors()
    {
        var h2load = H2loadFactAttribute.Path!;

        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Sized(4096));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "AUTO"));
        const int total = 400;

        var (exit, output) = await RunAsync(h2load, "-n", total.ToString(CultureInfo.InvariantCulture), "-c", "4", "-m", "20", legate.ListenerUri("web", "/up/load").ToString());

        Assert.True(exit == 0, output);
        Assert.Contains($"requests: {total} total, {total} started, {total} done, {total} succeeded, 0 failed, 0 errored", output, StringComparison.Ordinal);
        Assert.Contains($"status codes: {total} 2xx", output, StringComparison.Ordinal);
        Assert.Equal(total, Counter(legate, "http.web.downstream_rq_http2_total"));
    }

    private static long Counter(InProcessLegate legate, string name) => legate.Server.Stats.Counter(name).Value;

    private static string SocketAddressesOf(InProcessLegate legate) => Legate.Network.SocketAddresses.Format(legate.ListenerEndpoint("web"));

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = Stopwatch.GetTimestamp() + (Stopwatch.Frequency * 30);
        while (!condition())
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, "condition not met within 30 s");
            await Task.Delay(10);
        }
    }

    private static async Task<(int Exit, string Output)> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>A body of unknown length (no Content-Length): HttpClient streams it.</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data, writable: false)
    {
        public override bool CanSeek => false;
    }
}

/// <summary>A test that runs nghttp2's h2load; reported as skipped (never passed) where it is not installed.</summary>
public sealed class H2loadFactAttribute : FactAttribute
{
    public H2loadFactAttribute()
    {
        if (Path is null)
        {
            Skip = "h2load is not installed";
        }
    }

    public static string? Path { get; } =
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(System.IO.Path.PathSeparator)
            .Select(dir => System.IO.Path.Combine(dir, "h2load")).FirstOrDefault(File.Exists);
}
