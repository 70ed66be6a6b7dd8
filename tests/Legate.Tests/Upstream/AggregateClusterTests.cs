using System.Globalization;
using System.Net;
using Legate.Config;
using Legate.Tests.Harness;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>
/// envoy.clusters.aggregate: the listed clusters' priorities linearized in order, Envoy's priority
/// load over them, the chosen cluster's own balancer, its circuit breakers and pools.
/// </summary>
public sealed class AggregateClusterTests
{
    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    private static string Endpoint(int port, string health = "HEALTHY") =>
        $"        - {{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {P(port)} }} }} }}, health_status: {health} }}\n";

    private const string AggregateYaml = """
          - name: failover
            connect_timeout: 5s
            lb_policy: CLUSTER_PROVIDED
            cluster_type:
              name: envoy.clusters.aggregate
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig
                clusters: [primary, secondary]

        """;

    private static string Proxy(string clusters) => TestConfigs.Admin() + $$"""
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
                        route: { cluster: failover }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
        {{AggregateYaml}}{{clusters}}
        """;

    [Fact]
    public async Task TrafficFailsOverToTheSecondClusterWhenTheFirstHasNoHealthyHostAndComesBack()
    {
        var time = new ManualTimeProvider();
        var aHealthy = 1;
        await using var a = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("a"))
            .When(r => r.Path == "/healthz" && Volatile.Read(ref aHealthy) == 1, UpstreamResponse.Text("fine"))
            .When(r => r.Path == "/healthz", UpstreamResponse.Text("sick", 503)));
        await using var b = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("b")));
        var clusters = $$"""
              - name: primary
                connect_timeout: 5s
                # Checks a second apart: without this, Envoy's 1 s update_merge_window would hold the recovery.
                common_lb_config: { update_merge_window: 0s }
                health_checks:
                - { timeout: 5s, interval: 1s, no_traffic_interval: 1s, healthy_threshold: 1, unhealthy_threshold: 1, http_health_check: { path: /healthz } }
                load_assignment:
                  cluster_name: primary
                  endpoints:
                  - lb_endpoints:
            {{Endpoint(a.Port)}}
              - name: secondary
                connect_timeout: 5s
                load_assignment:
                  cluster_name: secondary
                  endpoints:
                  - lb_endpoints:
            {{Endpoint(b.Port)}}
            """;
        await using var legate = await InProcessLegate.StartAsync(Proxy(clusters), time);
        var primary = legate.Server.Clusters.Find("primary")!;
        var checker = Assert.Single(primary.HealthCheckers);
        var hostA = Assert.Single(primary.PrioritySet.Current.Hosts);
        using var client = TestHttp.CreateClient();
        var uri = legate.ListenerUri("web", "/app");

        async Task<string[]> GetAsync(int count)
        {
            var bodies = new string[count];
            for (var i = 0; i < count; i++)
            {
                using var response = await client.GetAsync(uri);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                bodies[i] = await response.Content.ReadAsStringAsync();
            }

            return bodies;
        }

        // The first cluster is healthy: it takes everything.
        Assert.All(await GetAsync(5), body => Assert.Equal("a", body));

        // Its only host fails its check: the aggregate fails over to the second cluster.
        Volatile.Write(ref aHealthy, 0);
        await NextCheckAsync(time, checker, hostA);
        Assert.Equal(HostHealth.Unhealthy.ToString(), hostA.Health.ToString());
        Assert.All(await GetAsync(5), body => Assert.Equal("b", body));

        // It recovers: traffic comes back.
        Volatile.Write(ref aHealthy, 1);
        await NextCheckAsync(time, checker, hostA);
        Assert.Equal(HostHealth.Healthy.ToString(), hostA.Health.ToString());
        Assert.All(await GetAsync(5), body => Assert.Equal("a", body));

        // As Envoy counts: the router's response codes on the aggregate (the route's cluster), each
        // attempt on the cluster whose host took it (its pools).
        Assert.Equal(15, legate.Counter("cluster.failover.upstream_rq_2xx"));
        Assert.Equal(10, legate.Counter("cluster.primary.upstream_rq_total"));
        Assert.Equal(5, legate.Counter("cluster.secondary.upstream_rq_total"));
        Assert.Equal(0, legate.Counter("cluster.failover.upstream_rq_total"));
        Assert.Equal(10, a.Log.Requests.Count(r => r.Path == "/app"));
        Assert.Equal(5, b.Log.Requests.Count(r => r.Path == "/app"));
    }

    [Fact]
    public async Task PreviousPrioritiesRetriesOnTheNextLinearizedPriority()
    {
        // Both clusters have only a priority 0: the retry priority must tell them apart by their
        // linearized position, or the retry goes back to the failing first cluster.
        await using var a = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("a is failing", 503)));
        await using var b = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("b")));
        var clusters = $$"""
              - name: primary
                connect_timeout: 5s
                load_assignment:
                  cluster_name: primary
                  endpoints:
                  - lb_endpoints:
            {{Endpoint(a.Port)}}
              - name: secondary
                connect_timeout: 5s
                load_assignment:
                  cluster_name: secondary
                  endpoints:
                  - lb_endpoints:
            {{Endpoint(b.Port)}}
            """;
        var retry = """
            route: { cluster: failover, retry_policy: { retry_on: 5xx, num_retries: 1, retry_priority: { name: envoy.retry_priorities.previous_priorities, typed_config: { "@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig, update_frequency: 1 } } } }
            """.Trim();
        await using var legate = await InProcessLegate.StartAsync(Proxy(clusters).Replace("route: { cluster: failover }", retry, StringComparison.Ordinal));
        using var client = TestHttp.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            using var response = await client.GetAsync(legate.ListenerUri("web", "/retried"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("b", await response.Content.ReadAsStringAsync());
        }

        // Each request: the first attempt on primary (all the load), the retry on secondary.
        Assert.Equal(3, a.Log.Requests.Count(r => r.Path == "/retried"));
        Assert.Equal(3, b.Log.Requests.Count(r => r.Path == "/retried"));
        Assert.Equal(3, legate.Counter("cluster.failover.upstream_rq_retry"));
    }

    [Fact]
    public async Task TheChosenClustersCircuitBreakersApply()
    {
        await using var a = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("a")));
        var clusters = $$"""
              - name: primary
                connect_timeout: 5s
                circuit_breakers: { thresholds: [ { max_requests: 0 } ] }
                load_assignment:
                  cluster_name: primary
                  endpoints:
                  - lb_endpoints:
            {{Endpoint(a.Port)}}
            """;
        await using var legate = await InProcessLegate.StartAsync(Proxy(clusters));
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        using var client = TestHttp.CreateClient();

        // secondary does not exist: skipped, as Envoy skips a listed cluster it does not know.
        using var response = await client.GetAsync(legate.ListenerUri("web", "/overflow"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("true", Assert.Single(response.Headers.GetValues("x-envoy-overloaded")));
        var stream = await recorder.WaitForPathAsync("/overflow");
        Assert.Equal("UO", stream.Flags);
        Assert.Equal(1, legate.Counter("cluster.primary.upstream_rq_pending_overflow"));
        Assert.Equal(0, legate.Counter("cluster.failover.upstream_rq_pending_overflow"));
        Assert.Empty(a.Log.Requests);
    }

    [Fact]
    public async Task TheAggregatesPriorityLoadIsEnvoysOverTheLinearizedPriorities()
    {
        // primary: P0 half healthy (health 1/2 × 140 = 70), P1 healthy; secondary P0 healthy.
        // Linearized [primary.P0, primary.P1, secondary.P0] → load 70 / 30 / 0, as Envoy's table.
        var yaml = TestConfigs.Admin() + $$"""
            static_resources:
              clusters:
            {{AggregateYaml}}
              - name: primary
                connect_timeout: 5s
                load_assignment:
                  cluster_name: primary
                  endpoints:
                  - priority: 0
                    lb_endpoints:
            {{Endpoint(1001)}}{{Endpoint(1002, "UNHEALTHY")}}
                  - priority: 1
                    lb_endpoints:
            {{Endpoint(1003)}}
              - name: secondary
                connect_timeout: 5s
                load_assignment:
                  cluster_name: secondary
                  endpoints:
                  - lb_endpoints:
            {{Endpoint(2001)}}
            """;
        var errors = new ConfigErrors();
        await using var manager = ClusterManager.Compile(UpstreamTestConfigs.ParseBootstrap(yaml), errors, new ClusterFactoryContext
        {
            DnsResolver = new FakeDnsResolver(),
            TimeProvider = new ManualTimeProvider(),
            Random = new Random(1234),
            LbRandom = LbRandom.Seeded(7),
        });
        Assert.Empty(errors.Errors);
        var failover = manager.Find("failover")!;
        var balancer = Assert.IsType<AggregateLoadBalancer>(failover.LoadBalancer);
        Assert.Equal([70, 30, 0], balancer.CurrentLoad.HealthyLoad.ToArray());

        // 10,000 picks: 70% primary P0's healthy host, 30% primary P1, none secondary; each pick
        // names the cluster the host belongs to.
        var counts = new Dictionary<int, int>();
        for (var i = 0; i < 10_000; i++)
        {
            var host = failover.ChooseHost(null, out var target)!;
            Assert.Equal(host.Address.Port >= 2000 ? "secondary" : "primary", target.Name);
            counts[host.Address.Port] = counts.GetValueOrDefault(host.Address.Port) + 1;
        }

        Assert.InRange(counts[1001], 6700, 7300);
        Assert.InRange(counts[1003], 2700, 3300);
        Assert.False(counts.ContainsKey(1002));
        Assert.False(counts.ContainsKey(2001));

        // primary loses P1 too: the next cluster takes what P0 cannot.
        var p1 = manager.Find("primary")!.PrioritySet.Current.Hosts.Single(h => h.Address.Port == 1003);
        p1.SetHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
        manager.Find("primary")!.PrioritySet.RefreshHealth();
        Assert.Equal([70, 0, 30], balancer.CurrentLoad.HealthyLoad.ToArray());
    }

    [Theory]
    [InlineData("lb_policy: ROUND_ROBIN", "clusters: [primary]", "static_resources.clusters[0].lb_policy", "cluster manager: cluster provided LB not specified but cluster 'failover' provided one. Check cluster documentation.")]
    [InlineData("lb_policy: CLUSTER_PROVIDED", "clusters: [primary, failover]", "static_resources.clusters[0].cluster_type.typed_config.clusters[1]", "aggregate cluster 'failover' cannot list itself")]
    public void AConfigEnvoyRejectsIsAnErrorNamingTheField(string policy, string list, string path, string message)
    {
        var yaml = TestConfigs.Admin() + $$"""
            static_resources:
              clusters:
              - name: failover
                connect_timeout: 5s
                {{policy}}
                cluster_type:
                  name: envoy.clusters.aggregate
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig
                    {{list}}
            """;
        var errors = new ConfigErrors();
        _ = ClusterManager.Compile(UpstreamTestConfigs.ParseBootstrap(yaml), errors, UpstreamTestConfigs.Deterministic());
        var error = Assert.Single(errors.Errors);
        Assert.Equal(path, error.Path);
        Assert.Equal(message, error.Message);
    }

    private static async Task NextCheckAsync(ManualTimeProvider time, HealthChecker checker, Host host)
    {
        var done = checker.CompletedChecks(host);
        time.Advance(TimeSpan.FromSeconds(1));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (checker.CompletedChecks(host) < done + 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the health check did not complete within 30 s");
            await Task.Delay(10);
        }
    }
}
