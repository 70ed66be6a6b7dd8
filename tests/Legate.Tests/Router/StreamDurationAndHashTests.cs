using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>Route max_stream_duration with grpc-timeout, and hash_policy's affinity cookie, end to end.</summary>
public sealed class StreamDurationAndHashTests
{
    [Fact]
    public async Task MaxStreamDurationEndsAStreamThatRunsTooLong()
    {
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("late") with { HoldUntil = never.Task });
        var routes = """
            - match: { prefix: "/" }
              route: { cluster: backend, timeout: 0s, max_stream_duration: { max_stream_duration: 0.3s } }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])]));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        // The request was complete, so Envoy answers 504 (408 while the request still arrives).
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("downstream duration timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, Counter(legate, "http.web.downstream_rq_max_duration_reached"));
        never.SetResult();
    }

    [Fact]
    public async Task GrpcTimeoutIsHonouredWhenGrpcTimeoutHeaderMaxIsSet()
    {
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("late") with { HoldUntil = never.Task });
        var routes = """
            - match: { prefix: "/" }
              route:
                cluster: backend
                timeout: 0s
                max_stream_duration: { max_stream_duration: 60s, grpc_timeout_header_max: 0s }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])]));
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("grpc-timeout", "200m");

        using var response = await legate.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal(1, Counter(legate, "http.web.downstream_rq_max_duration_reached"));
        never.SetResult();
    }

    [Theory]
    [InlineData("grpc_timeout_header_max: 0.2s", "100S")]
    [InlineData("grpc_timeout_header_max: 0s, grpc_timeout_header_offset: 99.8s", "100S")]
    [InlineData("grpc_timeout_header_max: 120s, grpc_timeout_header_offset: 99.8s", "100S")]
    public async Task GrpcTimeoutIsCappedByTheMaxAndShortenedByTheOffset(string durationFields, string grpcTimeout)
    {
        // Each case leaves 200 ms of a 100 s grpc-timeout: were the cap or the offset ignored, the
        // stream would run 100 s and the test's 30 s wait would fail.
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("late") with { HoldUntil = never.Task });
        var routes = $$"""
            - match: { prefix: "/" }
              route:
                cluster: backend
                timeout: 0s
                max_stream_duration: { max_stream_duration: 600s, {{durationFields}} }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])]));
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("grpc-timeout", grpcTimeout);

        using var response = await legate.Http.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal(1, Counter(legate, "http.web.downstream_rq_max_duration_reached"));
        never.SetResult();
    }

    [Fact]
    public async Task ACookieHashPolicyGivesTheClientItsAffinityCookie()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var routes = """
            - match: { prefix: "/" }
              route:
                cluster: backend
                hash_policy:
                - cookie: { name: lb, ttl: 600s, path: / }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])]));
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false, UseProxy = false });

        using var first = await client.GetAsync(legate.ListenerUri("web", "/"));
        var cookie = Assert.Single(first.Headers.GetValues("set-cookie"));
        Assert.Matches("^lb=\"[0-9a-f]{16}\"; Max-Age=600; Path=/; HttpOnly$", cookie);

        using var again = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        again.Headers.Add("cookie", cookie.Split(';')[0]);
        using var second = await client.SendAsync(again);
        Assert.False(second.Headers.Contains("set-cookie"));
    }
}
