using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// The router's <c>respect_expected_rq_timeout</c>: an Envoy in front sends
/// x-envoy-expected-rq-timeout-ms; with the option that value is the route timeout (before
/// x-envoy-upstream-rq-timeout-ms), without it the header is ignored. The upstream never answers,
/// so which timeout applied shows in whether the 504 comes at all within the client's patience
/// (the other timeout is a minute).
/// </summary>
public sealed class ExpectedTimeoutTests
{
    // The request comes through a trusted hop (an internal x-forwarded-for), so x-envoy-* are kept.
    private const string Trusted = "x-forwarded-for";

    [Theory]
    [InlineData(true, "200", null)]
    [InlineData(true, "200", "60000")]
    [InlineData(true, null, "200")]
    [InlineData(false, "60000", "200")]
    public async Task TheTimeoutThatAppliesIsTheExpectedOneOnlyWhenRespected(bool respect, string? expected, string? upstreamTimeout)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Custom(async context => await Task.Delay(Timeout.Infinite, context.RequestAborted)));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            // A route timeout of a minute: a test that waited for it would fail on the client's 20 s.
            Route = "timeout: 60s",
            Router = respect ? "respect_expected_rq_timeout: true" : "",
        }.Build());
        legate.Http.Timeout = TimeSpan.FromSeconds(20);

        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/slow"));
        request.Headers.TryAddWithoutValidation(Trusted, "10.1.1.1");
        if (expected is not null)
        {
            request.Headers.TryAddWithoutValidation("x-envoy-expected-rq-timeout-ms", expected);
        }

        if (upstreamTimeout is not null)
        {
            request.Headers.TryAddWithoutValidation("x-envoy-upstream-rq-timeout-ms", upstreamTimeout);
        }

        using var response = await legate.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream request timeout", await response.Content.ReadAsStringAsync());

        // The upstream is told the timeout that applied.
        var seen = Assert.Single(await upstream.Log.WaitForRequestsAsync(1));
        Assert.Equal("200", seen.Header("x-envoy-expected-rq-timeout-ms"));
    }

    [Theory]
    [InlineData("x-envoy-upstream-rq-timeout-ms")]
    [InlineData("x-envoy-expected-rq-timeout-ms")]
    public async Task AHugeTimeoutHeaderIsCappedNotAnError(string header)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Router = "respect_expected_rq_timeout: true" }.Build());

        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.TryAddWithoutValidation(Trusted, "10.1.1.1");
        request.Headers.TryAddWithoutValidation(header, ulong.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var response = await legate.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(uint.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture), Assert.Single(await upstream.Log.WaitForRequestsAsync(1)).Header("x-envoy-expected-rq-timeout-ms"));
    }

    [Fact]
    public async Task TheOptionIsNoLongerWarnedAsIgnored()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Router = "respect_expected_rq_timeout: true" }.Build());

        Assert.DoesNotContain(legate.Logs.Lines, line => line.Contains("respect_expected_rq_timeout", StringComparison.Ordinal));
        Assert.Equal("ok", await legate.Http.GetStringAsync(legate.ListenerUri("web", "/")));
    }
}
