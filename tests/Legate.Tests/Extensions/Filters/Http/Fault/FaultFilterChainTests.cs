using Legate.Http;

namespace Legate.Tests.Extensions.Filters.Http.Fault;

/// <summary>
/// The fault filter in the real filter manager with a clock the test moves: response flags,
/// details, the delay holding the request, and the active-fault limit.
/// </summary>
public sealed class FaultFilterChainTests
{
    private const string Prefix = "http.ingress.fault.";

    [Fact]
    public async Task DelayHoldsTheRequestUntilTheClockMovesThenContinuesWithDI()
    {
        var clock = new ManualClock();
        using var chain = new FilterChainHarness(Config("delay: { fixed_delay: 5s, percentage: { numerator: 100 } }"), clock);
        var exchange = chain.Begin("/");

        var decoding = exchange.Stream.DecodeHeadersAsync(endStream: true).AsTask();
        await clock.WaitForTimersAsync(1);

        Assert.False(decoding.IsCompleted);
        Assert.Null(exchange.Response.Status);
        Assert.Equal(1, chain.Gauge(Prefix + "active_faults"));
        clock.Advance(TimeSpan.FromSeconds(5));
        await decoding;

        Assert.Equal(200, exchange.Response.Status);
        Assert.Equal("direct\n", exchange.Response.Body);
        Assert.True(exchange.Info.HasResponseFlag(ResponseFlags.DelayInjected));
        Assert.False(exchange.Info.HasResponseFlag(ResponseFlags.FaultInjected));
        Assert.Equal(1, chain.Counter(Prefix + "delays_injected"));
        Assert.Equal(0, chain.Gauge(Prefix + "active_faults"));
        exchange.Stream.End();
    }

    [Fact]
    public async Task AbortIsALocalReplyWithFIAndDetails()
    {
        using var chain = new FilterChainHarness(Config("abort: { http_status: 503, percentage: { numerator: 100 } }"));
        var exchange = chain.Begin("/");

        await exchange.Stream.DecodeHeadersAsync(endStream: true);

        Assert.Equal(503, exchange.Response.Status);
        Assert.Equal("fault filter abort", exchange.Response.Body);
        Assert.Equal("text/plain", exchange.Response.Headers["content-type"]);
        Assert.True(exchange.Info.HasResponseFlag(ResponseFlags.FaultInjected));
        Assert.False(exchange.Info.HasResponseFlag(ResponseFlags.DelayInjected));
        Assert.Equal("fault_filter_abort", exchange.Info.ResponseCodeDetails);
        Assert.Equal(1, chain.Counter(Prefix + "aborts_injected"));
        Assert.Equal(1, chain.Gauge(Prefix + "active_faults"));
        exchange.Stream.End();
        Assert.Equal(0, chain.Gauge(Prefix + "active_faults"));
    }

    [Fact]
    public async Task DelayThenAbortSetsBothFlags()
    {
        var clock = new ManualClock();
        using var chain = new FilterChainHarness(
            Config("delay: { fixed_delay: 1s, percentage: { numerator: 100 } }\n                  abort: { http_status: 429, percentage: { numerator: 100 } }"), clock);
        var exchange = chain.Begin("/");

        var decoding = exchange.Stream.DecodeHeadersAsync(endStream: true).AsTask();
        await clock.WaitForTimersAsync(1);
        Assert.Null(exchange.Response.Status);
        clock.Advance(TimeSpan.FromSeconds(1));
        await decoding;

        Assert.Equal(429, exchange.Response.Status);
        Assert.True(exchange.Info.HasResponseFlag(ResponseFlags.DelayInjected | ResponseFlags.FaultInjected));
        Assert.True(exchange.Info.HasResponseFlag(ResponseFlags.DelayInjected));
        Assert.True(exchange.Info.HasResponseFlag(ResponseFlags.FaultInjected));
        Assert.Equal(1, chain.Counter(Prefix + "delays_injected"));
        Assert.Equal(1, chain.Counter(Prefix + "aborts_injected"));

        // One request carrying two faults is charged one active fault.
        Assert.Equal(1, chain.Gauge(Prefix + "active_faults"));
        exchange.Stream.End();
        Assert.Equal(0, chain.Gauge(Prefix + "active_faults"));
    }

    [Fact]
    public async Task MaxActiveFaultsLetsTheOverflowingRequestThrough()
    {
        var clock = new ManualClock();
        using var chain = new FilterChainHarness(Config("delay: { fixed_delay: 1s, percentage: { numerator: 100 } }\n                  max_active_faults: 1"), clock);
        var first = chain.Begin("/");
        var firstDecoding = first.Stream.DecodeHeadersAsync(endStream: true).AsTask();
        await clock.WaitForTimersAsync(1);

        var second = chain.Begin("/");
        await second.Stream.DecodeHeadersAsync(endStream: true);

        Assert.Equal(200, second.Response.Status);
        Assert.False(second.Info.HasResponseFlag(ResponseFlags.DelayInjected));
        Assert.Equal(1, chain.Counter(Prefix + "faults_overflow"));
        Assert.False(firstDecoding.IsCompleted);
        second.Stream.End();

        clock.Advance(TimeSpan.FromSeconds(1));
        await firstDecoding;
        Assert.Equal(200, first.Response.Status);
        Assert.True(first.Info.HasResponseFlag(ResponseFlags.DelayInjected));
        Assert.Equal(1, chain.Counter(Prefix + "delays_injected"));
        first.Stream.End();
    }

