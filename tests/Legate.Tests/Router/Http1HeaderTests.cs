using System.Globalization;
using System.Text.RegularExpressions;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// The header changes Envoy makes on the way through, checked on the wire at both ends: hop-by-hop
/// removal, Host, x-forwarded-for / -proto, x-envoy-external-address, x-envoy-internal, x-request-id,
/// via, server, date, the router's x-envoy-* headers, port stripping, underscores and header limits.
/// </summary>
public sealed partial class Http1HeaderTests
{
    private static Task<InProcessLegate> StartAsync(ProxyConfig config) => InProcessLegate.StartAsync(config.Build());

    /// <summary>An upstream that answers every request with 200 "ok" and hands each request to the test.</summary>
    private static RawUpstream Capture(List<RawRequest> seen, string response = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok") =>
        RawUpstream.Serve(request =>
        {
            lock (seen)
            {
                seen.Add(request);
            }

            return response;
        });

    [Fact]
    public async Task HopByHopRequestHeadersAreRemovedAndTheRestForwarded()
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));

        var response = await SendAsync(legate,
            "GET /h?q=1 HTTP/1.1\r\nHost: Example.com:8080\r\nConnection: keep-alive, x-custom\r\nKeep-Alive: timeout=5\r\n" +
            "Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTE: gzip\r\nX-Custom: kept\r\nX-Custom: twice\r\n\r\n");

        Assert.Equal(200, response.Status);
        var request = Assert.Single(seen);
        Assert.Equal("GET /h?q=1 HTTP/1.1", request.RequestLine);
        Assert.Equal("Example.com:8080", request.Header("host"));
        foreach (var name in new[] { "connection", "keep-alive", "proxy-connection", "upgrade", "te", "transfer-encoding" })
        {
            Assert.Null(request.Header(name));
        }

        Assert.Equal("kept, twice", request.Header("x-custom"));
        Assert.Equal("http", request.Header("x-forwarded-proto"));
        Assert.Matches(UuidV4(), request.Header("x-request-id")!);
        Assert.Equal("15000", request.Header("x-envoy-expected-rq-timeout-ms"));
    }

    [Fact]
    public async Task TeTrailersIsKept()
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));

        await SendAsync(legate, "GET /te HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n");

        Assert.Equal("trailers", Assert.Single(seen).Header("te"));
    }

    [Fact]
    public async Task HopByHopResponseHeadersAreRemovedAndEnvoysAdded()
    {
        await using var upstream = RawUpstream.Serve(_ =>
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, x-foo\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: foo\r\n" +
            "Transfer-Encoding: chunked\r\nServer: upstream\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\nX-Up: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port));

        var response = await SendAsync(legate, "GET /r HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal("abc", response.BodyText);
        Assert.Null(response.Header("connection"));
        Assert.Null(response.Header("keep-alive"));
        Assert.Null(response.Header("proxy-connection"));
        Assert.Null(response.Header("upgrade"));
        Assert.Equal(1, response.Count("transfer-encoding"));
        Assert.Equal("1", response.Header("x-up"));
        Assert.Equal("envoy", response.Header("server"));
        Assert.NotEqual("Mon, 01 Jan 2001 00:00:00 GMT", response.Header("date"));
        Assert.Matches("^[A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT$", response.Header("date")!);
        Assert.Matches("^\\d+$", response.Header("x-envoy-upstream-service-time")!);
    }

    [Fact]
    public async Task ServerHeaderPassThroughKeepsTheUpstreamsValue()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\nServer: upstream\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = "server_header_transformation: PASS_THROUGH" });

        var response = await SendAsync(legate, "GET /s HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal("upstream", response.Header("server"));
    }

    [Fact]
    public async Task SuppressEnvoyHeadersRemovesTheRoutersHeadersBothWays()
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Router = "suppress_envoy_headers: true" });

        var response = await SendAsync(legate, "GET /q HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Null(response.Header("x-envoy-upstream-service-time"));
        Assert.Null(Assert.Single(seen).Header("x-envoy-expected-rq-timeout-ms"));
    }

    [Fact]
    public async Task RouteTimeoutIsAnnouncedUpstreamAndAbsentWhenDisabled()
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Routes = "- match: { prefix: \"/none\" }\n  route: { cluster: backend, timeout: 0s }",
            Route = "timeout: 2.5s",
        });

        await SendAsync(legate, "GET /some HTTP/1.1\r\nHost: a\r\n\r\n");
        await SendAsync(legate, "GET /none HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal("2500", seen[0].Header("x-envoy-expected-rq-timeout-ms"));
        Assert.Null(seen[1].Header("x-envoy-expected-rq-timeout-ms"));
    }

    [Theory]
    //          use_remote_address, trusted hops, client XFF,         upstream XFF,                  x-envoy-external-address, x-envoy-internal
    [InlineData(false, 0, null, null, null, null)]
    [InlineData(false, 0, "10.0.0.1", "10.0.0.1", null, "true")]
    [InlineData(false, 0, "1.2.3.4", "1.2.3.4", null, null)]
    [InlineData(false, 0, "10.0.0.1, 10.0.0.2", "10.0.0.1, 10.0.0.2", null, null)]
    [InlineData(false, 1, "10.0.0.1, 1.2.3.4", "10.0.0.1, 1.2.3.4", null, null)]
    [InlineData(true, 0, null, "127.0.0.1", null, "true")]
    [InlineData(true, 0, "1.2.3.4", "1.2.3.4, 127.0.0.1", "127.0.0.1", null)]
    [InlineData(true, 1, "1.2.3.4", "1.2.3.4, 127.0.0.1", "1.2.3.4", null)]
    [InlineData(true, 2, "1.2.3.4, 5.6.7.8", "1.2.3.4, 5.6.7.8, 127.0.0.1", "1.2.3.4", null)]
    [InlineData(true, 2, "5.6.7.8", "5.6.7.8, 127.0.0.1", "127.0.0.1", null)]
    public async Task ForwardedForAndInternalDetectionFollowEnvoy(bool useRemoteAddress, int trustedHops, string? clientXff, string? upstreamXff, string? externalAddress, string? internalFlag)
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Hcm = $"use_remote_address: {(useRemoteAddress ? "true" : "false")}\nxff_num_trusted_hops: {trustedHops.ToString(CultureInfo.InvariantCulture)}",
        });

        await SendAsync(legate, "GET /xff HTTP/1.1\r\nHost: a\r\n" + (clientXff is null ? "" : "X-Forwarded-For: " + clientXff + "\r\n") + "X-Envoy-Internal: forged\r\n\r\n");

        var request = Assert.Single(seen);
        Assert.Equal(upstreamXff, request.Header("x-forwarded-for"));
        Assert.Equal(externalAddress, request.Header("x-envoy-external-address"));
        Assert.Equal(internalFlag, request.Header("x-envoy-internal"));
    }

    [Fact]
    public async Task SkipXffAppendLeavesTheHeaderAsReceived()
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = "use_remote_address: true\nskip_xff_append: true" });

        await SendAsync(legate, "GET /s HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n");

        Assert.Equal("1.2.3.4", Assert.Single(seen).Header("x-forwarded-for"));
    }

    [Theory]
    [InlineData(true, 0, "http")]
    [InlineData(true, 1, "https")]
    [InlineData(false, 0, "https")]
    public async Task ForwardedProtoIsTrustedOnlyFromTrustedHops(bool useRemoteAddress, int trustedHops, string expected)
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Hcm = $"use_remote_address: {(useRemoteAddress ? "true" : "false")}\nxff_num_trusted_hops: {trustedHops.ToString(CultureInfo.InvariantCulture)}",
        });

        await SendAsync(legate, "GET /p HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\n\r\n");

        Assert.Equal(expected, Assert.Single(seen).Header("x-forwarded-proto"));
    }

    [Theory]
    [InlineData(true, "1.2.3.4", false)]
    [InlineData(true, null, true)]
    [InlineData(false, null, false)]
    [InlineData(false, "10.1.1.1", true)]
    public async Task EnvoyControlHeadersFromExternalClientsAreRemoved(bool useRemoteAddress, string? clientXff, bool kept)
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = $"use_remote_address: {(useRemoteAddress ? "true" : "false")}" });

        await SendAsync(legate, "GET /c HTTP/1.1\r\nHost: a\r\n" + (clientXff is null ? "" : "X-Forwarded-For: " + clientXff + "\r\n") +
            "X-Envoy-Retry-On: 5xx\r\nX-Envoy-Max-Retries: 3\r\nX-Envoy-Upstream-Rq-Timeout-Ms: 60000\r\nX-Envoy-Original-Url: /x\r\n\r\n");

        // The timeout header is long: a trusted caller's 10 ms would time out before a loaded
        // machine had connected upstream, and the upstream would see nothing.
        var request = Assert.Single(seen);
        Assert.Equal(kept ? "/x" : null, request.Header("x-envoy-original-url"));

        // The router consumes the retry and timeout headers of a trusted caller (Envoy's
        // RetryStateImpl and finalTimeout), so they never reach the upstream either way.
        Assert.Null(request.Header("x-envoy-retry-on"));
        Assert.Null(request.Header("x-envoy-max-retries"));
        Assert.Null(request.Header("x-envoy-upstream-rq-timeout-ms"));
    }

    [Theory]
    // use_remote_address, preserve_external_request_id, client XFF (makes the request external), preserved
    [InlineData(false, false, null, true)]
    [InlineData(true, false, "1.2.3.4", false)]
    [InlineData(true, true, "1.2.3.4", true)]
    [InlineData(true, false, null, true)]
    public async Task RequestIdIsGeneratedOrPreservedAsEnvoy(bool useRemoteAddress, bool preserve, string? clientXff, bool preserved)
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Hcm = $"use_remote_address: {(useRemoteAddress ? "true" : "false")}\npreserve_external_request_id: {(preserve ? "true" : "false")}\nalways_set_request_id_in_response: true",
        });

        var response = await SendAsync(legate, "GET /id HTTP/1.1\r\nHost: a\r\nX-Request-Id: client-id\r\n" + (clientXff is null ? "" : "X-Forwarded-For: " + clientXff + "\r\n") + "\r\n");
        var fresh = await SendAsync(legate, "GET /id2 HTTP/1.1\r\nHost: a\r\n\r\n");

        var id = seen[0].Header("x-request-id")!;
        if (preserved)
        {
            Assert.Equal("client-id", id);
        }
        else
        {
            Assert.Matches(UuidV4(), id);
        }

        Assert.Equal(id, response.Header("x-request-id"));
        Assert.Matches(UuidV4(), seen[1].Header("x-request-id")!);
        Assert.Equal(seen[1].Header("x-request-id"), fresh.Header("x-request-id"));
    }

    [Fact]
    public async Task ViaIsAppendedBothWays()
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen, "HTTP/1.1 200 OK\r\nVia: 1.1 origin\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = "via: legate-test" });

        var response = await SendAsync(legate, "GET /v HTTP/1.1\r\nHost: a\r\nVia: 1.0 client-proxy\r\n\r\n");

        Assert.Equal("1.0 client-proxy, legate-test", Assert.Single(seen).Header("via"));
        Assert.Equal("1.1 origin, legate-test", response.Header("via"));
    }

    [Theory]
    [InlineData("", "example.com:{port}", "example.com:{port}")]
    [InlineData("strip_matching_host_port: true", "example.com:{port}", "example.com")]
    [InlineData("strip_matching_host_port: true", "example.com:9999", "example.com:9999")]
    [InlineData("strip_any_host_port: true", "example.com:9999", "example.com")]
    [InlineData("strip_any_host_port: true", "[::1]:9999", "[::1]")]
    public async Task HostPortStripping(string hcm, string host, string expected)
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = hcm });
        var port = legate.ListenerEndpoint("web").Port.ToString(CultureInfo.InvariantCulture);

        await SendAsync(legate, "GET /host HTTP/1.1\r\nHost: " + host.Replace("{port}", port, StringComparison.Ordinal) + "\r\n\r\n");

        Assert.Equal(expected.Replace("{port}", port, StringComparison.Ordinal), Assert.Single(seen).Header("host"));
    }

    [Theory]
    [InlineData("ALLOW", 200, "1")]
    [InlineData("DROP_HEADER", 200, null)]
    [InlineData("REJECT_REQUEST", 400, null)]
    public async Task HeadersWithUnderscores(string action, int status, string? forwarded)
    {
        var seen = new List<RawRequest>();
        await using var upstream = Capture(seen);
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = "common_http_protocol_options: { headers_with_underscores_action: " + action + " }" });
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var response = await SendAsync(legate, "GET /u HTTP/1.1\r\nHost: a\r\nx_under: 1\r\n\r\n");

        Assert.Equal(status, response.Status);
        if (status == 200)
        {
            Assert.Equal(forwarded, Assert.Single(seen).Header("x_under"));
        }
        else
        {
            Assert.Empty(seen);
            Assert.Equal("http1.unexpected_underscore", (await recorder.WaitForAsync(_ => true)).Details);
        }
    }

    [Fact]
    public async Task HeadersOverMaxRequestHeadersKbAre431()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = "max_request_headers_kb: 1" });
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var small = await SendAsync(legate, "GET /ok HTTP/1.1\r\nHost: a\r\nX-Pad: " + new string('p', 500) + "\r\n\r\n");
        var large = await SendAsync(legate, "GET /big HTTP/1.1\r\nHost: a\r\nX-Pad: " + new string('p', 2000) + "\r\n\r\n");

        Assert.Equal(200, small.Status);
        Assert.Equal(431, large.Status);
        Assert.Equal("close", large.Header("connection"));
        Assert.Equal("http1.headers_too_large", (await recorder.WaitForAsync(s => s.ResponseCode == 431)).Details);
    }

    [Fact]
    public async Task MoreHeadersThanMaxHeadersCountAre431()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = "common_http_protocol_options: { max_headers_count: 5 }" });
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));

        var ok = await SendAsync(legate, "GET /ok HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
        var tooMany = await SendAsync(legate, "GET /many HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\n\r\n");

        Assert.Equal(200, ok.Status);
        Assert.Equal(431, tooMany.Status);
        Assert.Equal("http1.too_many_headers", (await recorder.WaitForAsync(s => s.ResponseCode == 431)).Details);
    }

    private static async Task<RawResponse> SendAsync(InProcessLegate legate, string request)
    {
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        await client.WriteAsync(request);
        return await client.ReadResponseAsync();
    }

    [GeneratedRegex("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")]
    private static partial Regex UuidV4();
}
