using System.Net;
using System.Text;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>retry_policy end to end: conditions, counts, stats, previous_hosts, per-try timeouts, body replay, URX, request headers.</summary>
public sealed class RetryTests
{
    private const string Flags = """
          response_headers_to_add:
          - header: { key: x-flags, value: "%RESPONSE_FLAGS%" }
        """;

    private static string Route(string retryPolicy, string extra = "") => $$"""
        - match: { prefix: "/" }
          route:
            cluster: backend
            retry_policy:
        {{Indent(retryPolicy, 6)}}{{Flags}}{{extra}}
        """;

    private static Task<InProcessLegate> StartAsync(string retryPolicy, params int[] ports) =>
        InProcessLegate.StartAsync(Build(AllDomains(Route(retryPolicy)), [("backend", ports)]));

    [Fact]
    public async Task A5xxIsRetriedUntilAnAttemptSucceeds()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("finally")).OnPath("/", UpstreamResponse.Text("busy") with { Status = 503 }, times: 2);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await StartAsync("retry_on: 5xx\nnum_retries: 3", upstream.Port);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("finally", await response.Content.ReadAsStringAsync());
        Assert.Equal(3, upstream.Log.Count);
        Assert.Equal(2, Counter(legate, "cluster.backend.upstream_rq_retry"));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_retry_success"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_retry_limit_exceeded"));
        Assert.Equal("-", Assert.Single(response.Headers.GetValues("x-flags")));
    }

    [Fact]
    public async Task ExhaustedRetriesForwardTheLastResponseWithUrx()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("still busy") with { Status = 503 });
        await using var legate = await StartAsync("retry_on: 5xx\nnum_retries: 2", upstream.Port);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("still busy", await response.Content.ReadAsStringAsync());
        Assert.Equal(3, upstream.Log.Count);
        Assert.Equal(2, Counter(legate, "cluster.backend.upstream_rq_retry"));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_retry_limit_exceeded"));
        Assert.Equal("URX", Assert.Single(response.Headers.GetValues("x-flags")));
    }

    [Theory]
    [InlineData("retry_on: gateway-error", 500, null, false)]
    [InlineData("retry_on: gateway-error", 502, null, true)]
    [InlineData("retry_on: 5xx", 404, null, false)]
    [InlineData("retry_on: retriable-4xx", 409, null, true)]
    [InlineData("retry_on: retriable-4xx", 429, null, false)]
    [InlineData("retry_on: retriable-status-codes\nretriable_status_codes: [418]", 418, null, true)]
    [InlineData("retry_on: retriable-headers\nretriable_headers: [{ name: x-upstream-retry, string_match: { exact: please } }]", 200, "x-upstream-retry", true)]
    [InlineData("retry_on: envoy-ratelimited", 429, "x-envoy-ratelimited", true)]
    [InlineData("retry_on: unavailable", 200, "grpc-status:14", true)]
    [InlineData("retry_on: cancelled,deadline-exceeded", 200, "grpc-status:14", false)]
    [InlineData("retry_on: resource-exhausted", 200, "grpc-status:8", true)]
    [InlineData("retry_on: 5xx", 503, "x-envoy-overloaded", false)]
    public async Task ConditionsDecideWhatIsRetried(string policy, int status, string? header, bool retried)
    {
        var first = UpstreamResponse.Text("first") with { Status = status };
        if (header is not null)
        {
            var parts = header.Split(':');
            first = first.WithHeader(parts[0], parts.Length > 1 ? parts[1] : "please");
        }

        var script = new UpstreamScript(UpstreamResponse.Text("second")).OnPath("/", first, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await StartAsync(policy, upstream.Port);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(retried ? "second" : "first", await response.Content.ReadAsStringAsync());
        Assert.Equal(retried ? 2 : 1, upstream.Log.Count);
    }

    [Fact]
    public async Task ConnectFailureIsRetried()
    {
        await using var live = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("live"));
        using var deadRefusing = FreePort.Refusing();
        var dead = deadRefusing.Port;
        await using var legate = await StartAsync("retry_on: connect-failure\nnum_retries: 1", dead, live.Port);

        for (var i = 0; i < 4; i++)
        {
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
            Assert.Equal("live", await response.Content.ReadAsStringAsync());
        }

        // Round robin sent about half of the first attempts to the dead host; each was retried.
        Assert.True(Counter(legate, "cluster.backend.upstream_rq_retry") >= 1);
        Assert.Equal(Counter(legate, "cluster.backend.upstream_cx_connect_fail"), Counter(legate, "cluster.backend.upstream_rq_retry"));
    }

    [Fact]
    public async Task PreviousHostsSendsTheRetryToAnotherHost()
    {
        await using var failing = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("failing") with { Status = 503 });
        await using var healthy = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("healthy"));
        var policy = """
            retry_on: 5xx
            num_retries: 1
            retry_host_predicate:
            - name: envoy.retry_host_predicates.previous_hosts
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate
            host_selection_retry_max_attempts: 20
            """;
        var yaml = Build(AllDomains(Route(policy)), [("backend", [failing.Port, healthy.Port])]);

        // The failing host gets 10 times the weight: without previous_hosts its retry would land there again.
        yaml = yaml.Replace($"port_value: {failing.Port} }} }} }}\n", $"port_value: {failing.Port} }} }} }}\n          load_balancing_weight: 10\n", StringComparison.Ordinal);
        await using var legate = await InProcessLegate.StartAsync(yaml);

        for (var i = 0; i < 5; i++)
        {
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
            Assert.Equal("healthy", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(5, healthy.Log.Count);
    }

    [Fact]
    public async Task PerTryTimeoutRetriesWithUpstreamRqPerTryTimeout()
    {
        var never = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Text("quick")).OnPath("/", UpstreamResponse.Text("slow") with { HoldUntil = never.Task }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);

        // The retry must answer within its own per-try timeout: generous, as the suite runs under load.
        await using var legate = await StartAsync("retry_on: 5xx\nnum_retries: 2\nper_try_timeout: 1s", upstream.Port);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal("quick", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_per_try_timeout"));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_retry"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_timeout"));
        never.SetResult();
    }

    [Fact]
    public async Task PerTryTimeoutsUntilNoneIsLeftAre504UtWithUrx()
    {
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("slow") with { HoldUntil = never.Task });
        await using var legate = await StartAsync("retry_on: reset\nnum_retries: 1\nper_try_timeout: 0.2s", upstream.Port);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream request timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal("UT,URX", Assert.Single(response.Headers.GetValues("x-flags")));
        Assert.Equal(2, Counter(legate, "cluster.backend.upstream_rq_per_try_timeout"));
        Assert.Equal(2, upstream.Log.Count);
        never.SetResult();
    }

    [Fact]
    public async Task TheRequestBodyIsReplayedOnEveryAttempt()
    {
        var script = new UpstreamScript(UpstreamResponse.Echo()).OnPath("/upload", UpstreamResponse.Text("busy") with { Status = 503 }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await StartAsync("retry_on: 5xx", upstream.Port);

        // Streamed without a content-length (chunked), in several pieces.
        var content = new StreamContent(new SlowStream(Encoding.UTF8.GetBytes("hello, retried world"), 5));
        using var response = await legate.Http.PostAsync(legate.ListenerUri("web", "/upload"), content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var requests = await upstream.Log.WaitForRequestsAsync(2);
        Assert.All(requests, r => Assert.Equal("hello, retried world", r.BodyText));
    }

    [Fact]
    public async Task ABodyBeyondTheBufferLimitIsNotRetried()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("busy") with { Status = 503 });
        var yaml = Build(AllDomains(Route("retry_on: 5xx\nnum_retries: 3")), [("backend", [upstream.Port])])
            .Replace("    filter_chains:", "    per_connection_buffer_limit_bytes: 1024\n    filter_chains:", StringComparison.Ordinal);
        await using var legate = await InProcessLegate.StartAsync(yaml);

        using var response = await legate.Http.PostAsync(legate.ListenerUri("web", "/"), new ByteArrayContent(new byte[8192]));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, upstream.Log.Count);
        Assert.Equal(1, Counter(legate, "cluster.backend.retry_or_shadow_abandoned"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_rq_retry"));
    }

    [Fact]
    public async Task RetryHeadersOfATrustedCallerAreHonouredAndNotForwarded()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("busy") with { Status = 503 });
        var routes = """
            - match: { prefix: "/" }
              route: { cluster: backend }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])], hcmExtra: "use_remote_address: true\n"));

        using (var trusted = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/")))
        {
            trusted.Headers.Add("x-envoy-retry-on", "5xx");
            trusted.Headers.Add("x-envoy-max-retries", "2");
            (await legate.Http.SendAsync(trusted)).Dispose();
        }

        var seen = await upstream.Log.WaitForRequestsAsync(3);
        Assert.All(seen, r => Assert.Null(r.Header("x-envoy-retry-on")));
        Assert.All(seen, r => Assert.Null(r.Header("x-envoy-max-retries")));

        // An external caller (it came through another proxy: two x-forwarded-for entries) is not trusted.
        upstream.Log.Clear();
        using (var external = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/")))
        {
            external.Headers.Add("x-forwarded-for", "203.0.113.7");
            external.Headers.Add("x-envoy-retry-on", "5xx");
            external.Headers.Add("x-envoy-max-retries", "2");
            (await legate.Http.SendAsync(external)).Dispose();
        }

        Assert.Equal(1, upstream.Log.Count);
    }

    [Fact]
    public async Task AttemptCountIsSentUpstreamAndDownstreamWhenAsked()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("ok")).OnPath("/", UpstreamResponse.Text("busy") with { Status = 503 }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        var virtualHost = "include_request_attempt_count: true\ninclude_attempt_count_in_response: true\nretry_policy: { retry_on: 5xx }\n";
        var routes = """
            - match: { prefix: "/" }
              route: { cluster: backend }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes, virtualHost), [("backend", [upstream.Port])]));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal("2", Assert.Single(response.Headers.GetValues("x-envoy-attempt-count")));
        var requests = await upstream.Log.WaitForRequestsAsync(2);
        Assert.Equal(["1", "2"], requests.Select(r => r.Header("x-envoy-attempt-count")));
    }

    [Fact]
    public async Task Http2UpstreamRetriesToo()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("h2 ok")).OnPath("/", UpstreamResponse.Text("busy") with { Status = 503 }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script, UpstreamProtocols.Http2);
        var cluster = """
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config:
                  http2_protocol_options: {}
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(Route("retry_on: 5xx")), [("backend", [upstream.Port])], clusterExtra: cluster));

        using var response = await legate.Http.PostAsync(legate.ListenerUri("web", "/"), new StringContent("body"));

        Assert.Equal("h2 ok", await response.Content.ReadAsStringAsync());
        var requests = await upstream.Log.WaitForRequestsAsync(2);
        Assert.All(requests, r => Assert.Equal("body", r.BodyText));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_retry"));
    }

    /// <summary>A request body that arrives in several reads (so it is streamed, chunked).</summary>
    internal sealed class SlowStream(byte[] data, int pieceSize) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(count, pieceSize), data.Length - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