    [Fact]
    public async Task ResetDuringTheDelayEndsTheFault()
    {
        var clock = new ManualClock();
        using var chain = new FilterChainHarness(Config("delay: { fixed_delay: 1s, percentage: { numerator: 100 } }"), clock);
        var exchange = chain.Begin("/");
        var decoding = exchange.Stream.DecodeHeadersAsync(endStream: true).AsTask();
        await clock.WaitForTimersAsync(1);

        exchange.Stream.ResetStream();
        await decoding;
        exchange.Stream.End();

        Assert.Null(exchange.Response.Status);
        Assert.True(exchange.Response.Reset);
        Assert.Equal(0, chain.Gauge(Prefix + "active_faults"));
    }

    [Fact]
    public async Task GrpcAbortOfAGrpcRequestIsHttp200WithGrpcStatus()
    {
        using var chain = new FilterChainHarness(Config("abort: { grpc_status: 14, percentage: { numerator: 100 } }"));
        var exchange = chain.Begin("/", ("content-type", "application/grpc"));

        await exchange.Stream.DecodeHeadersAsync(endStream: true);

        Assert.Equal(200, exchange.Response.Status);
        Assert.Equal("14", exchange.Response.Headers["grpc-status"]);
        Assert.Equal("fault filter abort", exchange.Response.Headers["grpc-message"]);
        Assert.Equal("application/grpc", exchange.Response.Headers["content-type"]);
        Assert.Equal(string.Empty, exchange.Response.Body);
        Assert.True(exchange.Info.HasResponseFlag(ResponseFlags.FaultInjected));
        exchange.Stream.End();
    }

    [Fact]
    public async Task GrpcAbortOfAPlainRequestIsA200LocalReply()
    {
        using var chain = new FilterChainHarness(Config("abort: { grpc_status: 14, percentage: { numerator: 100 } }"));
        var exchange = chain.Begin("/");

        await exchange.Stream.DecodeHeadersAsync(endStream: true);

        Assert.Equal(200, exchange.Response.Status);
        Assert.Equal("fault filter abort", exchange.Response.Body);
        Assert.False(exchange.Response.Headers.ContainsKey("grpc-status"));
        exchange.Stream.End();
    }

    [Theory]
    [InlineData(null, 200)]
    [InlineData("other-node", 200)]
    [InlineData("canary", 503)]
    public async Task DownstreamNodesSelectRequests(string? node, int expected)
    {
        using var chain = new FilterChainHarness(Config("abort: { http_status: 503, percentage: { numerator: 100 } }\n                  downstream_nodes: [canary]"));
        var exchange = node is null ? chain.Begin("/") : chain.Begin("/", ("x-envoy-downstream-service-node", node));

        await exchange.Stream.DecodeHeadersAsync(endStream: true);

        Assert.Equal(expected, exchange.Response.Status);
        exchange.Stream.End();
    }

    [Theory]
    [InlineData(null, 200)]
    [InlineData("no", 200)]
    [InlineData("yes", 503)]
    public async Task HeaderMatchersSelectRequests(string? value, int expected)
    {
        using var chain = new FilterChainHarness(Config("abort: { http_status: 503, percentage: { numerator: 100 } }\n                  headers: [{ name: x-chaos, string_match: { exact: \"yes\" } }]"));
        var exchange = value is null ? chain.Begin("/") : chain.Begin("/", ("x-chaos", value));

        await exchange.Stream.DecodeHeadersAsync(endStream: true);

        Assert.Equal(expected, exchange.Response.Status);
        exchange.Stream.End();
    }

    [Fact]
    public async Task UpstreamClusterLimitsFaultsToRoutesToThatCluster()
    {
        // The direct-response route has no cluster, so a fault for cluster "backend" never applies.
        using var chain = new FilterChainHarness(Config("abort: { http_status: 503, percentage: { numerator: 100 } }\n                  upstream_cluster: backend"));
        var exchange = chain.Begin("/");

        await exchange.Stream.DecodeHeadersAsync(endStream: true);

        Assert.Equal(200, exchange.Response.Status);
        Assert.Equal(0, chain.Counter(Prefix + "aborts_injected"));
        exchange.Stream.End();
    }

    [Fact]
    public async Task DownstreamClusterHeaderGetsItsOwnStats()
    {
        using var chain = new FilterChainHarness(Config("abort: { http_status: 503, percentage: { numerator: 100 } }"));
        var exchange = chain.Begin("/", ("x-envoy-downstream-service-cluster", "frontend"));

        await exchange.Stream.DecodeHeadersAsync(endStream: true);

        Assert.Equal(1, chain.Counter(Prefix + "frontend.aborts_injected"));
        Assert.Equal(1, chain.Counter(Prefix + "aborts_injected"));
        exchange.Stream.End();
    }

    [Fact]
    public void ResponseRateLimitIsNoLongerWarnedAsNotImplemented()
    {
        using var chain = new FilterChainHarness(Config("abort: { http_status: 503, percentage: { numerator: 100 } }\n                  response_rate_limit: { fixed_limit: { limit_kbps: 1 }, percentage: { numerator: 100 } }\n                  response_rate_limit_percent_runtime: my.key"));

        Assert.DoesNotContain(chain.Warnings, w => w.Path.Contains("response_rate_limit", StringComparison.Ordinal));
    }

    private static string Config(string fault) => $$"""
        static_resources:
          listeners:
          - name: ingress
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        direct_response: { status: 200, body: { inline_string: "direct\n" } }
                  http_filters:
                  - name: envoy.filters.http.fault
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                      {{string.Join("\n" + new string(' ', 14), fault.Split('\n').Select(line => line.Trim()))}}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
        """;
}
