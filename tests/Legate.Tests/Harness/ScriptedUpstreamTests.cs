using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Legate.Tests.Extensions.Filters.Http;
using Microsoft.AspNetCore.Http;

namespace Legate.Tests.Harness;

/// <summary>The scripted upstream the data-path tests rely on, checked with real clients and raw sockets.</summary>
public sealed class ScriptedUpstreamTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task RulesAnswerWithTheirStatusHeadersAndBodyAndTheDefaultAnswersTheRest()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("fallback", 404))
            .OnPath("/made", UpstreamResponse.Text("created\n", 201).WithHeader("x-multi", "one").WithHeader("x-multi", "two"))
            .When(request => request.Method == "DELETE", UpstreamResponse.Bytes([1, 2, 3], 410));
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        using var http = TestHttp.CreateClient();

        using var made = await http.GetAsync(new Uri(upstream.Uri, "/made"));
        Assert.Equal(HttpStatusCode.Created, made.StatusCode);
        Assert.Equal(["one", "two"], made.Headers.GetValues("x-multi"));
        Assert.Equal("text/plain; charset=utf-8", made.Content.Headers.ContentType?.ToString());
        Assert.Equal(8, made.Content.Headers.ContentLength);
        Assert.Equal("created\n", await made.Content.ReadAsStringAsync());

        using var deleted = await http.DeleteAsync(new Uri(upstream.Uri, "/made/not"));
        Assert.Equal(HttpStatusCode.Gone, deleted.StatusCode);
        Assert.Equal([1, 2, 3], await deleted.Content.ReadAsByteArrayAsync());

        using var other = await http.GetAsync(new Uri(upstream.Uri, "/other"));
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.Equal("fallback", await other.Content.ReadAsStringAsync());

        using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri(upstream.Uri, "/made")));
        Assert.Equal(HttpStatusCode.Created, head.StatusCode);
        Assert.Equal(8, head.Content.Headers.ContentLength);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        Assert.False(other.Headers.Contains("server"));
        Assert.Empty(upstream.Log.ScriptErrors);
    }

    [Fact]
    public async Task RuleWithTimesAnswersThatManyRequestsThenFallsThrough()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("up"))
            .OnPrefix("/flaky", UpstreamResponse.Text("down", 503), times: 2);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        using var http = TestHttp.CreateClient();

        var statuses = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await http.GetAsync(new Uri(upstream.Uri, $"/flaky/{i}"));
            statuses.Add((int)response.StatusCode);
        }

        Assert.Equal([503, 503, 200, 200], statuses);

        // Rules can change while it runs.
        script.Default = UpstreamResponse.Text("later", 202);
        using var later = await http.GetAsync(new Uri(upstream.Uri, "/flaky"));
        Assert.Equal(HttpStatusCode.Accepted, later.StatusCode);
    }

    [Fact]
    public async Task SizedBodyIsTheGeneratedPatternOverHttp2()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Sized(200_000), UpstreamProtocols.Http2);
        using var http = TestHttp.CreateClient(HttpVersion.Version20);

        using var response = await http.GetAsync(upstream.Uri);

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(200_000, response.Content.Headers.ContentLength);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(UpstreamResponse.GeneratedBody(200_000), body);
        Assert.Equal("abcdefghijklmnopqrstuvwxyzab"u8.ToArray(), body[..28]);
    }

    [Fact]
    public async Task StreamedChunksArriveAsSeparateReadsWhenTheTestReleasesThem()
    {
        var second = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var response = UpstreamResponse.Text("first|second") with
        {
            Chunks = 2,
            ChunkGate = i => i == 0 ? Task.CompletedTask : second.Task,
        };
        await using var upstream = await ScriptedUpstream.StartAsync(response);
        using var http = TestHttp.CreateClient();

        using var answer = await http.GetAsync(upstream.Uri, HttpCompletionOption.ResponseHeadersRead);
        Assert.True(answer.Headers.TransferEncodingChunked);
        Assert.Null(answer.Content.Headers.ContentLength);
        await using var stream = await answer.Content.ReadAsStreamAsync();

        Assert.Equal("first|", await ReadExactlyAsync(stream, 6));
        var buffer = new byte[64];
        var next = stream.ReadAsync(buffer).AsTask();
        Assert.False(next.IsCompleted); // the second chunk is not written until the gate opens

        second.SetResult();
        var read = await next.WaitAsync(Timeout);
        Assert.Equal("second", Encoding.ASCII.GetString(buffer, 0, read));
        Assert.Equal(0, await stream.ReadAsync(buffer));
    }

    [Fact]
    public async Task DelayHoldsTheResponseUntilTheUpstreamClockHasAdvancedThatFar()
    {
        var clock = new ManualClock();
        var script = new UpstreamScript(UpstreamResponse.Text("late") with { Delay = TimeSpan.FromMinutes(5) });
        await using var upstream = await ScriptedUpstream.StartAsync(script, time: clock);
        using var http = TestHttp.CreateClient();

        var pending = http.GetAsync(upstream.Uri);
        var arrived = await upstream.Log.WaitForRequestsAsync(1, Timeout);
        await clock.WaitForTimersAsync(1).WaitAsync(Timeout);
        Assert.Equal(TimeSpan.Zero, arrived[0].ArrivedAt);

        clock.Advance(TimeSpan.FromMinutes(4));
        Assert.False(pending.IsCompleted);
        Assert.Equal(1, clock.ArmedTimers);

        clock.Advance(TimeSpan.FromMinutes(1));
        using var response = await pending.WaitAsync(Timeout);
        Assert.Equal("late", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ChunkDelayRunsOnTheUpstreamClockBetweenChunks()
    {
        var clock = new ManualClock();
        var script = new UpstreamScript(UpstreamResponse.Sized(10).Streamed(2, TimeSpan.FromSeconds(30)));
        await using var upstream = await ScriptedUpstream.StartAsync(script, UpstreamProtocols.Http2, clock);
        using var http = TestHttp.CreateClient(HttpVersion.Version20);

        using var answer = await http.GetAsync(upstream.Uri, HttpCompletionOption.ResponseHeadersRead);
        await using var stream = await answer.Content.ReadAsStreamAsync();
        Assert.Equal("abcde", await ReadExactlyAsync(stream, 5));
        await clock.WaitForTimersAsync(1).WaitAsync(Timeout);
        var buffer = new byte[64];
        var next = stream.ReadAsync(buffer).AsTask();
        Assert.False(next.IsCompleted);

        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal("fghij", Encoding.ASCII.GetString(buffer, 0, await next.WaitAsync(Timeout)));
    }

    [Fact]
    public async Task TrailersAreSentOverHttp2()
    {
        var response = UpstreamResponse.Text("payload").WithTrailer("grpc-status", "0").WithTrailer("grpc-message", "fine");
        await using var upstream = await ScriptedUpstream.StartAsync(response, UpstreamProtocols.Http2);
        using var http = TestHttp.CreateClient(HttpVersion.Version20);

        using var answer = await http.GetAsync(upstream.Uri);

        Assert.Equal("payload", await answer.Content.ReadAsStringAsync());
        Assert.Equal(["0"], answer.TrailingHeaders.GetValues("grpc-status"));
        Assert.Equal(["fine"], answer.TrailingHeaders.GetValues("grpc-message"));
    }

    [Fact]
    public async Task TrailersAskedOverHttp1FailTheScriptWithA500()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("payload").WithTrailer("grpc-status", "0"));
        using var http = TestHttp.CreateClient();

        using var answer = await http.GetAsync(upstream.Uri);

        Assert.Equal(HttpStatusCode.InternalServerError, answer.StatusCode);
        Assert.Contains("cannot send trailers over HTTP/1.1", await answer.Content.ReadAsStringAsync());
        var error = Assert.Single(upstream.Log.ScriptErrors);
        Assert.IsType<InvalidOperationException>(error);
    }

    [Fact]
    public async Task ResetMidBodyOverHttp1DeliversTheHeadAndTheBytesBeforeItThenFailsTheRead()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Sized(1000) with { ResetAfterBodyBytes = 100 });
        using var http = TestHttp.CreateClient();

        using var answer = await http.GetAsync(upstream.Uri, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(1000, answer.Content.Headers.ContentLength);
        await using var stream = await answer.Content.ReadAsStreamAsync();
        var received = new MemoryStream();

        await Assert.ThrowsAnyAsync<IOException>(() => stream.CopyToAsync(received).WaitAsync(Timeout));
        Assert.Equal(UpstreamResponse.GeneratedBody(100), received.ToArray());
    }

    [Fact]
    public async Task ResetMidBodyOverHttp2DeliversTheHeadThenResetsTheStream()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Sized(1000) with { ResetAfterBodyBytes = 100 }, UpstreamProtocols.Http2);
        using var http = TestHttp.CreateClient(HttpVersion.Version20);

        using var answer = await http.GetAsync(upstream.Uri, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(1000, answer.Content.Headers.ContentLength);
        await using var stream = await answer.Content.ReadAsStreamAsync();
        var received = new MemoryStream();

        var error = await Assert.ThrowsAsync<HttpProtocolException>(() => stream.CopyToAsync(received).WaitAsync(Timeout));
        Assert.Equal(2, error.ErrorCode); // INTERNAL_ERROR, what HttpContext.Abort() sends

        // Kestrel drops DATA its frame writer had not picked up when the stream is reset: some prefix arrived.
        Assert.InRange(received.Length, 0, 100);
        Assert.Equal(UpstreamResponse.GeneratedBody(received.Length), received.ToArray());
    }

    [Fact]
    public async Task ResetAfterHeadersOverHttp2ResetsOnlyTheStreamWithTheScriptedCode()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("fine"))
            .OnPath("/reset", UpstreamResponse.Sized(1000) with { ResetAfterHeaders = true, ResetErrorCode = 8 });
        await using var upstream = await ScriptedUpstream.StartAsync(script, UpstreamProtocols.Http2);
        using var http = TestHttp.CreateClient(HttpVersion.Version20);

        using var answer = await http.GetAsync(new Uri(upstream.Uri, "/reset"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        await using var stream = await answer.Content.ReadAsStreamAsync();
        var error = await Assert.ThrowsAsync<HttpProtocolException>(() => stream.ReadAsync(new byte[64]).AsTask().WaitAsync(Timeout));
        Assert.Equal(8, error.ErrorCode); // CANCEL

        // The connection itself survived: the next request on it is answered.
        Assert.Equal("fine", await http.GetStringAsync(upstream.Uri));
        var requests = upstream.Log.Requests;
        Assert.Equal(2, requests.Count);
        Assert.Equal(requests[0].ConnectionId, requests[1].ConnectionId);
    }

    [Fact]
    public async Task CloseWithoutResponseSendsNoByteAndEndsTheConnection()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Close());

        using var client = new TcpClient();
        await client.ConnectAsync(upstream.Endpoint);
        var stream = client.GetStream();
        await stream.WriteAsync("GET /nothing HTTP/1.1\r\nHost: upstream\r\n\r\n"u8.ToArray());
        var (received, _) = await ReadToEndAsync(stream);

        Assert.Empty(received);
        var logged = Assert.Single(await upstream.Log.WaitForRequestsAsync(1, Timeout));
        Assert.Equal("/nothing", logged.RawTarget);

        using var http = TestHttp.CreateClient();
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync(upstream.Uri));
    }

    [Fact]
    public async Task EchoReturnsTheRawTargetHeadersAndBody()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        using var http = TestHttp.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(upstream.Uri, "/a%2Fb?x=1&y=%20"))
        {
            Content = new ByteArrayContent("héllo"u8.ToArray()),
        };
        request.Headers.Add("x-forwarded-for", ["10.0.0.1", "10.0.0.2"]);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("text/plain");

        using var answer = await http.SendAsync(request);
        var echoed = await EchoedRequest.ReadAsync(answer);

        Assert.Equal("application/json", answer.Content.Headers.ContentType?.MediaType);
        Assert.Equal("POST", echoed.Method);
        Assert.Equal("/a%2Fb?x=1&y=%20", echoed.Target);
        Assert.Equal("HTTP/1.1", echoed.Protocol);
        Assert.Equal("10.0.0.1, 10.0.0.2", echoed.Header("X-Forwarded-For"));
        Assert.Equal("text/plain", echoed.Header("content-type"));
        Assert.Equal("6", echoed.Header("content-length"));
        Assert.Equal($"127.0.0.1:{upstream.Port}", echoed.Header("host"));
        Assert.Equal("héllo", echoed.Body);
        Assert.Equal("héllo"u8.ToArray(), echoed.BodyBytes);
    }

    [Fact]
    public async Task EchoAndLogKeepATargetNoClientWouldSendAsIs()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());

        using var client = new TcpClient();
        await client.ConnectAsync(upstream.Endpoint);
        var stream = client.GetStream();
        await stream.WriteAsync("GET /x/../y%2F?q=%zz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"u8.ToArray());
        var (received, _) = await ReadToEndAsync(stream);
        var text = Encoding.UTF8.GetString(received);

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", text, StringComparison.Ordinal);
        var echoed = EchoedRequest.Parse(text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]);
        Assert.Equal("/x/../y%2F?q=%zz", echoed.Target);
        Assert.Equal("h", echoed.Header("host"));
        var logged = Assert.Single(upstream.Log.Requests);
        Assert.Equal("/x/../y%2F", logged.Path);
        Assert.Equal("?q=%zz", logged.Query);
        Assert.Equal(((IPEndPoint)client.Client.LocalEndPoint!).Port, logged.RemoteEndpoint.Port);
    }

    [Fact]
    public async Task BothServesHttp1AndH2cOnTwoPorts()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo(), UpstreamProtocols.Both);
        using var http1 = TestHttp.CreateClient(HttpVersion.Version11);
        using var http2 = TestHttp.CreateClient(HttpVersion.Version20);

        Assert.NotEqual(upstream.Http1Endpoint.Port, upstream.Http2Endpoint.Port);
        Assert.Equal(upstream.Http1Endpoint, upstream.Endpoint);
        var overHttp1 = EchoedRequest.Parse(await http1.GetStringAsync(new Uri(upstream.Http1Uri, "/one")));
        var overHttp2 = EchoedRequest.Parse(await http2.GetStringAsync(new Uri(upstream.Http2Uri, "/two?z")));

        Assert.Equal(("HTTP/1.1", "/one"), (overHttp1.Protocol, overHttp1.Target));
        Assert.Equal(("HTTP/2", "/two?z"), (overHttp2.Protocol, overHttp2.Target));
        Assert.Equal($"127.0.0.1:{upstream.Http2Endpoint.Port}", overHttp2.Header("host"));
    }

    [Fact]
    public async Task RequestLogRecordsWhatArrivedAndWaitCompletesOnTheNthRequest()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"), UpstreamProtocols.Http2);
        using var http = TestHttp.CreateClient(HttpVersion.Version20);
        var waitForTwo = upstream.Log.WaitForRequestsAsync(2, Timeout);
        Assert.False(waitForTwo.IsCompleted);

        using var first = await http.PostAsync(new Uri(upstream.Uri, "/first?q=1"), new StringContent("one"));
        Assert.False(waitForTwo.IsCompleted);
        using var second = new HttpRequestMessage(HttpMethod.Put, new Uri(upstream.Uri, "/second"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        second.Headers.Add("x-trace", "abc");
        using var secondAnswer = await http.SendAsync(second);
        var requests = await waitForTwo;

        Assert.Equal([1L, 2L], requests.Select(r => r.Sequence));
        Assert.Equal(("POST", "/first?q=1", "HTTP/2", "one", true), (requests[0].Method, requests[0].RawTarget, requests[0].Protocol, requests[0].BodyText, requests[0].BodyComplete));
        Assert.Equal(("PUT", "/second", "abc", 0), (requests[1].Method, requests[1].RawTarget, requests[1].Header("X-Trace"), requests[1].Body.Length));
        Assert.Equal(IPAddress.Loopback, requests[0].RemoteEndpoint.Address);
        Assert.Equal(requests[0].ConnectionId, requests[1].ConnectionId);
        Assert.Equal("/second", (await upstream.Log.WaitForRequestAsync(r => r.Method == "PUT", Timeout)).RawTarget);

        var timeout = await Assert.ThrowsAsync<TimeoutException>(() => upstream.Log.WaitForRequestsAsync(3, TimeSpan.FromMilliseconds(50)));
        Assert.Contains("#2 PUT /second HTTP/2", timeout.Message);
    }

    [Fact]
    public async Task MaxConcurrentRequestsCountsRequestsHeldInFlightByAGate()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("released") with { HoldUntil = gate.Task });
        using var http = TestHttp.CreateClient();

        var inFlight = Enumerable.Range(0, 5).Select(i => http.GetStringAsync(new Uri(upstream.Uri, $"/{i}"))).ToArray();
        var held = await upstream.Log.WaitForRequestsAsync(5, Timeout);

        Assert.Equal(5, upstream.Log.ActiveRequests);
        Assert.Equal(5, upstream.Log.MaxConcurrentRequests);
        Assert.Equal([1, 2, 3, 4, 5], held.Select(r => r.ConcurrentOnArrival).Order());
        Assert.Equal(5, held.Select(r => r.RemoteEndpoint.Port).Distinct().Count()); // HTTP/1.1: one connection each
        Assert.DoesNotContain(inFlight, task => task.IsCompleted);

        gate.SetResult();
        Assert.Equal(Enumerable.Repeat("released", 5), await Task.WhenAll(inFlight).WaitAsync(Timeout));
        Assert.Equal(5, upstream.Log.MaxConcurrentRequests);
    }

    [Fact]
    public async Task CustomHandlerSeesTheBufferedBodyAndAnIncompleteUploadIsLogged()
    {
        var script = new UpstreamScript(UpstreamResponse.Custom(async context =>
        {
            var body = await new StreamReader(context.Request.Body).ReadToEndAsync(context.RequestAborted);
            context.Response.StatusCode = 207;
            await context.Response.WriteAsync(new string(body.Reverse().ToArray()), context.RequestAborted);
        }));
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        using var http = TestHttp.CreateClient();

        using var answer = await http.PostAsync(upstream.Uri, new StringContent("stressed"));
        Assert.Equal(207, (int)answer.StatusCode);
        Assert.Equal("desserts", await answer.Content.ReadAsStringAsync());

        using (var client = new TcpClient())
        {
            await client.ConnectAsync(upstream.Endpoint);
            await client.GetStream().WriteAsync("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789"u8.ToArray());
            client.Client.Shutdown(SocketShutdown.Send);
            var partial = await upstream.Log.WaitForRequestAsync(r => r.RawTarget == "/upload", Timeout);
            Assert.False(partial.BodyComplete);

            // Kestrel fails the read without handing over bytes it still held when the connection ended
            // (here usually all of them), so only a prefix of what was sent is certain.
            Assert.StartsWith(partial.BodyText, "0123456789", StringComparison.Ordinal);
        }

        Assert.Empty(upstream.Log.ScriptErrors);
    }

    [Fact]
    public async Task DisposeAbortsHeldRequestsAndTheCustomHandlerSeesIt()
    {
        var handlerSawAbort = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Custom(async context =>
        {
            await using var registration = context.RequestAborted.Register(() => handlerSawAbort.TrySetResult());
            await Task.Delay(global::System.Threading.Timeout.InfiniteTimeSpan, context.RequestAborted);
        }));
        var endpoint = upstream.Endpoint;
        using var http = TestHttp.CreateClient();

        var pending = http.GetAsync(upstream.Uri);
        await upstream.Log.WaitForRequestsAsync(1, Timeout);
        await upstream.DisposeAsync().AsTask().WaitAsync(Timeout);

        await handlerSawAbort.Task.WaitAsync(Timeout);
        await Assert.ThrowsAsync<HttpRequestException>(() => pending.WaitAsync(Timeout));
        using var client = new TcpClient();
        var refused = await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(endpoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.Equal(0, upstream.Log.ActiveRequests);
    }

    /// <summary>Reads until <paramref name="count"/> bytes have come (a chunk may arrive in pieces).</summary>
    private static async Task<string> ReadExactlyAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Timeout);
        return Encoding.ASCII.GetString(buffer);
    }

    /// <summary>Everything until the peer closes; a reset ends the read too (reported, with what came before it).</summary>
    private static async Task<(byte[] Received, bool Reset)> ReadToEndAsync(Stream stream)
    {
        var received = new MemoryStream();
        try
        {
            await stream.CopyToAsync(received).WaitAsync(Timeout);
            return (received.ToArray(), false);
        }
        catch (IOException)
        {
            return (received.ToArray(), true);
        }
    }
}
