using System.Diagnostics;
using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// Each retry_on condition end to end, on the failure it names: upstream resets (HTTP/1.1 connection
/// closed, HTTP/2 stream reset) under reset / 5xx / gateway-error but not connect-failure;
/// an HTTP/2 REFUSED_STREAM (sent again by the HTTP/2 client itself) and other reset codes; reset-before-request on a connect
/// failure but not on a reset after the request went out; the gRPC conditions on grpc-status;
/// rate_limited_retry_back_off waiting as long as the upstream's reset header asks.
/// </summary>
public sealed class RetryConditionTests
{
    private static string Config(string retryPolicy, int[] ports, bool http2) => Build(
        AllDomains($$"""
            - match: { prefix: "/" }
              route:
                cluster: backend
                retry_policy:
            {{Indent(retryPolicy, 6)}}  response_headers_to_add:
              - header: { key: x-flags, value: "%RESPONSE_FLAGS%" }
            """),
        [("backend", ports)],
        clusterExtra: http2 ? TestConfigs.Http2UpstreamCluster : "");

    private static UpstreamProtocols Protocol(bool http2) => http2 ? UpstreamProtocols.Http2 : UpstreamProtocols.Http1;

    [Theory]
    [InlineData("reset", false, true)]
    [InlineData("reset", true, true)]
    [InlineData("5xx", false, true)]
    [InlineData("5xx", true, true)]
    [InlineData("gateway-error", false, true)]
    [InlineData("gateway-error", true, true)]
    [InlineData("connect-failure", false, false)]
    [InlineData("connect-failure", true, false)]
    [InlineData("retriable-4xx", true, false)]
    [InlineData("reset-before-request", false, false)]
    [InlineData("reset-before-request", true, false)]
    public async Task AnUpstreamResetIsRetriedByTheConditionsThatCoverIt(string retryOn, bool http2, bool retried)
    {
        var script = new UpstreamScript(UpstreamResponse.Text("second")).OnPath("/", UpstreamResponse.Close(), times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script, Protocol(http2));
        await using var legate = await InProcessLegate.StartAsync(Config("retry_on: " + retryOn + "\nnum_retries: 1", [upstream.Port], http2));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        if (retried)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("second", await response.Content.ReadAsStringAsync());
            Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_retry"));
            Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_retry_success"));
        }
        else
        {
            // The reset is the answer: 503 with UC (HTTP/1.1 connection closed) or UR (HTTP/2 stream reset).
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal(http2 ? "UR" : "UC", Assert.Single(response.Headers.GetValues("x-flags")));
            Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_retry"));
        }
    }

    [Theory]
    [InlineData("refused-stream")]
    [InlineData("connect-failure")]
    public async Task AnHttp2RefusedStreamIsRetriedByTheHttp2ClientItself(string retryOn)
    {
        // .NET's HTTP/2 client (the upstream codec) sends a request the server refused with
        // REFUSED_STREAM again on a new stream by itself, before the router sees a failure: the
        // router's refused-stream condition (RetryStateTests) never gets to act, whatever retry_on says.
        var script = new UpstreamScript(UpstreamResponse.Text("second")).OnPath("/", UpstreamResponse.Close() with { ResetErrorCode = 7 }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script, UpstreamProtocols.Http2);
        await using var legate = await InProcessLegate.StartAsync(Config("retry_on: " + retryOn + "\nnum_retries: 1", [upstream.Port], http2: true));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("second", await response.Content.ReadAsStringAsync());
        Assert.Equal(2, upstream.Log.Count);
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_retry"));
    }

    [Fact]
    public async Task AnHttp2ResetWithAnotherCodeIsNotARefusedStream()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("second")).OnPath("/", UpstreamResponse.Close() with { ResetErrorCode = 2 }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script, UpstreamProtocols.Http2);
        await using var legate = await InProcessLegate.StartAsync(Config("retry_on: refused-stream\nnum_retries: 1", [upstream.Port], http2: true));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("UR", Assert.Single(response.Headers.GetValues("x-flags")));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_retry"));
        Assert.Equal(1, upstream.Log.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ResetBeforeRequestRetriesAConnectFailure(bool http2)
    {
        await using var live = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("live"), Protocol(http2));
        using var refusing = FreePort.Refusing();
        await using var legate = await InProcessLegate.StartAsync(Config("retry_on: reset-before-request\nnum_retries: 1", [refusing.Port, live.Port], http2));

        // Round robin: of two requests, one first goes to the refusing host and is retried on the live one.
        for (var i = 0; i < 2; i++)
        {
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("live", await response.Content.ReadAsStringAsync());
        }

        // Round robin sends the first attempt of one or both requests to the refusing host: each is retried.
        Assert.True(Counter(legate, "cluster.backend.upstream_rq_retry") >= 1);
        Assert.Equal(Counter(legate, "cluster.backend.upstream_cx_connect_fail"), Counter(legate, "cluster.backend.upstream_rq_retry"));
    }

    [Theory]
    [InlineData("cancelled", 1, true)]
    [InlineData("deadline-exceeded", 4, true)]
    [InlineData("internal", 13, true)]
    [InlineData("resource-exhausted", 8, true)]
    [InlineData("unavailable", 14, true)]
    [InlineData("internal", 14, false)]
    [InlineData("cancelled,deadline-exceeded,internal,resource-exhausted,unavailable", 0, false)]
    [InlineData("cancelled,deadline-exceeded,internal,resource-exhausted,unavailable", 2, false)]
    public async Task GrpcConditionsRetryOnTheirGrpcStatus(string retryOn, int grpcStatus, bool retried)
    {
        var first = UpstreamResponse.Text("first").WithHeader("grpc-status", grpcStatus.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var script = new UpstreamScript(UpstreamResponse.Text("second")).OnPath("/", first, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await InProcessLegate.StartAsync(Config("retry_on: " + retryOn + "\nnum_retries: 1", [upstream.Port], http2: false));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(retried ? "second" : "first", await response.Content.ReadAsStringAsync());
        Assert.Equal(retried ? 2 : 1, upstream.Log.Count);
    }

    [Fact]
    public async Task GrpcConditionsFromTheRetryGrpcOnHeaderOfATrustedCaller()
    {
        var first = UpstreamResponse.Text("first").WithHeader("grpc-status", "13");
        var script = new UpstreamScript(UpstreamResponse.Text("second")).OnPath("/", first, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        var routes = """
            - match: { prefix: "/" }
              route: { cluster: backend }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])], hcmExtra: "use_remote_address: true\n"));
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("x-envoy-retry-grpc-on", "internal");

        using var response = await legate.Http.SendAsync(request);

        Assert.Equal("second", await response.Content.ReadAsStringAsync());
        var seen = await upstream.Log.WaitForRequestsAsync(2);
        Assert.All(seen, r => Assert.Null(r.Header("x-envoy-retry-grpc-on")));
    }

    [Fact]
    public async Task PerTryTimeoutFromTheHeaderOfATrustedCaller()
    {
        var never = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Text("quick")).OnPath("/", UpstreamResponse.Text("stuck") with { HoldUntil = never.Task }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        var routes = """
            - match: { prefix: "/" }
              route: { cluster: backend, timeout: 60s }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])], hcmExtra: "use_remote_address: true\n"));
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("x-envoy-retry-on", "5xx");
        request.Headers.Add("x-envoy-upstream-rq-per-try-timeout-ms", "300");

        using var response = await legate.Http.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("quick", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_per_try_timeout"));
        var seen = await upstream.Log.WaitForRequestsAsync(2);
        Assert.All(seen, r => Assert.Null(r.Header("x-envoy-upstream-rq-per-try-timeout-ms")));
        never.SetResult();
    }

    [Fact]
    public async Task RateLimitedBackOffWaitsAsLongAsTheResetHeaderAsks()
    {
        var limited = UpstreamResponse.Text("slow down", 429).WithHeader("x-ratelimit-reset", "1");
        var script = new UpstreamScript(UpstreamResponse.Text("second")).OnPath("/", limited, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        var policy = """
            retry_on: retriable-status-codes
            retriable_status_codes: [429]
            num_retries: 1
            rate_limited_retry_back_off:
              reset_headers:
              - { name: x-ratelimit-reset, format: SECONDS }
              max_interval: 10s
            """;
        await using var legate = await InProcessLegate.StartAsync(Config(policy, [upstream.Port], http2: false));

        var started = Stopwatch.GetTimestamp();
        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
        var elapsed = Stopwatch.GetElapsedTime(started);

        Assert.Equal("second", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_retry_backoff_ratelimited"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_retry_backoff_exponential"));

        // A lower bound only (load can only make it longer): the retry waited the second the upstream asked for.
        Assert.True(elapsed >= TimeSpan.FromMilliseconds(950), $"the retry came after {elapsed.TotalMilliseconds} ms");
    }

    [Fact]
    public async Task ARateLimitedWaitBeyondMaxIntervalFallsBackToTheExponentialBackOff()
    {
        var limited = UpstreamResponse.Text("slow down", 429).WithHeader("x-ratelimit-reset", "3600");
        var script = new UpstreamScript(UpstreamResponse.Text("second")).OnPath("/", limited, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        var policy = """
            retry_on: retriable-status-codes
            retriable_status_codes: [429]
            num_retries: 1
            rate_limited_retry_back_off:
              reset_headers:
              - { name: x-ratelimit-reset, format: SECONDS }
              max_interval: 10s
            """;
        await using var legate = await InProcessLegate.StartAsync(Config(policy, [upstream.Port], http2: false));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal("second", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_retry_backoff_ratelimited"));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_retry_backoff_exponential"));
    }
}
