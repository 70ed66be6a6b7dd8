using System.Buffers.Binary;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Legate.Tests.Harness;
using Microsoft.AspNetCore.Http;

namespace Legate.Tests.Router;

/// <summary>
/// Upstream HTTP/2 (h2c prior knowledge) end to end, gRPC first: an h2c client → Legate → a
/// Kestrel upstream speaking gRPC framing (1 byte compressed flag, 4-byte big-endian length,
/// payload; <c>application/grpc</c>; <c>grpc-status</c> in the trailers). Streaming tests gate
/// each step on the other side having seen the previous one, so they prove that both directions
/// stream rather than buffer, without sleeping.
/// </summary>
public sealed class Http2UpstreamTests
{
    private const string Explicit = """
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config:
                  http2_protocol_options: {}
        """;

    private const string UseDownstream = """
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                use_downstream_protocol_config:
                  http2_protocol_options: {}
        """;

    private const string Legacy = """
            http2_protocol_options: {}
        """;

    private static string Config(int upstreamPort, string codec = "AUTO", string protocol = Explicit, string timeout = "15s") => TestConfigs.Admin() + $$"""
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
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: backend, timeout: {{timeout}} }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: backend
            connect_timeout: 2s
        {{protocol}}
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstreamPort.ToString(CultureInfo.InvariantCulture)}} } } }
        """;

