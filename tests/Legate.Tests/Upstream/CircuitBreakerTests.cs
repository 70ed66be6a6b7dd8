using System.Globalization;
using System.Net;
using Legate.Config;
using Legate.Stats;
using Legate.Tests.Harness;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>Circuit breakers end to end: requests, pending requests and connections, retries and their stats.</summary>
public sealed class CircuitBreakerTests
{
    private static string Config(int upstreamPort, string thresholds, int? secondPort = null) => TestConfigs.Admin() + $$"""
        static_resources:
          listeners:
          - name: web
            address:
              socket_address: { address: 127.0.0.1, port_value: 0 }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: backend, timeout: 60s }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: backend
            connect_timeout: 5s
            circuit_breakers:
              thresholds:
              - {{thresholds}}
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstreamPort.ToString(CultureInfo.InvariantCulture)}} } } }
        {{(secondPort is { } port ? $"        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port.ToString(CultureInfo.InvariantCulture)} }} }} }}" : "")}}
        """;

    [Fact]
    public async Task MaxRequestsFiveOfFiftyConcurrentRequestsReachTheUpstreamTheRestGet503UOAtOnce()
    {
        // The upstream would take ~2 s per request: here it holds every request until the test lets go.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("slow") with { HoldUntil = gate.Task });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "{ max_requests: 5, track_remaining: true }"));
        using var client = TestHttp.CreateClient();
        var uri = legate.ListenerUri("web", "/work");

        var requests = Enumerable.Range(0, 50).Select(_ => client.GetAsync(uri)).ToArray();

        // 45 answers come back while the upstream still holds the 5 it has: they never waited for it.
        await WaitUntilAsync(() => requests.Count(r => r.IsCompleted) == 45);
        await upstream.Log.WaitForRequestsAsync(5, TimeSpan.FromSeconds(30));
        Assert.Equal(5, upstream.Log.ActiveRequests);
        var rejected = requests.Where(r => r.IsCompleted).Select(r => r.Result).ToArray();
        Assert.All(rejected, response =>
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("true", response.Headers.GetValues("x-envoy-overloaded").Single());
            Assert.Equal("upstream connect error or disconnect/reset before headers. reset reason: overflow", response.Content.ReadAsStringAsync().Result);
        });
        Assert.Equal(5, Gauge(legate, "cluster.backend.upstream_rq_active"));
        Assert.Equal(45, Counter(legate, "cluster.backend.upstream_rq_pending_overflow"));
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.default.rq_open"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.default.remaining_rq"));

        // The held requests are picked before the gate opens: once it does they may finish at any time.
        var held = requests.Where(r => !r.IsCompleted).ToArray();
        gate.SetResult();
        var served = await Task.WhenAll(held).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(5, served.Length);
        Assert.All(served, response => Assert.Equal(HttpStatusCode.OK, response.StatusCode));
        Assert.Equal(5, upstream.Log.MaxConcurrentRequests);
        Assert.Equal(5, upstream.Log.Requests.Count);
        await WaitUntilAsync(() => Gauge(legate, "cluster.backend.upstream_rq_active") == 0);
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.default.rq_open"));
        Assert.Equal(5, Gauge(legate, "cluster.backend.circuit_breakers.default.remaining_rq"));
    }

    [Fact]
    public async Task WithOneConnectionASecondRequestWaitsPendingAndAThirdOverflows()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok") with { HoldUntil = gate.Task });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "{ max_connections: 1, max_pending_requests: 1 }"));
        using var client = TestHttp.CreateClient();
        var uri = legate.ListenerUri("web", "/");

        var first = client.GetAsync(uri);
        await upstream.Log.WaitForRequestsAsync(1, TimeSpan.FromSeconds(30));
        var second = client.GetAsync(uri);
        await WaitUntilAsync(() => Gauge(legate, "cluster.backend.upstream_rq_pending_active") == 1);
        var third = await client.GetAsync(uri).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, third.StatusCode);
        Assert.Equal("true", third.Headers.GetValues("x-envoy-overloaded").Single());
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_rq_pending_overflow"));
        Assert.True(Counter(legate, "cluster.backend.upstream_cx_overflow") >= 1);
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.default.cx_open"));
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.default.rq_pending_open"));
        Assert.False(second.IsCompleted);

        gate.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await first.WaitAsync(TimeSpan.FromSeconds(30))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await second.WaitAsync(TimeSpan.FromSeconds(30))).StatusCode);
        // The pending request took the released connection: one connection, never two at once.
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_cx_total"));
        Assert.Equal(1, upstream.Log.MaxConcurrentRequests);
        Assert.Equal(0, Gauge(legate, "cluster.backend.upstream_rq_pending_active"));
    }

    [Fact]
    public async Task MaxConnectionPoolsAtDefaultPriorityRefusesASecondHostsPool()
    {
        // Two hosts, one connection pool allowed (the thresholds' priority left out: DEFAULT). Round
        // robin alternates: the first request's host gets the pool, the other host's request finds
        // none left and is answered 503 UO without reaching it.
        await using var a = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("a"));
        await using var b = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("b"));
        await using var legate = await InProcessLegate.StartAsync(Config(a.Port, "{ max_connection_pools: 1, track_remaining: true }", b.Port));
        using var client = TestHttp.CreateClient();
        var uri = legate.ListenerUri("web", "/");
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.default.cx_pool_open"));
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.default.remaining_cx_pools"));

        using var first = await client.GetAsync(uri).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var served = await first.Content.ReadAsStringAsync();
        Assert.Equal(1, Gauge(legate, "cluster.backend.circuit_breakers.default.cx_pool_open"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.default.remaining_cx_pools"));

        using var second = await client.GetAsync(uri).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        Assert.Equal("true", second.Headers.GetValues("x-envoy-overloaded").Single());
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_cx_pool_overflow"));
        Assert.Equal(0, Gauge(legate, "cluster.backend.circuit_breakers.high.cx_pool_open"));

        // The first host's pool still serves; the other host never saw a request.
        using var third = await client.GetAsync(uri).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
        Assert.Equal(served, await third.Content.ReadAsStringAsync());
        Assert.Equal(2, a.Log.Requests.Count + b.Log.Requests.Count);
        Assert.True(a.Log.Requests.Count == 0 || b.Log.Requests.Count == 0);
        Assert.Equal(1, Counter(legate, "cluster.backend.upstream_cx_pool_overflow"));
    }

    [Fact]
    public void RetrySlotsFollowMaxRetriesAndCountOverflow()
    {
        var store = new StatsStore();
        var cluster = Build(store, "thresholds: [ { max_retries: 2, track_remaining: true }, { priority: HIGH, max_retries: 1 } ]");

        Assert.Equal(2, store.Gauge("cluster.c.circuit_breakers.default.remaining_retries", ImportMode.Accumulate).Value);
        Assert.True(cluster.TryAcquireRetry());
        Assert.Equal(1, store.Gauge("cluster.c.circuit_breakers.default.remaining_retries", ImportMode.Accumulate).Value);
        Assert.True(cluster.TryAcquireRetry());
        Assert.False(cluster.TryAcquireRetry());
        Assert.Equal(0, store.Gauge("cluster.c.circuit_breakers.default.remaining_retries", ImportMode.Accumulate).Value);
        Assert.Equal(1, store.Counter("cluster.c.upstream_rq_retry_overflow").Value);
        Assert.Equal(1, store.Gauge("cluster.c.circuit_breakers.default.rq_retry_open", ImportMode.Accumulate).Value);
        cluster.ReleaseRetry();
        Assert.True(cluster.TryAcquireRetry());

        // HIGH has its own breakers.
        Assert.True(cluster.TryAcquireRetry(Envoy.Config.Core.V3.RoutingPriority.High));
        Assert.False(cluster.TryAcquireRetry(Envoy.Config.Core.V3.RoutingPriority.High));
        Assert.Equal(2, store.Counter("cluster.c.upstream_rq_retry_overflow").Value);
    }

    [Fact]
    public void TheRetryBudgetScalesWithActiveRequests()
    {
        var store = new StatsStore();
        var cluster = Build(store, "thresholds: [ { retry_budget: { budget_percent: { value: 25 }, min_retry_concurrency: 2 } } ]");
        var resources = cluster.Info.CircuitBreakers.Default;

        // Nothing in flight: the minimum concurrency applies.
        Assert.Equal(2, resources.Retries.Max);
        for (var i = 0; i < 20; i++)
        {
            Assert.True(resources.Requests.TryAcquire());
        }

        // 25% of 20 active requests.
        Assert.Equal(5, resources.Retries.Max);
        for (var i = 0; i < 5; i++)
        {
            Assert.True(cluster.TryAcquireRetry());
        }

        Assert.False(cluster.TryAcquireRetry());
    }

    [Fact]
    public void DefaultsAreEnvoys()
    {
        var resources = Build(new StatsStore(), "").Info.CircuitBreakers.Default;

        Assert.Equal(1024, resources.Connections.Max);
        Assert.Equal(1024, resources.PendingRequests.Max);
        Assert.Equal(1024, resources.Requests.Max);
        Assert.Equal(3, resources.Retries.Max);
        Assert.Null(resources.RetryBudget);
    }

    private static Cluster Build(StatsStore store, string circuitBreakers) => UpstreamTestConfigs.Build($$"""
        name: c
        {{(circuitBreakers.Length == 0 ? "" : "circuit_breakers: { " + circuitBreakers + " }")}}
        load_assignment:
          endpoints:
          - lb_endpoints:
            - endpoint: { address: { socket_address: { address: 10.0.0.1, port_value: 80 } } }
        """, new ClusterFactoryContext { DnsResolver = new FakeDnsResolver(), Random = new Random(1), Stats = store });

    private static long Counter(InProcessLegate legate, string name) => legate.Server.Stats.Counter(name).Value;

    private static long Gauge(InProcessLegate legate, string name) => legate.Server.Stats.Gauge(name, ImportMode.Accumulate).Value;

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 30 s");
            await Task.Delay(10);
        }
    }
}
