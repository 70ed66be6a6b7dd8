using System.Diagnostics;
using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Extensions.Filters.Http.Fault;

/// <summary>
/// The fault filter's <c>response_rate_limit</c> through a real Legate, a real upstream and
/// HttpClient: the response body reaches the client no faster than the limit (Envoy's token bucket:
/// one fill interval of 50 ms worth at once, then the rate), headers are not held, trailers follow
/// the body, the upstream side finishes early when the body fits in the buffer (the route timeout
/// does not count the pacing), and past the buffer limit the upstream side waits.
/// The bounds checked hold however slow the machine is: load only makes a transfer slower.
/// </summary>
public sealed class FaultResponseRateLimitTests
{
    private const int BytesPerSecond = 2 * 1024;

    /// <summary>What may be sent at once: one fill interval's worth (Envoy's initial tokens).</summary>
    private const double Burst = BytesPerSecond * 0.05;

    [Fact]
    public async Task TheBodyIsPacedToTheFixedLimit()
    {
        var body = Body(4096);
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Bytes(body));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "fixed_limit: { limit_kbps: 2 }"));

        var clock = Stopwatch.StartNew();
        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/paced"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("4096", Assert.Single(response.Content.Headers.GetValues("content-length")));

        var received = await ReadPacedAsync(response, clock, onFirstBytes: () =>
        {
            // Still pacing: the request counts as an active fault until it ends.
            Assert.Equal(1, legate.Gauge("http.web.fault.active_faults"));
        });

        Assert.Equal(body, received);

        // (4096 - 102) bytes at 2 KiB/s: no sooner than about 1.95 s after the request.
        Assert.True(clock.Elapsed.TotalSeconds >= (body.Length - Burst - 1) / BytesPerSecond,
            $"the whole body arrived after {clock.Elapsed.TotalSeconds:F2} s");
        Assert.Equal(1, legate.Counter("http.web.fault.response_rl_injected"));
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.fault.active_faults") == 0, "the active fault released");
    }

    [Fact]
    public async Task TheHeaderLimitComesFromTheRequest()
    {
        var body = Body(2048);
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Bytes(body));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "header_limit: {}"));

        // No header, a zero and a non-number: no limit.
        foreach (var value in new[] { null, "0", "fast" })
        {
            var headers = value is null ? [] : new[] { ("x-envoy-throttle-response-bandwidth", value) };
            using var unlimited = await legate.GetAsync("web", "/unlimited", headers);
            Assert.Equal(body, await unlimited.Content.ReadAsByteArrayAsync());
        }

        Assert.Equal(0, legate.Counter("http.web.fault.response_rl_injected"));

        // A percentage header of 0 turns it off for this request.
        using (var off = await legate.GetAsync("web", "/off", ("x-envoy-throttle-response-bandwidth", "2"), ("x-envoy-throttle-response-bandwidth-percentage", "0")))
        {
            Assert.Equal(body, await off.Content.ReadAsByteArrayAsync());
        }

        Assert.Equal(0, legate.Counter("http.web.fault.response_rl_injected"));

        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/limited"));
        request.Headers.Add("x-envoy-throttle-response-bandwidth", "2");
        using var response = await legate.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(body, await ReadPacedAsync(response, clock));
        Assert.True(clock.Elapsed.TotalSeconds >= (body.Length - Burst - 1) / BytesPerSecond, $"the body arrived after {clock.Elapsed.TotalSeconds:F2} s");
        Assert.Equal(1, legate.Counter("http.web.fault.response_rl_injected"));
    }

    [Fact]
    public async Task TrailersFollowThePacedBodyAndTheRouteTimeoutDoesNotCountThePacing()
    {
        var body = Body(3072);
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Bytes(body).WithTrailer("grpc-status", "0"), UpstreamProtocols.Http2);

        // A route timeout of 0.5 s and about 1.45 s of pacing: the upstream's response is whole in
        // Legate long before the timeout (it fits in the buffer), so it is not cut, as in Envoy.
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "fixed_limit: { limit_kbps: 2 }",
            route: "timeout: 0.5s", cluster: TestConfigs.Http2UpstreamCluster));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);

        var clock = Stopwatch.StartNew();
        using var response = await client.GetAsync(legate.ListenerUri("web", "/trailers"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(body, await ReadPacedAsync(response, clock));
        Assert.True(clock.Elapsed.TotalSeconds >= (body.Length - Burst - 1) / BytesPerSecond, $"the body arrived after {clock.Elapsed.TotalSeconds:F2} s");
        Assert.Equal("0", Assert.Single(response.TrailingHeaders.GetValues("grpc-status")));
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_rq_timeout"));
    }

    [Fact]
    public async Task PastTheBufferLimitTheUpstreamSideWaits()
    {
        // 256 KiB against a 16 KiB buffer at 16 KiB/s: the router stops reading the upstream while
        // the limiter holds more than the buffer limit, so its 1 s route timeout fires long before
        // the upstream's response is read (Envoy: watermarks pause the upstream, then UT).
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Sized(256 * 1024));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "fixed_limit: { limit_kbps: 16 }",
            route: "timeout: 1s", listener: "per_connection_buffer_limit_bytes: 16384"));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/big"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var content = await response.Content.ReadAsStreamAsync();
        var total = 0L;
        var buffer = new byte[16384];
        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            int read;
            while ((read = await content.ReadAsync(buffer)) > 0)
            {
                total += read;
            }
        });

        Assert.True(total < 256 * 1024, $"{total} bytes arrived");
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_rq_timeout"));
    }

    [Fact]
    public async Task ALimitWithoutItsKindIsAConfigError()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => InProcessLegate.StartAsync(Config(1, "")));

        Assert.Contains("response_rate_limit.limit_type (line ", error.Message, StringComparison.Ordinal);
        Assert.Contains("exactly one of \"fixed_limit\", \"header_limit\" must be set", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Reads the whole body, checking at every read that no more has arrived than the limit allows
    /// since <paramref name="clock"/> started (before the request was sent).
    /// </summary>
    private static async Task<byte[]> ReadPacedAsync(HttpResponseMessage response, Stopwatch clock, Action? onFirstBytes = null)
    {
        await using var content = await response.Content.ReadAsStreamAsync();
        var received = new MemoryStream();
        var buffer = new byte[8192];
        int read;
        while ((read = await content.ReadAsync(buffer)) > 0)
        {
            var allowed = Burst + (BytesPerSecond * clock.Elapsed.TotalSeconds) + 1;
            received.Write(buffer, 0, read);
            Assert.True(received.Length <= allowed, $"{received.Length} bytes after {clock.Elapsed.TotalSeconds:F3} s; the limit allows {allowed:F0}");
            if (onFirstBytes is not null && received.Length < 1024)
            {
                onFirstBytes();
                onFirstBytes = null;
            }
        }

        return received.ToArray();
    }

    private static byte[] Body(int length) => Enumerable.Range(0, length).Select(i => (byte)('a' + (i % 26))).ToArray();

    private static string Config(int upstreamPort, string limit, string route = "", string cluster = "", string listener = "") => new ProxyConfig(upstreamPort)
    {
        Route = route,
        Cluster = cluster,
        Listener = listener,
        HttpFilters = $$"""
            - name: envoy.filters.http.fault
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                response_rate_limit: { {{limit}}{{(limit.Length > 0 ? ", " : "")}}percentage: { numerator: 100 } }
            """,
    }.Build();
}
