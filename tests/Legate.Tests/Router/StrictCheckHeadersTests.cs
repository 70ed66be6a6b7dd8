using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// The router's <c>strict_check_headers</c>: a listed x-envoy-* header with a value Envoy's
/// StrictHeaderChecker rejects is answered 400 "invalid header '…' with value '…'" (flag IH, details
/// <c>request_headers_failed_strict_check{name}</c>) and never reaches the upstream; valid values
/// and unlisted headers pass.
/// </summary>
public sealed class StrictCheckHeadersTests
{
    private const string All = "[x-envoy-upstream-rq-timeout-ms, x-envoy-upstream-rq-per-try-timeout-ms, x-envoy-max-retries, x-envoy-retry-on, x-envoy-retry-grpc-on]";

    private const string Routes = """
        - match: { prefix: "/" }
          route: { cluster: backend }
          response_headers_to_add:
          - header: { key: x-flags, value: "%RESPONSE_FLAGS%" }
          - header: { key: x-details, value: "%RESPONSE_CODE_DETAILS%" }
        """;

    [Theory]
    [InlineData("x-envoy-upstream-rq-timeout-ms", "10.0")]
    [InlineData("x-envoy-upstream-rq-per-try-timeout-ms", "1s")]
    [InlineData("x-envoy-max-retries", "2.0")]
    [InlineData("x-envoy-max-retries", "4294967296")]
    [InlineData("x-envoy-retry-on", "5xx,cancelled")]
    [InlineData("x-envoy-retry-grpc-on", "5xx,cancelled, internal")]
    public async Task AnInvalidValueIsABadRequest(string header, string value)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Routes = Routes, Router = "strict_check_headers: " + All }.Build());

        using var response = await SendAsync(legate, "/bad", (header, value));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal($"invalid header '{header}' with value '{value}'", await response.Content.ReadAsStringAsync());
        Assert.Equal("IH", Header(response, "x-flags"));
        Assert.Equal("request_headers_failed_strict_check{" + header + "}", Header(response, "x-details"));

        // The upstream never saw it: the next request is the first it gets.
        using var next = await SendAsync(legate, "/next");
        Assert.Equal("/next", Assert.Single(upstream.Log.Requests).Path);
    }

    [Fact]
    public async Task ValidValuesPass()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Routes = Routes, Router = "strict_check_headers: " + All }.Build());

        using var response = await SendAsync(legate, "/ok",
            ("x-envoy-upstream-rq-timeout-ms", "5000"),
            ("x-envoy-upstream-rq-per-try-timeout-ms", "100"),
            ("x-envoy-max-retries", "2"),
            ("x-envoy-retry-on", "5xx,gateway-error,retriable-4xx,refused-stream,connect-failure,retriable-status-codes , reset"),
            ("x-envoy-retry-grpc-on", "cancelled,internal,deadline-exceeded,resource-exhausted , unavailable,"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("from upstream", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task UnlistedHeadersAreNotChecked()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Routes = Routes,
            Router = "strict_check_headers: [x-envoy-upstream-rq-timeout-ms, x-envoy-max-retries]",
        }.Build());

        using var response = await SendAsync(legate, "/ok",
            ("x-envoy-upstream-rq-per-try-timeout-ms", "1.0"),
            ("x-envoy-upstream-rq-timeout-ms", "5000"),
            ("x-envoy-retry-on", "5xx,cancelled"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task WithoutTheOptionNothingIsChecked()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Routes = Routes }.Build());

        using var response = await SendAsync(legate, "/ok", ("x-envoy-max-retries", "2.0"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain(legate.Logs.Lines, line => line.Contains("strict_check_headers", StringComparison.Ordinal));
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;

    // Through a trusted hop (an internal x-forwarded-for), so the x-envoy-* headers are kept.
    private static Task<HttpResponseMessage> SendAsync(InProcessLegate legate, string path, params (string Name, string Value)[] headers) =>
        legate.GetAsync("web", path, [("x-forwarded-for", "10.1.1.1"), .. headers]);
}