    [Theory]
    [InlineData("HTTP2", Explicit)]
    [InlineData("AUTO", Legacy)]
    [InlineData("AUTO", UseDownstream)]
    public async Task UnaryCallGetsItsReplyAndGrpcStatusInTrailers(string codec, string protocol)
    {
        await using var upstream = await StartGrpcUpstreamAsync(async context =>
        {
            var request = await ReadMessageAsync(context.Request.Body);
            Assert.Null(await ReadMessageAsync(context.Request.Body));
            StartGrpcResponse(context);
            await WriteMessageAsync(context.Response, Encoding.UTF8.GetBytes("hello " + Encoding.UTF8.GetString(request!)));
            context.Response.AppendTrailer("grpc-status", "0");
            context.Response.AppendTrailer("x-trailer", "kept");
        });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, codec, protocol));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        using var request = GrpcRequest(legate, "/test.Greeter/SayHello", new ByteArrayContent(Frame("world")));

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.Contains("x-envoy-upstream-service-time"));
        var body = await response.Content.ReadAsStreamAsync();
        Assert.Equal("hello world", Text(await ReadMessageAsync(body)));
        Assert.Null(await ReadMessageAsync(body));
        Assert.Equal("0", Assert.Single(response.TrailingHeaders.GetValues("grpc-status")));
        Assert.Equal("kept", Assert.Single(response.TrailingHeaders.GetValues("x-trailer")));

        var seen = Assert.Single(upstream.Log.Requests);
        Assert.Equal("HTTP/2", seen.Protocol);
        Assert.Equal("POST", seen.Method);
        Assert.Equal("/test.Greeter/SayHello", seen.RawTarget);
        Assert.Equal("trailers", seen.Header("te"));
        Assert.Equal("application/grpc", seen.Header("content-type"));
        Assert.Equal(Legate.Network.SocketAddresses.Format(legate.ListenerEndpoint("web")), seen.Header("host"));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_cx_http2_total"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_cx_http1_total"));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_total"));
        await WaitUntilAsync(() => Counter(legate, "cluster.backend.upstream_rq_completed") == 1);
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_2xx"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.upstream_rq_active"));
    }

    [Fact]
    public async Task ServerStreamingMessagesArriveOneByOneBeforeTheEnd()
    {
        var next = new SemaphoreSlim(0);
        await using var upstream = await StartGrpcUpstreamAsync(async context =>
        {
            var count = int.Parse(Text(await ReadMessageAsync(context.Request.Body)), CultureInfo.InvariantCulture);
            StartGrpcResponse(context);
            await context.Response.BodyWriter.FlushAsync();
            for (var i = 0; i < count; i++)
            {
                await WriteMessageAsync(context.Response, Encoding.UTF8.GetBytes("message " + i.ToString(CultureInfo.InvariantCulture)));

                // The next message goes only once the client has read this one through the proxy.
                await next.WaitAsync(context.RequestAborted);
            }

            context.Response.AppendTrailer("grpc-status", "0");
        });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        using var request = GrpcRequest(legate, "/test.Stream/Server", new ByteArrayContent(Frame("3")));

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var body = await response.Content.ReadAsStreamAsync();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("message " + i.ToString(CultureInfo.InvariantCulture), Text(await ReadMessageAsync(body)));
            next.Release();
        }

        Assert.Null(await ReadMessageAsync(body));
        Assert.Equal("0", Assert.Single(response.TrailingHeaders.GetValues("grpc-status")));
    }

    [Fact]
    public async Task ClientStreamingMessagesReachTheUpstreamBeforeTheRequestEnds()
    {
        var received = Channel.CreateUnbounded<string>();
        await using var upstream = await StartGrpcUpstreamAsync(async context =>
        {
            var all = new List<string>();
            while (await ReadMessageAsync(context.Request.Body) is { } message)
            {
                all.Add(Text(message));
                await received.Writer.WriteAsync(Text(message));
            }

            StartGrpcResponse(context);
            await WriteMessageAsync(context.Response, Encoding.UTF8.GetBytes(string.Join(",", all)));
            context.Response.AppendTrailer("grpc-status", "0");
        });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        var content = new PushContent();
        using var request = GrpcRequest(legate, "/test.Stream/Client", content);

        var call = client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        foreach (var word in new[] { "one", "two", "three" })
        {
            await content.SendAsync(Frame(word));

            // The upstream has this message while the request is still open.
            Assert.Equal(word, await received.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        content.Complete();
        using var response = await call;
        var body = await response.Content.ReadAsStreamAsync();
        Assert.Equal("one,two,three", Text(await ReadMessageAsync(body)));
        Assert.Null(await ReadMessageAsync(body));
        Assert.Equal("0", Assert.Single(response.TrailingHeaders.GetValues("grpc-status")));
    }

    [Fact]
    public async Task BidirectionalStreamingRepliesInterleaveWithRequests()
    {
        await using var upstream = await StartGrpcUpstreamAsync(async context =>
        {
            StartGrpcResponse(context);
            await context.Response.BodyWriter.FlushAsync();
            while (await ReadMessageAsync(context.Request.Body) is { } message)
            {
                await WriteMessageAsync(context.Response, Encoding.UTF8.GetBytes("echo " + Text(message)));
            }

            context.Response.AppendTrailer("grpc-status", "0");
            context.Response.AppendTrailer("grpc-message", "done");
        });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);

        // Twice: the second call is a new stream on the open upstream connection, where the request
        // HEADERS go out only if the proxy flushes them before it has a message to send.
        for (var call = 0; call < 2; call++)
        {
            var content = new PushContent();
            using var request = GrpcRequest(legate, "/test.Stream/Bidi", content);

            // Response headers come before any request message: the call is open both ways.
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var body = await response.Content.ReadAsStreamAsync();
            await content.SendAsync(Frame("a"));
            Assert.Equal("echo a", Text(await ReadMessageAsync(body)));
            await content.SendAsync(Frame("b"));
            Assert.Equal("echo b", Text(await ReadMessageAsync(body)));
            content.Complete();
            Assert.Null(await ReadMessageAsync(body));
            Assert.Equal("0", Assert.Single(response.TrailingHeaders.GetValues("grpc-status")));
            Assert.Equal("done", Assert.Single(response.TrailingHeaders.GetValues("grpc-message")));
        }

        Assert.Single(upstream.Log.Requests.Select(r => r.ConnectionId).Distinct());
    }

    [Fact]
    public async Task TrailersOnlyErrorKeepsGrpcStatusAndMessage()
    {
        await using var upstream = await StartGrpcUpstreamAsync(context =>
        {
            // No body, no trailers: Kestrel sends one HEADERS frame with END_STREAM (gRPC's trailers-only).
            StartGrpcResponse(context);
            context.Response.Headers["grpc-status"] = "5";
            context.Response.Headers["grpc-message"] = "no such thing";
            return Task.CompletedTask;
        });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        using var request = GrpcRequest(legate, "/test.Greeter/Missing", new ByteArrayContent(Frame("x")));

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("5", Assert.Single(response.Headers.GetValues("grpc-status")));
        Assert.Equal("no such thing", Assert.Single(response.Headers.GetValues("grpc-message")));
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.Empty(response.TrailingHeaders);

        // On the wire: the downstream response is a single HEADERS frame with END_STREAM too.
        var frames = await RawH2RequestAsync(legate.ListenerEndpoint("web"), "/test.Greeter/Missing");
        var (type, flags) = Assert.Single(frames);
        Assert.Equal(1, type);
        Assert.Equal(0x1 | 0x4, flags & (0x1 | 0x4));
    }

    private static void AssertGrpcLocalReply(HttpResponseMessage response, string grpcStatus, string grpcMessage)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(grpcStatus, Assert.Single(response.Headers.GetValues("grpc-status")));
        Assert.Equal(grpcMessage, Assert.Single(response.Headers.GetValues("grpc-message")));
        // Kestrel's HTTP/2 codec adds content-length: 0 to a body-less response where Envoy sends none.
        Assert.Empty(response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult());
    }

    [Fact]
    public async Task PlainHttp2RequestGetsThePlainLocalReply()
    {
        using var closedPortRefusing = FreePort.Refusing();
        var closedPort = closedPortRefusing.Port;
        await using var legate = await InProcessLegate.StartAsync(Config(closedPort, "HTTP2"));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);

        using var response = await client.GetAsync(legate.ListenerUri("web", "/plain"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("upstream connect error or disconnect/reset before headers. reset reason: connection failure", await response.Content.ReadAsStringAsync());
        Assert.False(response.Headers.Contains("grpc-status"));
    }

    [Fact]
    public async Task ConnectFailureIs503WithUf()
    {
        using var closedPortRefusing = FreePort.Refusing();
        var closedPort = closedPortRefusing.Port;
        await using var legate = await InProcessLegate.StartAsync(Config(closedPort, "HTTP2"));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        using var request = GrpcRequest(legate, "/test.Greeter/SayHello", new ByteArrayContent(Frame("x")));

        using var response = await client.SendAsync(request);

        // A gRPC request's local reply is a trailers-only response (as Envoy): 200, grpc-status 14
        // (UNAVAILABLE, from 503) and the reply body as grpc-message.
        AssertGrpcLocalReply(response, "14", "upstream connect error or disconnect/reset before headers. reset reason: connection failure");
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_cx_connect_fail"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_cx_http2_total"));
        await WaitUntilAsync(() => Gauge(legate, "cluster.backend.upstream_rq_active") == 0);
    }

    [Fact]
    public async Task UpstreamResetBeforeHeadersIs503WithUr()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Close(), UpstreamProtocols.Http2);
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        using var request = GrpcRequest(legate, "/reset", new ByteArrayContent(Frame("x")));

        using var response = await client.SendAsync(request);

        AssertGrpcLocalReply(response, "14", "upstream connect error or disconnect/reset before headers. reset reason: remote reset");
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_rx_reset"));
    }

    [Fact]
    public async Task RouteTimeoutIs504WithUt()
    {
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("late") with { HoldUntil = never.Task }, UpstreamProtocols.Http2);
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2", timeout: "0.2s"));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/slow")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream request timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_timeout"));

        // The upstream stream was cancelled (RST_STREAM), so the upstream sees its request aborted.
        await WaitUntilAsync(() => upstream.Log.ActiveRequests == 0);
    }

    [Fact]
    public async Task DownstreamResetCancelsTheUpstreamStream()
    {
        await using var upstream = await StartGrpcUpstreamAsync(async context =>
        {
            StartGrpcResponse(context);
            await WriteMessageAsync(context.Response, "first"u8.ToArray());
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
        });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        using var cancel = new CancellationTokenSource();
        using var request = GrpcRequest(legate, "/test.Stream/Forever", new ByteArrayContent(Frame("x")));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var body = await response.Content.ReadAsStreamAsync();
        Assert.Equal("first", Text(await ReadMessageAsync(body)));

        // Disposing the response mid-body resets the downstream stream (RST_STREAM CANCEL).
        response.Dispose();

        await WaitUntilAsync(() => upstream.Log.ActiveRequests == 0);
        await WaitUntilAsync(() => Gauge(legate, "cluster.backend.upstream_rq_active") == 0);
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_tx_reset"));
    }

    [Fact]
    public async Task Http1DownstreamGoesUpstreamAsHttp2WithTargetAndBody()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo().WithHeader("x-from-upstream", "yes"), UpstreamProtocols.Http2);
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP1"));
        using var client = TestHttp.CreateClient(HttpVersion.Version11);
        using var request = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("web", "/a%2Fb/c?x=1&y=%20"))
        {
            Content = new StringContent("payload over h2", Encoding.UTF8, "text/plain"),
        };
        request.Headers.Host = "service.example";
        request.Headers.Add("x-custom", "one");

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal("yes", Assert.Single(response.Headers.GetValues("x-from-upstream")));
        var echoed = await EchoedRequest.ReadAsync(response);
        Assert.Equal("HTTP/2", echoed.Protocol);
        Assert.Equal("POST", echoed.Method);
        Assert.Equal("/a%2Fb/c?x=1&y=%20", echoed.Target);
        Assert.Equal("service.example", echoed.Header("host"));
        Assert.Equal("one", echoed.Header("x-custom"));
        Assert.Equal("text/plain; charset=utf-8", echoed.Header("content-type"));
        Assert.Equal("payload over h2", echoed.Body);
        Assert.Null(echoed.Header("transfer-encoding"));
        Assert.Null(echoed.Header("connection"));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_cx_http2_total"));
    }

    [Fact]
    public async Task UseDownstreamProtocolKeepsHttp1ForAnHttp1Client()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo(), UpstreamProtocols.Http1);
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "AUTO", UseDownstream));
        using var client = TestHttp.CreateClient(HttpVersion.Version11);

        using var response = await client.GetAsync(legate.ListenerUri("web", "/plain"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("HTTP/1.1", (await EchoedRequest.ReadAsync(response)).Protocol);
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_cx_http1_total"));
        Assert.DoesNotContain(legate.Logs.Lines, line => line.Contains("not implemented yet; requests go upstream as HTTP/1.1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LargeBodiesStreamBothWaysByteForByte()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo(), UpstreamProtocols.Http2);
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "HTTP2"));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        var body = UpstreamResponse.GeneratedBody((3 * 1024 * 1024) + 17);
        var content = new PushContent();
        using var request = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("web", "/big"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };

        var call = client.SendAsync(request);
        for (var offset = 0; offset < body.Length; offset += 64 * 1024)
        {
            await content.SendAsync(body[offset..Math.Min(body.Length, offset + (64 * 1024))]);
        }

        content.Complete();
        using var response = await call;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echoed = await EchoedRequest.ReadAsync(response);
        Assert.Equal("HTTP/2", echoed.Protocol);
        Assert.True(body.AsSpan().SequenceEqual(echoed.BodyBytes), $"body differs: sent {body.Length} bytes, upstream got {echoed.BodyBytes.Length}");
        Assert.True(Counter(legate, "cluster.backend.upstream_cx_tx_bytes_total") > body.Length);
        Assert.True(Counter(legate, "cluster.backend.upstream_cx_rx_bytes_total") > body.Length);
    }

    [Fact]
    public async Task Http2SettingsTheClientCannotApplyAreWarnedAbout()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"), UpstreamProtocols.Http2);
        const string Options = """
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config:
                  http2_protocol_options: { max_concurrent_streams: 10, initial_stream_window_size: 1048576, initial_connection_window_size: 2097152, hpack_table_size: 65536 }
        """;
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "AUTO", Options));

        Assert.Contains(legate.Logs.Lines, line => line.Contains("http2_protocol_options.initial_connection_window_size", StringComparison.Ordinal));
        Assert.Contains(legate.Logs.Lines, line => line.Contains("http2_protocol_options.hpack_table_size", StringComparison.Ordinal));
        Assert.DoesNotContain(legate.Logs.Lines, line => line.Contains("initial_stream_window_size", StringComparison.Ordinal));
        Assert.DoesNotContain(legate.Logs.Lines, line => line.Contains("max_concurrent_streams", StringComparison.Ordinal));
        using var client = TestHttp.CreateClient(HttpVersion.Version11);
        using var response = await client.GetAsync(legate.ListenerUri("web", "/ok"));
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
        Assert.Equal("HTTP/2", Assert.Single(upstream.Log.Requests).Protocol);
    }

    [Fact]
    public async Task MaxConcurrentStreamsCapsTheStreamsOfEachUpstreamConnection()
    {
        // The upstream (Kestrel) allows 100 streams per connection; the cluster allows 2: four requests
        // held at once use two connections of two streams each, as Envoy's pool would. A first request
        // opens the connection and comes back first: until the upstream's SETTINGS arrive (they come
        // before its first response on the connection), .NET's client assumes 100 streams, so a burst
        // at the very start of a connection can exceed the limit.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(
            new UpstreamScript(UpstreamResponse.Text("ok") with { HoldUntil = gate.Task }).OnPath("/warm", UpstreamResponse.Text("warm")),
            UpstreamProtocols.Http2);
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "AUTO", "    http2_protocol_options: { max_concurrent_streams: 2 }"));
        using var client = TestHttp.CreateClient(HttpVersion.Version11);
        Assert.Equal("warm", await client.GetStringAsync(legate.ListenerUri("web", "/warm")));
        upstream.Log.Clear();

        var requests = Enumerable.Range(0, 4).Select(i => client.GetAsync(legate.ListenerUri("web", "/held/" + i.ToString(CultureInfo.InvariantCulture)))).ToArray();
        var seen = await upstream.Log.WaitForRequestsAsync(4);
        Assert.Equal(4, upstream.Log.ActiveRequests);
        Assert.All(seen.GroupBy(r => r.ConnectionId), connection => Assert.Equal(2, connection.Count()));
        Assert.Equal(2, seen.Select(r => r.ConnectionId).Distinct().Count());
        Assert.Equal(2, Counter(legate, "cluster.backend.upstream_cx_http2_total"));

        gate.SetResult();
        foreach (var response in await Task.WhenAll(requests))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("ok", await response.Content.ReadAsStringAsync());
            response.Dispose();
        }
    }

    [Theory]
    [InlineData("hpack_table_size: 0", 0u)]
    [InlineData("hpack_table_size: 1024", 1024u)]
    public async Task HpackTableSizeIsAnnouncedInTheClientsSettings(string option, uint expected)
    {
        // A raw upstream reads the client's connection preface and its SETTINGS, then hangs up.
        var settings = new TaskCompletionSource<Dictionary<ushort, uint>>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            Assert.Equal("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray(), await connection.ReadExactlyAsync(24));
            var header = await connection.ReadExactlyAsync(9);
            Assert.Equal(0x4, header[3]);
            var payload = await connection.ReadExactlyAsync((header[0] << 16) | (header[1] << 8) | header[2]);
            var entries = new Dictionary<ushort, uint>();
            for (var i = 0; i + 6 <= payload.Length; i += 6)
            {
                entries[BinaryPrimitives.ReadUInt16BigEndian(payload.AsSpan(i))] = BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i + 2));
            }

            settings.TrySetResult(entries);
        });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "AUTO", "    http2_protocol_options: { " + option + " }"));
        using var client = TestHttp.CreateClient(HttpVersion.Version11);
        using var response = await client.GetAsync(legate.ListenerUri("web", "/"));

        var sent = await settings.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(expected, sent[0x1]);
        Assert.DoesNotContain(legate.Logs.Lines, line => line.Contains("hpack_table_size", StringComparison.Ordinal));
    }

    // ------------------------------------------------------------------ helpers

    private static Task<ScriptedUpstream> StartGrpcUpstreamAsync(Func<HttpContext, Task> handler) =>
        ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Custom(handler, bufferRequestBody: false)), UpstreamProtocols.Http2);

    private static HttpRequestMessage GrpcRequest(InProcessLegate legate, string path, HttpContent content)
    {
        content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        var request = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("web", path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        return request;
    }

    private static void StartGrpcResponse(HttpContext context)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/grpc";
    }

    private static byte[] Frame(string message) => Frame(Encoding.UTF8.GetBytes(message));

    private static byte[] Frame(byte[] payload)
    {
        var framed = new byte[5 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(framed, 5);
        return framed;
    }

    private static async Task WriteMessageAsync(HttpResponse response, byte[] payload)
    {
        await response.BodyWriter.WriteAsync(Frame(payload));
        await response.BodyWriter.FlushAsync();
    }

    /// <summary>One gRPC message, or null at the end of the stream.</summary>
    private static async Task<byte[]?> ReadMessageAsync(Stream stream)
    {
        var header = new byte[5];
        var read = await stream.ReadAtLeastAsync(header, 5, throwOnEndOfStream: false).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        if (read == 0)
        {
            return null;
        }

        Assert.Equal(5, read);
        Assert.Equal(0, header[0]);
        var payload = new byte[BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1))];
        await stream.ReadExactlyAsync(payload).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        return payload;
    }

    private static string Text(byte[]? payload) => payload is null ? "(end of stream)" : Encoding.UTF8.GetString(payload);

    private static long Counter(InProcessLegate legate, string name) => legate.Server.Stats.Counter(name).Value;

    private static long Gauge(InProcessLegate legate, string name) => legate.Server.Stats.Gauge(name, Legate.Stats.ImportMode.Accumulate).Value;

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 30 s");
            await Task.Delay(10);
        }
    }

    /// <summary>
    /// A bare h2c exchange (preface, SETTINGS, one POST with an empty gRPC message): the type and
    /// flags of every frame of stream 1 until its END_STREAM, so a test can see the frame layout.
    /// </summary>
    private static async Task<List<(int Type, int Flags)>> RawH2RequestAsync(IPEndPoint endpoint, string path)
    {
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var output = new MemoryStream();
        output.Write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8);
        WriteFrame(output, type: 4, flags: 0, streamId: 0, []);
        var block = new MemoryStream();
        foreach (var (name, value) in new[] { (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "test"), ("content-type", "application/grpc"), ("te", "trailers") })
        {
            // Literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2).
            block.WriteByte(0);
            block.WriteByte((byte)name.Length);
            block.Write(Encoding.ASCII.GetBytes(name));
            block.WriteByte((byte)value.Length);
            block.Write(Encoding.ASCII.GetBytes(value));
        }

        WriteFrame(output, type: 1, flags: 0x4, streamId: 1, block.ToArray());
        WriteFrame(output, type: 0, flags: 0x1, streamId: 1, Frame([]));
        await stream.WriteAsync(output.ToArray());

        var frames = new List<(int Type, int Flags)>();
        var header = new byte[9];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            await stream.ReadExactlyAsync(header, timeout.Token);
            var length = (header[0] << 16) | (header[1] << 8) | header[2];
            var payload = new byte[length];
            await stream.ReadExactlyAsync(payload, timeout.Token);
            int type = header[3], flags = header[4];
            var streamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(5)) & 0x7FFFFFFF);
            if (type == 4 && (flags & 1) == 0)
            {
                await stream.WriteAsync(new byte[] { 0, 0, 0, 4, 1, 0, 0, 0, 0 }, timeout.Token);
            }

            if (streamId != 1)
            {
                continue;
            }

            frames.Add((type, flags));
            if ((flags & 1) != 0 && type is 0 or 1 || type == 3)
            {
                return frames;
            }
        }
    }

    private static void WriteFrame(Stream output, int type, int flags, int streamId, byte[] payload)
    {
        Span<byte> header = stackalloc byte[9];
        header[0] = (byte)(payload.Length >> 16);
        header[1] = (byte)(payload.Length >> 8);
        header[2] = (byte)payload.Length;
        header[3] = (byte)type;
        header[4] = (byte)flags;
        BinaryPrimitives.WriteUInt32BigEndian(header[5..], (uint)streamId);
        output.Write(header);
        output.Write(payload);
    }

    /// <summary>A request body the test writes message by message while the call is open.</summary>
    private sealed class PushContent : HttpContent
    {
        private readonly Pipe _pipe = new();

        public async Task SendAsync(byte[] bytes)
        {
            await _pipe.Writer.WriteAsync(bytes);
        }

        public void Complete() => _pipe.Writer.Complete();

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            var reader = _pipe.Reader;

            // As a gRPC client does: the request HEADERS go out now, not with the first message
            // (SocketsHttpHandler holds them back until a flush, dotnet/runtime#30295).
            await stream.FlushAsync(cancellationToken);
            while (true)
            {
                var result = await reader.ReadAsync(cancellationToken);
                foreach (var segment in result.Buffer)
                {
                    await stream.WriteAsync(segment, cancellationToken);
                }

                await stream.FlushAsync(cancellationToken);
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
