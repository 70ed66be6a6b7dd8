using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// retry_policy.per_try_idle_timeout end to end (HTTP/1.1 and HTTP/2 upstreams): an attempt that
/// goes that long without an upstream byte is a per-try timeout (retried like one, else 504 UT
/// with upstream_per_try_idle_timeout), counted in upstream_rq_per_try_idle_timeout; every
/// upstream byte pushes it back, so a slow but progressing response is not cut.
/// </summary>
public sealed class PerTryIdleTimeoutTests
{
    private static string Config(string retryPolicy, int port, bool http2) => Build(
        AllDomains($$"""
            - match: { prefix: "/" }
              route:
                cluster: backend
                retry_policy:
            {{Indent(retryPolicy, 6)}}  response_headers_to_add:
              - header: { key: x-flags, value: "%RESPONSE_FLAGS%" }
              - header: { key: x-details, value: "%RESPONSE_CODE_DETAILS%" }
            """),
        [("backend", [port])],
        clusterExtra: http2 ? TestConfigs.Http2UpstreamCluster : "");

    private static UpstreamProtocols Protocol(bool http2) => http2 ? UpstreamProtocols.Http2 : UpstreamProtocols.Http1;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AnIdleAttemptIsRetriedAndCountedAsAPerTryIdleTimeout(bool http2)
    {
        var never = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Text("quick")).OnPath("/", UpstreamResponse.Text("stuck") with { HoldUntil = never.Task }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script, Protocol(http2));
        // One second and three retries: a loaded test process that stalls an attempt (or lets the
        // retry reach the upstream before the first request's handler ran) still gets "quick".
        await using var legate = await InProcessLegate.StartAsync(Config("retry_on: reset\nnum_retries: 3\nper_try_idle_timeout: 1s", upstream.Port, http2));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("quick", await response.Content.ReadAsStringAsync());
        var idleTimeouts = Counter(legate, "cluster.backend.upstream_rq_per_try_idle_timeout");
        Assert.InRange(idleTimeouts, 1, 3);
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_per_try_timeout"));
        Assert.Equal(idleTimeouts, Counter(legate, "cluster.backend.upstream_rq_retry"));
        Assert.InRange(upstream.Log.Count, 2, 4);
        never.SetResult();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WithoutRetriesAnIdleAttemptIs504UtWithItsOwnDetails(bool http2)
    {
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("stuck") with { HoldUntil = never.Task }, Protocol(http2));

        // No retry_on: the idle timeout applies all the same (as Envoy's), and nothing retries it.
        await using var legate = await InProcessLegate.StartAsync(Config("per_try_idle_timeout: 0.3s", upstream.Port, http2));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream request timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal("UT", Assert.Single(response.Headers.GetValues("x-flags")));
        Assert.Equal("upstream_per_try_idle_timeout", Assert.Single(response.Headers.GetValues("x-details")));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_per_try_idle_timeout"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_retry"));
        never.SetResult();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task EveryUpstreamBytePushesTheTimeoutBack(bool http2)
    {
        // Eight pieces 0.45 s apart: 3.15 s in all, longer than the 2.5 s idle timeout, but never
        // more than 0.45 s without a byte (2 s of slack for a loaded machine's scheduling).
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("abcdefgh").Streamed(8, TimeSpan.FromMilliseconds(450)), Protocol(http2));
        await using var legate = await InProcessLegate.StartAsync(Config("per_try_idle_timeout: 2.5s", upstream.Port, http2));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("abcdefgh", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_per_try_idle_timeout"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AResponseThatStallsMidBodyIsResetDownstream(bool http2)
    {
        var never = new TaskCompletionSource();
        var stall = UpstreamResponse.Text("ab").Streamed(2) with { ChunkGate = i => i == 0 ? Task.CompletedTask : never.Task };
        await using var upstream = await ScriptedUpstream.StartAsync(stall, Protocol(http2));
        await using var legate = await InProcessLegate.StartAsync(Config("retry_on: reset\nper_try_idle_timeout: 1s", upstream.Port, http2));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"), HttpCompletionOption.ResponseHeadersRead);

        // The head went downstream before the stall: nothing can be retried, the stream is reset.
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await Assert.ThrowsAnyAsync<Exception>(() => response.Content.ReadAsStringAsync());
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_per_try_idle_timeout"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_retry"));
        never.SetResult();
    }
}
