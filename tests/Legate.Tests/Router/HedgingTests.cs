using System.Globalization;
using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// hedge_policy.hedge_on_per_try_timeout end to end: a per-try timeout starts a retry without
/// cancelling the attempt that timed out, the first good response wins, the others are reset.
/// </summary>
public sealed class HedgingTests
{
    private const string Flags = """
          response_headers_to_add:
          - header: { key: x-flags, value: "%RESPONSE_FLAGS%" }
        """;

    private static string Route(string retryPolicy, string hedge = "hedge_policy: { hedge_on_per_try_timeout: true }", string timeout = "") => $$"""
        - match: { prefix: "/" }
          route:
            cluster: backend
            {{timeout}}
            retry_policy:
        {{Indent(retryPolicy, 6)}}    {{hedge}}
        {{Flags}}
        """;

    // use_remote_address: the test client (loopback) is a trusted, internal caller whose x-envoy-* headers count.
    private static Task<InProcessLegate> StartAsync(string routes, int port, string virtualHostExtra = "") =>
        InProcessLegate.StartAsync(Build(AllDomains(routes, virtualHostExtra), [("backend", [port])], hcmExtra: "use_remote_address: true\n"));

    [Fact]
    public async Task TheHedgedRetryAnswersWhileTheFirstAttemptStillWaits()
    {
        var release = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Text("second"))
            .OnPath("/", UpstreamResponse.Text("first") with { HoldUntil = release.Task }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await StartAsync(Route("retry_on: 5xx\nnum_retries: 1\nper_try_timeout: 0.2s"), upstream.Port);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("second", await response.Content.ReadAsStringAsync());
        Assert.Equal("-", Assert.Single(response.Headers.GetValues("x-flags")));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_retry"));

        // A soft per-try timeout is not counted as one (Envoy: "except when request hedging is enabled").
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_per_try_timeout"));

        // The first attempt was left running until the retry won, then reset.
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_tx_reset"));
        await InProcessLegate.WaitUntilAsync(() => Gauge(legate, "cluster.backend.upstream_rq_active") == 0, "no request active");
        release.SetResult();
    }

    [Fact]
    public async Task TheAttemptThatTimedOutCanStillWin()
    {
        var releaseFirst = new TaskCompletionSource();
        var never = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Text("later"))
            .OnPath("/", UpstreamResponse.Text("first") with { HoldUntil = releaseFirst.Task }, times: 1)
            .OnPath("/", UpstreamResponse.Text("second") with { HoldUntil = never.Task }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await StartAsync(Route("retry_on: 5xx\nnum_retries: 3\nper_try_timeout: 0.2s"), upstream.Port);

        var pending = legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        // Both attempts are upstream at once: the first one was not cancelled by its per-try timeout.
        await upstream.Log.WaitForRequestsAsync(2);
        releaseFirst.SetResult();
        using var response = await pending;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("first", await response.Content.ReadAsStringAsync());
        Assert.Equal("-", Assert.Single(response.Headers.GetValues("x-flags")));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_per_try_timeout"));
        Assert.True(Counter(legate, "cluster.backend.upstream_rq_retry") >= 1);

        // Every other attempt (the second, and a third if the second also timed out meanwhile) was reset.
        await InProcessLegate.WaitUntilAsync(() => Gauge(legate, "cluster.backend.upstream_rq_active") == 0, "no request active");
        Assert.Equal(upstream.Log.Count - 1, Counter(legate, "cluster.backend.upstream_rq_tx_reset"));
        never.SetResult();
    }

    [Fact]
    public async Task ARetriableAnswerOfAHedgedAttemptIsDroppedWhileTheRetryMayStillAnswer()
    {
        var releaseFirst = new TaskCompletionSource();
        var releaseSecond = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Text("later"))
            .OnPath("/", UpstreamResponse.Text("broken") with { Status = 503, HoldUntil = releaseFirst.Task }, times: 1)
            .OnPath("/", UpstreamResponse.Text("second") with { HoldUntil = releaseSecond.Task }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);

        // One retry only, and a per-try timeout the second attempt outlives without another hedge.
        await using var legate = await StartAsync(Route("retry_on: 5xx\nnum_retries: 1\nper_try_timeout: 0.2s"), upstream.Port);

        var pending = legate.Http.GetAsync(legate.ListenerUri("web", "/"));
        await upstream.Log.WaitForRequestsAsync(2);
        releaseFirst.SetResult();

        // The 503 of the already-retried first attempt is dropped (reset), not forwarded.
        await InProcessLegate.WaitUntilAsync(() => Counter(legate, "cluster.backend.upstream_rq_tx_reset") == 1, "the 503 dropped");
        releaseSecond.SetResult();
        using var response = await pending;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("second", await response.Content.ReadAsStringAsync());
        Assert.Equal(2, upstream.Log.Count);
    }

    [Fact]
    public async Task WithoutRetriesLeftEveryAttemptRunsToTheRouteTimeout504UtUrx()
    {
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("slow") with { HoldUntil = never.Task });

        // The hedge policy of the virtual host applies to its routes.
        var routes = Route("retry_on: 5xx\nnum_retries: 1\nper_try_timeout: 0.2s", hedge: string.Empty, timeout: "timeout: 1.5s");
        await using var legate = await StartAsync(routes, upstream.Port, "hedge_policy: { hedge_on_per_try_timeout: true }");

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream request timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal("UT,URX", Assert.Single(response.Headers.GetValues("x-flags")));
        Assert.Equal(2, upstream.Log.Count);
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_per_try_timeout"));

        // Envoy's route timeout counts every attempt still in flight.
        Assert.Equal(2, Counter(legate, "cluster.backend.upstream_rq_timeout"));
        await InProcessLegate.WaitUntilAsync(() => Gauge(legate, "cluster.backend.upstream_rq_active") == 0, "no request active");
        never.SetResult();
    }

    [Fact]
    public async Task TheRequestHeaderTurnsHedgingOnAndTheUpstreamMayUseTheWholeRouteTimeout()
    {
        var release = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Echo())
            .OnPath("/", UpstreamResponse.Text("first") with { HoldUntil = release.Task }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await StartAsync(Route("retry_on: 5xx\nnum_retries: 1\nper_try_timeout: 0.2s", hedge: string.Empty), upstream.Port);

        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("x-envoy-hedge-on-per-try-timeout", "true");
        using var response = await legate.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echoed = await EchoedRequest.ReadAsync(response);
        Assert.Null(echoed.Header("x-envoy-hedge-on-per-try-timeout"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_per_try_timeout"));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_tx_reset"));

        // The expected timeout is what is left of the 15 s route timeout, not the 200 ms per-try timeout.
        var expected = long.Parse(echoed.Header("x-envoy-expected-rq-timeout-ms")!, CultureInfo.InvariantCulture);
        Assert.InRange(expected, 1_000, 15_000);
        release.SetResult();
    }

    [Fact]
    public async Task FalseInTheRequestHeaderTurnsTheRoutesHedgingOff()
    {
        var never = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Text("quick"))
            .OnPath("/", UpstreamResponse.Text("slow") with { HoldUntil = never.Task }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);

        // Per-try timeout 1 s: the retry must beat its own one under load.
        await using var legate = await StartAsync(Route("retry_on: 5xx\nnum_retries: 1\nper_try_timeout: 1s"), upstream.Port);

        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("x-envoy-hedge-on-per-try-timeout", "false");
        using var response = await legate.Http.SendAsync(request);

        Assert.Equal("quick", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_per_try_timeout"));
        never.SetResult();
    }
}
