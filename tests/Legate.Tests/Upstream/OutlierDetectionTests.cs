using System.Globalization;
using System.Net;
using System.Net.Http;
using Legate.Stats;
using Legate.Tests.Harness;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>Passive outlier detection: real requests eject a bad pod; the clock is moved, never slept on.</summary>
public sealed class OutlierDetectionTests
{
    private static string Config(IEnumerable<int> ports, string outlier) => TestConfigs.Admin() + $$"""
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
                        route: { cluster: pods }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: pods
            connect_timeout: 5s
            outlier_detection: {{outlier}}
            load_assignment:
              cluster_name: pods
              endpoints:
              - lb_endpoints:
        {{string.Concat(ports.Select(p => $"        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {p.ToString(CultureInfo.InvariantCulture)} }} }} }}\n"))}}
        """;

    [Fact]
    public async Task ABadPodIsEjectedOthersTakeTheTrafficItComesBackAndASecondEjectionLastsTwiceAsLong()
    {
        var time = new ManualTimeProvider();
        await using var good1 = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("one"));
        await using var good2 = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("two"));
        await using var bad = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("broken", 503));
        await using var legate = await InProcessLegate.StartAsync(
            Config([good1.Port, good2.Port, bad.Port], "{ consecutive_5xx: 3, interval: 1s, base_ejection_time: 10s, max_ejection_percent: 50 }"), time);
        using var client = TestHttp.CreateClient();
        var uri = legate.ListenerUri("web", "/");

        // Round robin: 9 requests, 3 to each pod; the bad pod's third 503 ejects it.
        var first = await SendAsync(client, uri, 9);
        Assert.Equal(3, first.Count(s => s == HttpStatusCode.ServiceUnavailable));
        Assert.Equal(1, Gauge(legate, "cluster.pods.outlier_detection.ejections_active"));
        Assert.Equal(1, Counter(legate, "cluster.pods.outlier_detection.ejections_enforced_consecutive_5xx"));
        Assert.Equal(1, Counter(legate, "cluster.pods.outlier_detection.ejections_detected_consecutive_5xx"));

        // The admin interface shows why: Envoy's health flag on the bad pod only.
        var clusters = (await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/clusters"))).Split('\n');
        Assert.Contains($"pods::127.0.0.1:{bad.Port}::health_flags::/failed_outlier_check", clusters);
        Assert.Contains($"pods::127.0.0.1:{good1.Port}::health_flags::healthy", clusters);

        // Ejected: the two good pods take everything.
        Assert.All(await SendAsync(client, uri, 20), s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(3, bad.Log.Requests.Count);

        // Back after base_ejection_time (10 s), at the interval sweep.
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(1, Gauge(legate, "cluster.pods.outlier_detection.ejections_active"));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, Gauge(legate, "cluster.pods.outlier_detection.ejections_active"));
        Assert.Contains($"pods::127.0.0.1:{bad.Port}::health_flags::healthy", (await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/clusters"))).Split('\n'));

        // Still bad: ejected again after three more 503s, now for 2 x 10 s.
        var second = await SendAsync(client, uri, 9);
        Assert.Equal(3, second.Count(s => s == HttpStatusCode.ServiceUnavailable));
        Assert.Equal(6, bad.Log.Requests.Count);
        Assert.Equal(2, Counter(legate, "cluster.pods.outlier_detection.ejections_enforced_consecutive_5xx"));
        time.Advance(TimeSpan.FromSeconds(19));
        Assert.Equal(1, Gauge(legate, "cluster.pods.outlier_detection.ejections_active"));
        Assert.All(await SendAsync(client, uri, 6), s => Assert.Equal(HttpStatusCode.OK, s));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, Gauge(legate, "cluster.pods.outlier_detection.ejections_active"));
    }

    [Fact]
    public async Task ARollingRestartNeverEjectsMoreThanMaxEjectionPercent()
    {
        var time = new ManualTimeProvider();
        var restarting = new bool[4];
        var pods = new List<ScriptedUpstream>();
        for (var i = 0; i < 4; i++)
        {
            var index = i;
            pods.Add(await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("pod" + i)).When(_ => Volatile.Read(ref restarting[index]), UpstreamResponse.Text("restarting", 503))));
        }

        try
        {
            await using var legate = await InProcessLegate.StartAsync(
                Config(pods.Select(p => p.Port), "{ consecutive_5xx: 2, interval: 1s, base_ejection_time: 5s, max_ejection_percent: 50 }"), time);
            using var client = TestHttp.CreateClient();
            var uri = legate.ListenerUri("web", "/");

            // Three of four pods restart at once: two may be ejected (50%), the third overflows.
            // (Requests go on until the third pod has failed twice: the order the balancer visits the
            // pods in after an ejection is not this test's business; the cap is, after every request.)
            restarting[0] = restarting[1] = restarting[2] = true;
            for (var i = 0; i < 40 && Counter(legate, "cluster.pods.outlier_detection.ejections_overflow") == 0; i++)
            {
                await SendAsync(client, uri, 1);
                Assert.True(Gauge(legate, "cluster.pods.outlier_detection.ejections_active") <= 2);
            }

            Assert.Equal(2, Gauge(legate, "cluster.pods.outlier_detection.ejections_active"));
            Assert.True(Counter(legate, "cluster.pods.outlier_detection.ejections_overflow") >= 1);

            // The pods come back one after another; ejections end with base_ejection_time.
            restarting[0] = restarting[1] = restarting[2] = false;
            time.Advance(TimeSpan.FromSeconds(5));
            Assert.Equal(0, Gauge(legate, "cluster.pods.outlier_detection.ejections_active"));
            var statuses = await SendAsync(client, uri, 8);
            Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
            Assert.All(pods, p => Assert.Contains(p.Log.Requests, r => r.Path == "/"));
        }
        finally
        {
            foreach (var pod in pods)
            {
                await pod.DisposeAsync();
            }
        }
    }

    [Fact]
    public void GatewayFailuresAreDetectedButNotEnforcedByDefault()
    {
        var (cluster, store, _) = Build("{ consecutive_gateway_failure: 2, consecutive_5xx: 10 }", hosts: 2);
        var monitor = cluster.PrioritySet.Current.Hosts[0].OutlierMonitor!;

        monitor.PutHttpResponseCode(502);
        monitor.PutHttpResponseCode(504);

        Assert.Equal(1, store.Counter("cluster.c.outlier_detection.ejections_detected_consecutive_gateway_failure").Value);
        Assert.Equal(0, store.Counter("cluster.c.outlier_detection.ejections_enforced_consecutive_gateway_failure").Value);
        Assert.Equal(HostHealth.Healthy.ToString(), cluster.PrioritySet.Current.Hosts[0].Health.ToString());
    }

    [Fact]
    public void WithoutAlwaysEjectOneHostTenPercentOfThreeHostsEjectsNothing()
    {
        var (cluster, store, _) = Build("{ consecutive_5xx: 1 }", hosts: 3);
        cluster.PrioritySet.Current.Hosts[0].OutlierMonitor!.PutHttpResponseCode(500);
        Assert.Equal(1, store.Counter("cluster.c.outlier_detection.ejections_overflow").Value);

        var (always, alwaysStore, _) = Build("{ consecutive_5xx: 1, always_eject_one_host: true }", hosts: 3);
        always.PrioritySet.Current.Hosts[0].OutlierMonitor!.PutHttpResponseCode(500);
        always.PrioritySet.Current.Hosts[1].OutlierMonitor!.PutHttpResponseCode(500);
        Assert.Equal(1, alwaysStore.Gauge("cluster.c.outlier_detection.ejections_active", ImportMode.Accumulate).Value);
        Assert.Equal(1, alwaysStore.Counter("cluster.c.outlier_detection.ejections_overflow").Value);
        Assert.Equal(2, always.PrioritySet.Current.HostSets[0].HealthyHosts.Length);
    }

    [Fact]
    public void LocalOriginErrorsCountAsGatewayErrorsUnlessSplit()
    {
        var (plain, plainStore, _) = Build("{ consecutive_5xx: 2, max_ejection_percent: 100 }", hosts: 2);
        var monitor = plain.PrioritySet.Current.Hosts[0].OutlierMonitor!;
        monitor.PutResult(OutlierResult.LocalOriginConnectFailed);
        monitor.PutResult(OutlierResult.LocalOriginConnectSuccess);
        monitor.PutResult(OutlierResult.LocalOriginTimeout);
        Assert.Equal(1, plainStore.Counter("cluster.c.outlier_detection.ejections_enforced_consecutive_5xx").Value);

        var (split, splitStore, _) = Build("{ consecutive_5xx: 2, split_external_local_origin_errors: true, consecutive_local_origin_failure: 2, max_ejection_percent: 100 }", hosts: 2);
        var splitMonitor = split.PrioritySet.Current.Hosts[0].OutlierMonitor!;
        splitMonitor.PutResult(OutlierResult.LocalOriginConnectFailed);
        splitMonitor.PutResult(OutlierResult.LocalOriginConnectSuccess);
        splitMonitor.PutResult(OutlierResult.LocalOriginTimeout);
        Assert.Equal(0, splitStore.Gauge("cluster.c.outlier_detection.ejections_active", ImportMode.Accumulate).Value);
        splitMonitor.PutResult(OutlierResult.LocalOriginConnectFailed);
        Assert.Equal(1, splitStore.Counter("cluster.c.outlier_detection.ejections_enforced_consecutive_local_origin_failure").Value);
        Assert.Equal(0, splitStore.Counter("cluster.c.outlier_detection.ejections_enforced_consecutive_5xx").Value);
    }

    [Fact]
    public void SuccessRateEjectsTheHostFarBelowTheMean()
    {
        var (cluster, store, time) = Build("{ interval: 10s, success_rate_minimum_hosts: 5, success_rate_request_volume: 100, max_ejection_percent: 100, consecutive_5xx: 1000 }", hosts: 6);
        var hosts = cluster.PrioritySet.Current.Hosts;
        for (var h = 0; h < hosts.Length; h++)
        {
            for (var i = 0; i < 100; i++)
            {
                // Host 5 fails half its requests, the others 1%.
                hosts[h].OutlierMonitor!.PutHttpResponseCode(h == 5 ? (i % 2 == 0 ? 500 : 200) : (i == 0 ? 500 : 200));
            }
        }

        time.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal(1, store.Counter("cluster.c.outlier_detection.ejections_enforced_success_rate").Value);
        Assert.Equal(HostHealth.Unhealthy.ToString(), hosts[5].Health.ToString());
        Assert.Equal(99.0, hosts[0].OutlierMonitor!.SuccessRate);
        Assert.Equal(50.0, hosts[5].OutlierMonitor!.SuccessRate);
    }

    [Fact]
    public void FailurePercentageEjectsOnlyWhenEnforced()
    {
        const string Settings = "{ interval: 10s, failure_percentage_minimum_hosts: 2, failure_percentage_request_volume: 10, failure_percentage_threshold: 50, max_ejection_percent: 100, consecutive_5xx: 1000, enforcing_failure_percentage: ENFORCE }";
        foreach (var (enforce, expected) in new[] { (0, 0L), (100, 1L) })
        {
            var (cluster, store, time) = Build(Settings.Replace("ENFORCE", enforce.ToString(CultureInfo.InvariantCulture)), hosts: 2);
            var hosts = cluster.PrioritySet.Current.Hosts;
            for (var i = 0; i < 10; i++)
            {
                hosts[0].OutlierMonitor!.PutHttpResponseCode(200);
                hosts[1].OutlierMonitor!.PutHttpResponseCode(i < 6 ? 503 : 200);
            }

            time.Advance(TimeSpan.FromSeconds(10));

            Assert.Equal(1, store.Counter("cluster.c.outlier_detection.ejections_detected_failure_percentage").Value);
            Assert.Equal(expected, store.Counter("cluster.c.outlier_detection.ejections_enforced_failure_percentage").Value);
        }
    }

    [Fact]
    public void EjectionTimeGrowsIsCappedAndShrinksWhileHealthy()
    {
        var (cluster, store, time) = Build("{ consecutive_5xx: 1, interval: 1s, base_ejection_time: 10s, max_ejection_time: 25s, max_ejection_percent: 100 }", hosts: 2);
        var host = cluster.PrioritySet.Current.Hosts[0];
        long Active() => store.Gauge("cluster.c.outlier_detection.ejections_active", ImportMode.Accumulate).Value;

        // 10 s, 20 s, then capped at 25 s.
        foreach (var seconds in new[] { 10, 20, 25 })
        {
            host.OutlierMonitor!.PutHttpResponseCode(500);
            Assert.Equal(1, Active());
            time.Advance(TimeSpan.FromSeconds(seconds - 1));
            Assert.Equal(1, Active());
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(0, Active());
        }

        // Healthy for 3 intervals: the multiplier drops from 3 to 0, so the next ejection is 10 s again.
        time.Advance(TimeSpan.FromSeconds(3));
        host.OutlierMonitor!.PutHttpResponseCode(500);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, Active());
        Assert.Equal(4, host.OutlierMonitor.NumEjections);
    }

    [Fact]
    public void MaxEjectionTimeJitterAddsUpToItsLengthToEachEjection()
    {
        var (cluster, store, time) = Build("{ consecutive_5xx: 1, interval: 1s, base_ejection_time: 10s, max_ejection_time_jitter: 4s, max_ejection_percent: 100 }", hosts: 6);
        var hosts = cluster.PrioritySet.Current.Hosts;
        foreach (var host in hosts)
        {
            host.OutlierMonitor!.PutHttpResponseCode(500);
        }

        Assert.Equal(6, store.Gauge("cluster.c.outlier_detection.ejections_active", ImportMode.Accumulate).Value);

        // Envoy: base_ejection_time × multiplier + random % (jitter + 1) ms, drawn per ejection.
        var durations = hosts.Select(h => h.OutlierMonitor!.EjectionDuration).ToArray();
        Assert.All(durations, d => Assert.InRange(d, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(14)));
        Assert.True(durations.Distinct().Count() > 1, "every ejection lasted " + durations[0]);

        // Each host returns at the first sweep after its own duration, not before.
        var elapsed = TimeSpan.Zero;
        while (hosts.Any(h => h.Health != HostHealth.Healthy))
        {
            time.Advance(TimeSpan.FromSeconds(1));
            elapsed += TimeSpan.FromSeconds(1);
            for (var i = 0; i < hosts.Length; i++)
            {
                Assert.Equal(elapsed < durations[i], hosts[i].Health != HostHealth.Healthy);
            }

            Assert.True(elapsed <= TimeSpan.FromSeconds(15), "a host stayed ejected past its jittered duration");
        }
    }

    private static (Cluster Cluster, StatsStore Store, ManualTimeProvider Time) Build(string outlier, int hosts)
    {
        var store = new StatsStore();
        var time = new ManualTimeProvider();
        var endpoints = string.Concat(Enumerable.Range(1, hosts).Select(i => $"    - endpoint: {{ address: {{ socket_address: {{ address: 10.0.0.{i}, port_value: 80 }} }} }}\n"));
        var cluster = UpstreamTestConfigs.Build($"name: c\noutlier_detection: {outlier}\nload_assignment:\n  endpoints:\n  - lb_endpoints:\n{endpoints}",
            new ClusterFactoryContext { DnsResolver = new FakeDnsResolver(), TimeProvider = time, Random = new Random(1), Stats = store });
        return (cluster, store, time);
    }

    private static async Task<HttpStatusCode[]> SendAsync(HttpClient client, Uri uri, int count)
    {
        var statuses = new HttpStatusCode[count];
        for (var i = 0; i < count; i++)
        {
            using var response = await client.GetAsync(uri).WaitAsync(TimeSpan.FromSeconds(30));
            statuses[i] = response.StatusCode;
        }

        return statuses;
    }

    private static long Counter(InProcessLegate legate, string name) => legate.Server.Stats.Counter(name).Value;

    private static long Gauge(InProcessLegate legate, string name) => legate.Server.Stats.Gauge(name, ImportMode.Accumulate).Value;
}
