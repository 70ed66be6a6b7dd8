using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// Route <c>priority</c> selects the cluster's circuit-breaker thresholds: a HIGH route's requests
/// count against the HIGH <c>max_requests</c> (and its gauges), a DEFAULT route's against DEFAULT,
/// over HTTP/1.1 and HTTP/2 upstreams (each releases its slot to the priority it took it from).
/// </summary>
public sealed class RoutePriorityTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task HighPriorityRoutesUseTheHighThresholds(bool http2)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(
            new UpstreamScript(UpstreamResponse.Text("ok") with { HoldUntil = gate.Task }).OnPrefix("/quick", UpstreamResponse.Text("quick")),
            http2 ? UpstreamProtocols.Http2 : UpstreamProtocols.Http1);
        var routes = """
            - match: { prefix: "/high" }
              route: { cluster: backend, priority: HIGH, timeout: 60s }
            - match: { prefix: "/" }
              route: { cluster: backend, timeout: 60s }
            """;
        var clusterExtra = """
            circuit_breakers:
              thresholds:
              - { priority: DEFAULT, max_requests: 3 }
              - { priority: HIGH, max_requests: 1, track_remaining: true }

            """ + (http2 ? "http2_protocol_options: {}\n" : string.Empty);
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])], clusterExtra: clusterExtra));
        using var client = TestHttp.CreateClient();

        // One HIGH request held by the upstream fills the HIGH max_requests of 1.
        var heldHigh = client.GetAsync(legate.ListenerUri("web", "/high/held"));
        await upstream.Log.WaitForRequestsAsync(1, TimeSpan.FromSeconds(30));
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.high.rq_open"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.high.remaining_rq"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.default.rq_open"));

        // A second HIGH request overflows at once, without reaching the upstream…
        using (var overflow = await client.GetAsync(legate.ListenerUri("web", "/high/quick")).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, overflow.StatusCode);
            Assert.Equal("true", overflow.Headers.GetValues("x-envoy-overloaded").Single());
        }

        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_pending_overflow"));

        // …while DEFAULT requests still have their own three slots: two held, one more served.
        var heldDefault = new[] { client.GetAsync(legate.ListenerUri("web", "/a")), client.GetAsync(legate.ListenerUri("web", "/b")) };
        await upstream.Log.WaitForRequestsAsync(3, TimeSpan.FromSeconds(30));
        using (var quick = await client.GetAsync(legate.ListenerUri("web", "/quick")).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.OK, quick.StatusCode);
            Assert.Equal("quick", await quick.Content.ReadAsStringAsync());
        }

        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_pending_overflow"));
        Assert.DoesNotContain(upstream.Log.Requests, r => r.RawTarget == "/high/quick");

        // Every slot goes back to the priority it came from.
        gate.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await heldHigh.WaitAsync(TimeSpan.FromSeconds(30))).StatusCode);
        foreach (var response in await Task.WhenAll(heldDefault).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await WaitUntilAsync(() => Gauge(legate, "cluster.backend.upstream_rq_active") == 0);
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.high.rq_open"));
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.high.remaining_rq"));
        using var again = await client.GetAsync(legate.ListenerUri("web", "/high/quick")).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task HighPriorityRoutesHaveTheirOwnConnectionPoolAndThresholds()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(
            new UpstreamScript(UpstreamResponse.Text("ok") with { HoldUntil = gate.Task }).OnPrefix("/high/quick", UpstreamResponse.Text("quick")));
        var routes = """
            - match: { prefix: "/high" }
              route: { cluster: backend, priority: HIGH, timeout: 60s }
            - match: { prefix: "/" }
              route: { cluster: backend, timeout: 60s }
            """;
        var clusterExtra = """
            circuit_breakers:
              thresholds:
              - { priority: DEFAULT, max_connections: 1, max_pending_requests: 1, max_connection_pools: 1, track_remaining: true }
              - { priority: HIGH, max_connections: 1, max_pending_requests: 1, max_connection_pools: 1, track_remaining: true }

            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])], clusterExtra: clusterExtra));
        using var client = TestHttp.CreateClient();

        // DEFAULT is saturated: one request holds the only connection, a second waits as pending…
        var held = client.GetAsync(legate.ListenerUri("web", "/held"));
        await upstream.Log.WaitForRequestsAsync(1, TimeSpan.FromSeconds(30));
        var pending = client.GetAsync(legate.ListenerUri("web", "/pending"));
        await WaitUntilAsync(() => Gauge(legate, "cluster.backend.circuit_breakers.default.rq_pending_open") == 1, "a DEFAULT request pending");
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.default.remaining_pending"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.default.remaining_cx"));
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.default.cx_open"));

        // …and a third overflows (503 UO, upstream_rq_pending_overflow).
        using (var overflow = await client.GetAsync(legate.ListenerUri("web", "/overflow")).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, overflow.StatusCode);
            Assert.Equal("true", overflow.Headers.GetValues("x-envoy-overloaded").Single());
        }

        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_pending_overflow"));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_cx_overflow"));
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.high.remaining_cx_pools"));

        // A HIGH route still gets through: its own pool (Envoy's pool per priority), connection and thresholds.
        using (var high = await client.GetAsync(legate.ListenerUri("web", "/high/quick")).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.OK, high.StatusCode);
            Assert.Equal("quick", await high.Content.ReadAsStringAsync());
        }

        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_pending_overflow"));
        Assert.Equal(2, Counter(legate, "cluster.backend.upstream_cx_total"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.high.remaining_cx_pools"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.high.remaining_cx"));
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.high.remaining_pending"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.default.remaining_cx_pools"));

        // The pending DEFAULT request gets the DEFAULT connection once it is released.
        gate.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await held.WaitAsync(TimeSpan.FromSeconds(30))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await pending.WaitAsync(TimeSpan.FromSeconds(30))).StatusCode);
        Assert.Equal(2, Counter(legate, "cluster.backend.upstream_cx_total"));
        await WaitUntilAsync(() => Gauge(legate, "cluster.backend.circuit_breakers.default.rq_pending_open") == 0, "nothing pending");
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.default.remaining_pending"));
    }

    [Fact]
    public async Task HighPriorityRoutesHaveTheirOwnHttp2PoolAndThresholds()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"), UpstreamProtocols.Http2);
        var routes = """
            - match: { prefix: "/high" }
              route: { cluster: backend, priority: HIGH }
            - match: { prefix: "/" }
              route: { cluster: backend }
            """;
        var clusterExtra = """
            circuit_breakers:
              thresholds:
              - { priority: DEFAULT, max_connections: 1, max_connection_pools: 1, track_remaining: true }
              - { priority: HIGH, max_connections: 1, max_connection_pools: 1, track_remaining: true }
            http2_protocol_options: {}

            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])], clusterExtra: clusterExtra));
        using var client = TestHttp.CreateClient();

        // A DEFAULT request: the DEFAULT pool and its connection count against DEFAULT only.
        using (var first = await client.GetAsync(legate.ListenerUri("web", "/a")).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.default.remaining_cx_pools"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.default.remaining_cx"));
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.high.remaining_cx_pools"));
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.high.remaining_cx"));
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_cx_http2_total"));

        // A HIGH request gets its own pool, hence its own HTTP/2 connection, against the HIGH thresholds.
        using (var high = await client.GetAsync(legate.ListenerUri("web", "/high/b")).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.OK, high.StatusCode);
        }

        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.high.remaining_cx_pools"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.high.remaining_cx"));
        Assert.Equal(2, Counter(legate, "cluster.backend.upstream_cx_http2_total"));

        // Both pools keep multiplexing on their own connection.
        for (var i = 0; i < 3; i++)
        {
            using var again = await client.GetAsync(legate.ListenerUri("web", i % 2 == 0 ? "/c" : "/high/d")).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }

        Assert.Equal(2, Counter(legate, "cluster.backend.upstream_cx_http2_total"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_cx_overflow"));
        Assert.Equal(0, Counter(legate, "cluster.backend.upstream_cx_pool_overflow"));
    }

    [Fact]
    public async Task AnHttp2PoolBeyondMaxConnectionPoolsOverflows()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"), UpstreamProtocols.Http2);
        var routes = """
            - match: { prefix: "/high" }
              route: { cluster: backend, priority: HIGH }
            - match: { prefix: "/" }
              route: { cluster: backend }
            """;
        var clusterExtra = """
            circuit_breakers:
              thresholds:
              - { priority: HIGH, max_connection_pools: 0 }
            http2_protocol_options: {}

            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])], clusterExtra: clusterExtra));

        // HIGH has no pool to spare: 503 UO at once, the upstream never sees it.
        using (var high = await legate.Http.GetAsync(legate.ListenerUri("web", "/high/x")).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, high.StatusCode);
            Assert.Equal("true", high.Headers.GetValues("x-envoy-overloaded").Single());
        }

        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_cx_pool_overflow"));

        // DEFAULT is unaffected.
        using (var normal = await legate.Http.GetAsync(legate.ListenerUri("web", "/y")).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.OK, normal.StatusCode);
        }

        Assert.Equal(1, upstream.Log.Count);
        Assert.Equal("/y", upstream.Log.Requests[0].RawTarget);
        await WaitUntilAsync(() => Gauge(legate, "cluster.backend.upstream_rq_active") == 0, "no request active");
    }
}
