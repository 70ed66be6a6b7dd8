using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Http;

/// <summary>
/// <c>headers_with_underscores_action</c> counted with Envoy's codec stats, which are rooted at
/// <c>http1.</c> / <c>http2.</c> (not under the connection manager's prefix):
/// <c>dropped_headers_with_underscores</c> and <c>requests_rejected_with_underscores_in_headers</c>.
/// </summary>
public sealed class HeadersWithUnderscoresStatsTests
{
    private static ProxyConfig Config(int port, string action) =>
        new(port) { Hcm = "common_http_protocol_options: { headers_with_underscores_action: " + action + " }" };

    [Fact]
    public async Task Http1DroppedHeadersAndTrailersAreCounted()
    {
        var seen = new List<RawRequest>();
        await using var upstream = RawUpstream.Serve(request =>
        {
            lock (seen)
            {
                seen.Add(request);
            }

            return "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "DROP_HEADER").Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /a HTTP/1.1\r\nHost: a\r\nx_one: 1\r\nx_two: 2\r\nx-fine: 3\r\n\r\n");
        Assert.Equal(200, (await client.ReadResponseAsync()).Status);
        await client.WriteAsync("POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nt_under: 1\r\n\r\n");
        Assert.Equal(200, (await client.ReadResponseAsync()).Status);

        Assert.Null(seen[0].Header("x_one"));
        Assert.Equal("3", seen[0].Header("x-fine"));
        Assert.Equal(3, legate.Counter("http1.dropped_headers_with_underscores"));
        Assert.Equal(0, legate.Counter("http1.requests_rejected_with_underscores_in_headers"));
    }

    [Fact]
    public async Task Http1RejectedRequestIsCounted()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "REJECT_REQUEST").Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /a HTTP/1.1\r\nHost: a\r\nx_one: 1\r\n\r\n");

        Assert.Equal(400, (await client.ReadResponseAsync()).Status);
        Assert.Equal(1, legate.Counter("http1.requests_rejected_with_underscores_in_headers"));
        Assert.Equal(0, legate.Counter("http1.dropped_headers_with_underscores"));
        Assert.Equal(0, upstream.ConnectionCount);
    }

    [Fact]
    public async Task Http2DropHeaderRemovesAndCounts()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "DROP_HEADER").Build());
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/h2")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        request.Headers.TryAddWithoutValidation("x_under", "1");
        request.Headers.TryAddWithoutValidation("x-fine", "2");

        using var response = await h2.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echoed = await EchoedRequest.ReadAsync(response);
        Assert.Null(echoed.Header("x_under"));
        Assert.Equal("2", echoed.Header("x-fine"));
        Assert.Equal(1, legate.Counter("http2.dropped_headers_with_underscores"));
    }

    [Fact]
    public async Task Http2RejectRequestResetsTheStreamAndCounts()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("never"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "REJECT_REQUEST").Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/h2")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        request.Headers.TryAddWithoutValidation("x_under", "1");

        await Assert.ThrowsAsync<HttpRequestException>(() => h2.SendAsync(request));

        var stream = await recorder.WaitForAsync(_ => true);
        Assert.Equal("http2.unexpected_underscore", stream.Details);
        Assert.Equal(1, legate.Counter("http2.requests_rejected_with_underscores_in_headers"));
        Assert.Empty(upstream.Log.Requests);

        // The connection still serves requests without underscores.
        using var ok = await h2.SendAsync(new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/ok")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact });
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }
}
