using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Legate.Stats;
using Legate.Tests.Harness;
using Legate.Upstream;
using Microsoft.AspNetCore.Http;

namespace Legate.Tests.Upstream;

/// <summary>
/// Envoy's active health check details against real upstreams: the interval chosen after each
/// check, jitter, expected and retriable statuses, body payloads, the service name check, the
/// HTTP/2 codec, header removal, connection reuse, passive failures from ordinary traffic and
/// hosts excluded until their first check. The clock moves check by check.
/// </summary>
public sealed class HealthCheckBehaviourTests
{
    // The clock moves check by check, faster than Envoy's default 1 s update_merge_window would let
    // a second health change reach the load balancer: these tests are about the checks, so the
    // window is off here (UpdateMergeWindowTests covers it).
    private static string Config(IEnumerable<int> ports, string healthCheck, string clusterExtra = "") => TestConfigs.Admin() + $$"""
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
                        route: { cluster: backend }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: backend
            connect_timeout: 5s
            common_lb_config: { update_merge_window: 0s }
        {{clusterExtra}}
            health_checks:
            - {{healthCheck}}
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
        {{string.Concat(ports.Select(p => $"        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {p.ToString(CultureInfo.InvariantCulture)} }} }} }}\n"))}}
        """;

    [Fact]
    public async Task EachIntervalFollowsTheCheckResultAndAPendingTransitionAsEnvoy()
    {
        var time = new ManualTimeProvider();
        var healthy = true;
        await using var up = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("app"))
            .When(r => r.Path == "/hc" && !Volatile.Read(ref healthy), UpstreamResponse.Close())
            .OnPath("/hc", UpstreamResponse.Text("fine")));
        await using var legate = await InProcessLegate.StartAsync(Config([up.Port],
            "{ timeout: 5s, interval: 1s, unhealthy_interval: 7s, unhealthy_edge_interval: 3s, healthy_edge_interval: 2s, no_traffic_interval: 11s, no_traffic_healthy_interval: 13s, unhealthy_threshold: 2, healthy_threshold: 2, http_health_check: { path: /hc } }"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var checker = Assert.Single(cluster.HealthCheckers);
        var host = cluster.PrioritySet.Current.Hosts[0];
        await WaitForChecksAsync(checker, host, 1);

        // No traffic yet: a passing host is checked every no_traffic_healthy_interval.
        Assert.Equal(TimeSpan.FromSeconds(13), checker.NextCheckDelay(host));

        // One request through the cluster: from now on the traffic intervals apply.
        using (var client = TestHttp.CreateClient())
        using (var response = await client.GetAsync(legate.ListenerUri("web", "/app")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await CheckAfterAsync(time, checker, host, TimeSpan.FromSeconds(13));
        Assert.Equal(TimeSpan.FromSeconds(1), checker.NextCheckDelay(host));

        // A healthy host failing (a network failure) below unhealthy_threshold: the unhealthy edge interval ...
        Volatile.Write(ref healthy, false);
        await CheckAfterAsync(time, checker, host, TimeSpan.FromSeconds(1));
        Assert.Equal(HostHealth.Healthy, host.Health);
        Assert.Equal(TimeSpan.FromSeconds(3), checker.NextCheckDelay(host));

        // ... then, failed, unhealthy_interval.
        await CheckAfterAsync(time, checker, host, TimeSpan.FromSeconds(3));
        Assert.Equal(HostHealth.Unhealthy, host.Health);
        Assert.Equal(TimeSpan.FromSeconds(7), checker.NextCheckDelay(host));

        // A failed host passing below healthy_threshold: the healthy edge interval, then interval.
        Volatile.Write(ref healthy, true);
        await CheckAfterAsync(time, checker, host, TimeSpan.FromSeconds(7));
        Assert.Equal(HostHealth.Unhealthy, host.Health);
        Assert.Equal(TimeSpan.FromSeconds(2), checker.NextCheckDelay(host));
        await CheckAfterAsync(time, checker, host, TimeSpan.FromSeconds(2));
        Assert.Equal(HostHealth.Healthy, host.Health);
        Assert.Equal(TimeSpan.FromSeconds(1), checker.NextCheckDelay(host));
    }

    [Fact]
    public async Task JitterAddsUpToIntervalJitterPlusIntervalJitterPercent()
    {
        var time = new ManualTimeProvider();
        await using var up = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("fine")));
        await using var legate = await InProcessLegate.StartAsync(Config([up.Port],
            "{ timeout: 5s, interval: 10s, no_traffic_interval: 10s, interval_jitter: 1s, interval_jitter_percent: 50, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: /hc } }"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var checker = Assert.Single(cluster.HealthCheckers);
        var host = cluster.PrioritySet.Current.Hosts[0];
        await WaitForChecksAsync(checker, host, 1);

        // Envoy: base + random % (base × percent / 100) + random % interval_jitter.
        var delays = new List<TimeSpan>();
        for (var i = 0; i < 6; i++)
        {
            var delay = checker.NextCheckDelay(host);
            delays.Add(delay);
            await CheckAfterAsync(time, checker, host, delay);
        }

        Assert.All(delays, d => Assert.InRange(d, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(15_998)));
        Assert.True(delays.Distinct().Count() > 1, "six jittered intervals were all " + delays[0]);
    }

    [Fact]
    public async Task HttpChecksFollowExpectedAndRetriableStatusesAndTheBodyPayloads()
    {
        var time = new ManualTimeProvider();
        var answer = new Answer(299, "all is well");
        await using var up = await ScriptedUpstream.StartAsync(new UpstreamScript(answer.Response()));
        await using var legate = await InProcessLegate.StartAsync(Config([up.Port],
            "{ timeout: 5s, interval: 1s, no_traffic_interval: 1s, unhealthy_threshold: 2, healthy_threshold: 1, http_health_check: { path: /hc, expected_statuses: [ { start: 200, end: 300 } ], retriable_statuses: [ { start: 503, end: 504 } ], receive: [ { text: \"616c6c\" }, { text: \"77656c6c\" } ] } }"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var checker = Assert.Single(cluster.HealthCheckers);
        var host = cluster.PrioritySet.Current.Hosts[0];
        await WaitForChecksAsync(checker, host, 1);

        // 299 is in [200, 300) and the body holds "all" then "well".
        Assert.Equal(HostHealth.Healthy, host.Health);

        // A retriable status needs unhealthy_threshold (2) in a row, like a network failure.
        answer.Set(503, "all well");
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Healthy, host.Health);
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Unhealthy, host.Health);

        answer.Set(200, "all well");
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Healthy, host.Health);

        // A body without the payloads in order fails at once, whatever the status.
        answer.Set(200, "well, all");
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Unhealthy, host.Health);

        answer.Set(200, "all well");
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Healthy, host.Health);

        // Another unexpected status fails at once; x-envoy-immediate-health-check-fail on it
        // excludes the host too.
        answer.Set(500, "all well", ("x-envoy-immediate-health-check-fail", "true"));
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Unhealthy, host.Health);
        Assert.True(host.HealthFlags.HasFlag(HostHealthFlags.ExcludedViaImmediateHealthCheckFail));
        Assert.Equal(1, legate.Server.Stats.Gauge("cluster.backend.membership_excluded", ImportMode.NeverImport).Value);

        // As Envoy, the header on an answer that passes is ignored, and the pass clears the exclusion.
        answer.Set(200, "all well", ("x-envoy-immediate-health-check-fail", "true"));
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Healthy, host.Health);
        Assert.False(host.HealthFlags.HasFlag(HostHealthFlags.ExcludedViaImmediateHealthCheckFail));
        Assert.Equal(0, legate.Server.Stats.Gauge("cluster.backend.membership_excluded", ImportMode.NeverImport).Value);
        Assert.Equal(0, legate.Server.Stats.Counter("cluster.backend.health_check.network_failure").Value);
    }

    [Fact]
    public async Task ServiceNameMatcherChecksTheHealthCheckedClusterHeaderAndCountsVerifyCluster()
    {
        var time = new ManualTimeProvider();
        var answer = new Answer(200, "ok", ("x-envoy-upstream-healthchecked-cluster", "locations-production-iad"));
        await using var up = await ScriptedUpstream.StartAsync(new UpstreamScript(answer.Response()));
        await using var legate = await InProcessLegate.StartAsync(Config([up.Port],
            "{ timeout: 5s, interval: 1s, no_traffic_interval: 1s, unhealthy_threshold: 3, healthy_threshold: 1, http_health_check: { path: /hc, service_name_matcher: { prefix: locations } } }"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var checker = Assert.Single(cluster.HealthCheckers);
        var host = cluster.PrioritySet.Current.Hosts[0];
        await WaitForChecksAsync(checker, host, 1);
        Assert.Equal(HostHealth.Healthy, host.Health);

        // Another service answering at that address fails the check at once (not a network failure).
        answer.Set(200, "ok", ("x-envoy-upstream-healthchecked-cluster", "billing-production-iad"));
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Unhealthy, host.Health);
        Assert.Equal(2, legate.Server.Stats.Counter("cluster.backend.health_check.verify_cluster").Value);
        Assert.Equal(1, legate.Server.Stats.Counter("cluster.backend.health_check.failure").Value);
    }

    [Fact]
    public async Task Http2CodecHeaderRemovalAndConnectionReuseAreHonoured()
    {
        var time = new ManualTimeProvider();
        await using var h2 = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("fine")), UpstreamProtocols.Http2);
        await using (var legate = await InProcessLegate.StartAsync(Config([h2.Port],
            "{ timeout: 5s, interval: 1s, no_traffic_interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: /hc, codec_client_type: HTTP2, request_headers_to_remove: [ user-agent ] } }"), time))
        {
            var cluster = legate.Server.Clusters.Find("backend")!;
            var host = cluster.PrioritySet.Current.Hosts[0];
            await WaitForChecksAsync(cluster.HealthCheckers[0], host, 1);
            Assert.Equal(HostHealth.Healthy, host.Health);
            var probe = Assert.Single(h2.Log.Requests);
            Assert.Equal("HTTP/2", probe.Protocol);
            Assert.Null(probe.Header("user-agent"));
        }

        // HTTP/1.1: by default one connection carries every check; reuse_connection: false asks
        // for a new one each time (connection: close).
        foreach (var reuse in new[] { true, false })
        {
            await using var h1 = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("fine")));
            await using var legate = await InProcessLegate.StartAsync(Config([h1.Port],
                $"{{ timeout: 5s, interval: 1s, no_traffic_interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1, reuse_connection: {(reuse ? "true" : "false")}, http_health_check: {{ path: /hc }} }}"), time);
            var cluster = legate.Server.Clusters.Find("backend")!;
            var checker = cluster.HealthCheckers[0];
            var host = cluster.PrioritySet.Current.Hosts[0];
            await WaitForChecksAsync(checker, host, 1);
            await NextCheckAsync(time, checker, host);
            await NextCheckAsync(time, checker, host);
            var probes = h1.Log.Requests;
            Assert.Equal(3, probes.Count);
            Assert.Equal(reuse ? 1 : 3, probes.Select(p => p.ConnectionId).Distinct().Count());
            Assert.All(probes, p => Assert.Equal(reuse ? null : "close", p.Header("connection")));
        }
    }

    [Fact]
    public async Task AnImmediateFailHeaderOnTrafficFailsAndExcludesTheHostAtOnceAsAPassiveFailure()
    {
        var time = new ManualTimeProvider();
        var draining = false;
        await using var a = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("a"))
            .OnPath("/hc", UpstreamResponse.Text("fine"))
            .When(_ => Volatile.Read(ref draining), UpstreamResponse.Text("a").WithHeader("x-envoy-immediate-health-check-fail", "true")));
        await using var b = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("b")).OnPath("/hc", UpstreamResponse.Text("fine")));
        await using var legate = await InProcessLegate.StartAsync(Config([a.Port, b.Port],
            "{ timeout: 5s, interval: 1s, no_traffic_interval: 1s, unhealthy_threshold: 3, healthy_threshold: 1, http_health_check: { path: /hc } }"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var checker = Assert.Single(cluster.HealthCheckers);
        var hostA = cluster.PrioritySet.Current.Hosts.Single(h => h.Address.Port == a.Port);
        await WaitForChecksAsync(checker, hostA, 1);
        using var client = TestHttp.CreateClient();
        var uri = legate.ListenerUri("web", "/app");

        // A starts draining: the first answer of A carrying the header takes it out at once,
        // without waiting for a check (unhealthy_threshold 3 does not apply).
        Volatile.Write(ref draining, true);
        var bodies = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            using var response = await client.GetAsync(uri);
            bodies.Add(await response.Content.ReadAsStringAsync());
        }

        var firstA = bodies.IndexOf("a");
        Assert.True(firstA >= 0, "A took no request: " + string.Join(",", bodies));
        Assert.All(bodies.Skip(firstA + 1), body => Assert.Equal("b", body));
        Assert.Equal(HostHealth.Unhealthy, hostA.Health);
        Assert.True(hostA.HealthFlags.HasFlag(HostHealthFlags.ExcludedViaImmediateHealthCheckFail));
        Assert.Equal(1, legate.Server.Stats.Counter("cluster.backend.health_check.passive_failure").Value);
        Assert.Equal(1, legate.Server.Stats.Counter("cluster.backend.health_check.failure").Value);
        Assert.Equal(1, legate.Server.Stats.Gauge("cluster.backend.membership_excluded", ImportMode.NeverImport).Value);
        Assert.Equal(1, legate.Server.Stats.Gauge("cluster.backend.health_check.healthy", ImportMode.NeverImport).Value);
        var clusters = await client.GetStringAsync(new Uri(legate.AdminUri, "/clusters"));
        Assert.Contains($"backend::127.0.0.1:{a.Port}::health_flags::/failed_active_hc/excluded_via_immediate_hc_fail", clusters);

        // Its next check passes (healthy_threshold 1): back, no longer excluded.
        await NextCheckAsync(time, checker, hostA);
        Assert.Equal(HostHealth.Healthy, hostA.Health);
        Assert.False(hostA.HealthFlags.HasFlag(HostHealthFlags.ExcludedViaImmediateHealthCheckFail));
        Assert.Equal(0, legate.Server.Stats.Gauge("cluster.backend.membership_excluded", ImportMode.NeverImport).Value);
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public async Task APassingCheckReturnsAnEjectedHostUnlessSuccessfulActiveHealthCheckUnejectHostIsOff(bool? uneject, bool returns)
    {
        var time = new ManualTimeProvider();
        await using var a = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("a", 503)).OnPath("/hc", UpstreamResponse.Text("fine")));
        await using var b = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("b")).OnPath("/hc", UpstreamResponse.Text("fine")));
        var option = uneject is { } value ? $", successful_active_health_check_uneject_host: {(value ? "true" : "false")}" : string.Empty;
        await using var legate = await InProcessLegate.StartAsync(Config([a.Port, b.Port],
            "{ timeout: 5s, interval: 1s, no_traffic_interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: /hc } }",
            $"    outlier_detection: {{ consecutive_5xx: 1, interval: 300s, base_ejection_time: 300s, max_ejection_percent: 100{option} }}"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var checker = Assert.Single(cluster.HealthCheckers);
        var hostA = cluster.PrioritySet.Current.Hosts.Single(h => h.Address.Port == a.Port);
        await WaitForChecksAsync(checker, hostA, 1);
        using var client = TestHttp.CreateClient();

        // A's first 503 ejects it (consecutive_5xx 1) for 300 s.
        for (var i = 0; i < 2; i++)
        {
            using var response = await client.GetAsync(legate.ListenerUri("web", "/app"));
        }

        Assert.True(hostA.HealthFlags.HasFlag(HostHealthFlags.FailedOutlierCheck));
        Assert.Equal(1, legate.Server.Stats.Gauge("cluster.backend.outlier_detection.ejections_active", ImportMode.Accumulate).Value);

        // Its next active check passes (its /hc is fine): Envoy's default returns it at once.
        await NextCheckAsync(time, checker, hostA);
        Assert.Equal(!returns, hostA.HealthFlags.HasFlag(HostHealthFlags.FailedOutlierCheck));
        Assert.Equal(returns ? HostHealth.Healthy : HostHealth.Unhealthy, hostA.Health);
        Assert.Equal(returns ? 0 : 1, legate.Server.Stats.Gauge("cluster.backend.outlier_detection.ejections_active", ImportMode.Accumulate).Value);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task IgnoreNewHostsUntilFirstHcKeepsUncheckedHostsOutOfThePanicArithmetic(bool ignoreNewHosts)
    {
        // 127.0.0.1 answers the TCP check; three hosts that DNS adds later accept the connection
        // but stay silent, so their first check is still running.
        using var stop = new CancellationTokenSource();
        using var good = new TcpListener(IPAddress.Loopback, 0);
        good.Start();
        var port = ((IPEndPoint)good.LocalEndpoint).Port;
        var silent = Enumerable.Range(2, 3).Select(i => new TcpListener(IPAddress.Parse($"127.0.0.{i}"), port)).ToArray();
        var accepted = new List<Socket>();
        var acceptedCount = 0;
        var servers = new List<Task> { ServeAsync(good, answer: true) };
        foreach (var listener in silent)
        {
            listener.Start();
            servers.Add(ServeAsync(listener, answer: false));
        }

        var time = new ManualTimeProvider();
        var dns = new FakeDnsResolver(time);
        dns.Answer("pods.internal", "127.0.0.1");
        var store = new StatsStore();
        var context = new ClusterFactoryContext { DnsResolver = dns, TimeProvider = time, Random = new Random(1), Stats = store };
        await using var cluster = UpstreamTestConfigs.Build($$"""
            name: c
            type: STRICT_DNS
            common_lb_config: { ignore_new_hosts_until_first_hc: {{(ignoreNewHosts ? "true" : "false")}}, update_merge_window: 0s }
            health_checks:
            - { timeout: 5s, interval: 1s, no_traffic_interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: { send: { text: "70696e67" }, receive: [ { text: "706f6e67" } ] } }
            load_assignment:
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: pods.internal, port_value: {{port}} } } }
            """, context);
        await cluster.WarmAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var first = Assert.Single(cluster.PrioritySet.Current.Hosts);
        Assert.Equal(HostHealth.Healthy, first.Health);
        // The hosts a cluster starts with are failed until checked, never pending (as Envoy's static hosts).
        Assert.False(first.HealthFlags.HasFlag(HostHealthFlags.PendingActiveHealthCheck));

        // A scale-up: three more pods answer DNS at the next refresh (5 s).
        dns.Answer("pods.internal", "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4");
        time.Advance(TimeSpan.FromSeconds(5));
        var hosts = cluster.PrioritySet.Current.Hosts;
        Assert.Equal(4, hosts.Length);
        await WaitUntilAsync(() => Volatile.Read(ref acceptedCount) >= 3, "the new hosts' first checks to connect");
        var added = hosts.Where(h => !ReferenceEquals(h, first)).ToArray();
        Assert.All(added, h => Assert.Equal(HostHealth.Unhealthy, h.Health));
        Assert.All(added, h => Assert.Equal(ignoreNewHosts, h.HealthFlags.HasFlag(HostHealthFlags.PendingActiveHealthCheck)));
        Assert.Equal(ignoreNewHosts ? 3 : 0, store.Gauge("cluster.c.membership_excluded", ImportMode.NeverImport).Value);

        // 1 healthy of 4 is 35% available (× 1.4): below the 50% panic threshold, so Envoy balances
        // over every host — unless the unchecked hosts are excluded, leaving 1 of 1.
        var picks = new Dictionary<Host, int>();
        for (var i = 0; i < 400; i++)
        {
            var host = cluster.LoadBalancer!.ChooseHost(null)!;
            picks[host] = picks.GetValueOrDefault(host) + 1;
        }

        if (ignoreNewHosts)
        {
            Assert.Equal(400, picks.GetValueOrDefault(first));
            Assert.Equal(0, store.Counter("cluster.c.lb_healthy_panic").Value);
        }
        else
        {
            Assert.Equal(4, picks.Count);
            Assert.Equal(400, store.Counter("cluster.c.lb_healthy_panic").Value);
        }

        // The first checks end (timed out): no longer pending, now counted as failed hosts.
        time.Advance(TimeSpan.FromSeconds(5));
        await WaitUntilAsync(() => added.All(h => !h.HealthFlags.HasFlag(HostHealthFlags.PendingActiveHealthCheck)), "the first checks to end");
        await WaitUntilAsync(() => store.Gauge("cluster.c.membership_excluded", ImportMode.NeverImport).Value == 0, "membership_excluded to drop to 0");
        var before = store.Counter("cluster.c.lb_healthy_panic").Value;
        cluster.LoadBalancer!.ChooseHost(null);
        Assert.Equal(before + 1, store.Counter("cluster.c.lb_healthy_panic").Value);

        stop.Cancel();
        good.Stop();
        foreach (var listener in silent)
        {
            listener.Stop();
        }

        lock (accepted)
        {
            accepted.ForEach(s => s.Dispose());
        }

        await Task.WhenAll(servers.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));

        async Task ServeAsync(TcpListener listener, bool answer)
        {
            while (!stop.IsCancellationRequested)
            {
                var socket = await listener.AcceptSocketAsync(stop.Token);
                if (!answer)
                {
                    lock (accepted)
                    {
                        accepted.Add(socket);
                    }

                    Interlocked.Increment(ref acceptedCount);
                    continue;
                }

                _ = Task.Run(async () =>
                {
                    using (socket)
                    {
                        var buffer = new byte[4];
                        var read = 0;
                        while (read < 4)
                        {
                            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, stop.Token);
                            if (n == 0)
                            {
                                return;
                            }

                            read += n;
                        }

                        await socket.SendAsync("pong"u8.ToArray(), SocketFlags.None, stop.Token);
                        socket.Shutdown(SocketShutdown.Both);
                    }
                });
            }
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(10);
        }
    }

    private static async Task WaitForChecksAsync(HealthChecker checker, Host host, int count) =>
        await WaitUntilAsync(() => checker.CompletedChecks(host) >= count, $"{count} health check(s)");

    /// <summary>Moves the clock by exactly <paramref name="after"/> and waits for the check it brings.</summary>
    private static async Task CheckAfterAsync(ManualTimeProvider time, HealthChecker checker, Host host, TimeSpan after)
    {
        var done = checker.CompletedChecks(host);
        time.Advance(after);
        await WaitForChecksAsync(checker, host, done + 1);
    }

    private static Task NextCheckAsync(ManualTimeProvider time, HealthChecker checker, Host host) =>
        CheckAfterAsync(time, checker, host, TimeSpan.FromSeconds(1));

    /// <summary>The answer an upstream gives every request, changed by the test between checks.</summary>
    private sealed class Answer
    {
        private volatile Reply _current = null!;

        public Answer(int status, string body, params (string Name, string Value)[] headers) => Set(status, body, headers);

        public void Set(int status, string body, params (string Name, string Value)[] headers) => _current = new Reply(status, body, headers);

        public UpstreamResponse Response() => UpstreamResponse.Custom(async context =>
        {
            var reply = _current;
            context.Response.StatusCode = reply.Status;
            foreach (var (name, value) in reply.Headers)
            {
                context.Response.Headers[name] = value;
            }

            await context.Response.WriteAsync(reply.Body);
        });

        private sealed record Reply(int Status, string Body, (string Name, string Value)[] Headers);
    }
}
