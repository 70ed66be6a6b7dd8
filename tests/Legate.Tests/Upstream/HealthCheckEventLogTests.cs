using System.Globalization;
using System.Text.Json;
using Legate.Tests.Harness;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>event_log_path and event_logger file sinks: Envoy's HealthCheckEvent JSON lines as a host passes, fails, degrades and recovers.</summary>
public sealed class HealthCheckEventLogTests
{
    [Fact]
    public async Task PassFailAndReturnAreLoggedAsEnvoysEvents()
    {
        var time = new ManualTimeProvider();
        var healthy = true;
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("app"))
            .When(r => r.Path == "/hc" && Volatile.Read(ref healthy), UpstreamResponse.Text("ok"))
            .When(r => r.Path == "/hc", UpstreamResponse.Text("sick", 503)));
        var log = Path.Combine(Path.GetTempPath(), "legate-hc-events-" + Guid.NewGuid().ToString("N") + ".log");
        try
        {
            await using var legate = await InProcessLegate.StartAsync(TestConfigs.Admin() + $$"""
                static_resources:
                  clusters:
                  - name: backend
                    connect_timeout: 5s
                    health_checks:
                    - timeout: 5s
                      interval: 1s
                      no_traffic_interval: 1s
                      unhealthy_threshold: 1
                      healthy_threshold: 1
                      event_log_path: {{log}}
                      always_log_health_check_failures: true
                      http_health_check: { path: /hc }
                    load_assignment:
                      cluster_name: backend
                      endpoints:
                      - lb_endpoints:
                        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstream.Port.ToString(CultureInfo.InvariantCulture)}} } } }
                """, time);
            var cluster = legate.Server.Clusters.Find("backend")!;
            var checker = Assert.Single(cluster.HealthCheckers);
            var host = Assert.Single(cluster.PrioritySet.Current.Hosts);

            // The first check passed during warming: add_healthy with first_check.
            var first = Assert.Single(Lines(log));
            Assert.Equal("HTTP", first.GetProperty("health_checker_type").GetString());
            Assert.Equal("backend", first.GetProperty("cluster_name").GetString());
            var address = first.GetProperty("host").GetProperty("socket_address");
            Assert.Equal("127.0.0.1", address.GetProperty("address").GetString());
            Assert.Equal(upstream.Port, address.GetProperty("port_value").GetInt32());
            Assert.True(first.GetProperty("add_healthy_event").GetProperty("first_check").GetBoolean());
            Assert.True(first.TryGetProperty("timestamp", out _));

            // A failing check ejects it (a wrong status is an ACTIVE failure) and, with
            // always_log_health_check_failures, also logs the failure itself.
            Volatile.Write(ref healthy, false);
            await NextCheckAsync(time, checker, host);
            var afterFailure = Lines(log);
            Assert.Equal(3, afterFailure.Count);
            Assert.Equal("ACTIVE", afterFailure[1].GetProperty("eject_unhealthy_event").GetProperty("failure_type").GetString());
            var failure = afterFailure[2].GetProperty("health_check_failure_event");
            Assert.Equal("ACTIVE", failure.GetProperty("failure_type").GetString());
            Assert.False(failure.GetProperty("first_check").GetBoolean());

            // Back to healthy: add_healthy, not a first check.
            Volatile.Write(ref healthy, true);
            await NextCheckAsync(time, checker, host);
            var back = Lines(log);
            Assert.Equal(4, back.Count);
            Assert.False(back[3].GetProperty("add_healthy_event").GetProperty("first_check").GetBoolean());
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public async Task TheFileSinkGetsSuccessDegradedAndNoLongerDegradedEventsWithTheHostsLocalityAndMetadata()
    {
        var time = new ManualTimeProvider();
        var degraded = false;
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("app"))
            .When(r => r.Path == "/hc" && Volatile.Read(ref degraded), UpstreamResponse.Text("ok") with { Headers = [new("x-envoy-degraded", "1")] })
            .When(r => r.Path == "/hc", UpstreamResponse.Text("ok")));
        var sink = Path.Combine(Path.GetTempPath(), "legate-hc-sink-" + Guid.NewGuid().ToString("N") + ".log");
        try
        {
            await using var legate = await InProcessLegate.StartAsync(TestConfigs.Admin() + $$"""
                static_resources:
                  clusters:
                  - name: backend
                    connect_timeout: 5s
                    health_checks:
                    - timeout: 5s
                      interval: 1s
                      no_traffic_interval: 1s
                      unhealthy_threshold: 1
                      healthy_threshold: 1
                      always_log_health_check_success: true
                      event_logger:
                      - name: envoy.health_check.event_sinks.file
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.health_check.event_sinks.file.v3.HealthCheckEventFileSink
                          event_log_path: {{sink}}
                      http_health_check: { path: /hc }
                    load_assignment:
                      cluster_name: backend
                      endpoints:
                      - locality: { region: eu, zone: eu-1a }
                        lb_endpoints:
                        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstream.Port.ToString(CultureInfo.InvariantCulture)}} } } }
                          metadata: { filter_metadata: { envoy.lb: { canary: true } } }
                """, time);
            var cluster = legate.Server.Clusters.Find("backend")!;
            var checker = Assert.Single(cluster.HealthCheckers);
            var host = Assert.Single(cluster.PrioritySet.Current.Hosts);

            // The first pass changes the host's health: add_healthy only (no success event for it).
            var first = Assert.Single(Lines(sink));
            Assert.True(first.GetProperty("add_healthy_event").GetProperty("first_check").GetBoolean());
            Assert.Equal("eu-1a", first.GetProperty("locality").GetProperty("zone").GetString());
            Assert.True(first.GetProperty("metadata").GetProperty("filter_metadata").GetProperty("envoy.lb").GetProperty("canary").GetBoolean());

            // A pass that changes nothing: successful_health_check_event (always_log_health_check_success).
            await NextCheckAsync(time, checker, host);
            var lines = Lines(sink);
            Assert.Equal(2, lines.Count);
            Assert.True(lines[1].TryGetProperty("successful_health_check_event", out _));

            // x-envoy-degraded: the pass, then degraded_healthy_host; its end: no_longer_degraded_host.
            Volatile.Write(ref degraded, true);
            await NextCheckAsync(time, checker, host);
            Volatile.Write(ref degraded, false);
            await NextCheckAsync(time, checker, host);
            lines = Lines(sink);
            Assert.Equal(6, lines.Count);
            Assert.True(lines[2].TryGetProperty("successful_health_check_event", out _));
            Assert.True(lines[3].TryGetProperty("degraded_healthy_host", out _));
            Assert.True(lines[4].TryGetProperty("successful_health_check_event", out _));
            Assert.True(lines[5].TryGetProperty("no_longer_degraded_host", out _));
            Assert.All(lines, l => Assert.Equal("backend", l.GetProperty("cluster_name").GetString()));
        }
        finally
        {
            File.Delete(sink);
        }
    }

    [Fact]
    public async Task ATimedOutCheckIsANetworkTimeoutWithItsFlagAndCountsAsANetworkFailure()
    {
        var time = new ManualTimeProvider();
        var mode = 0; // 0: pass, 1: hang (never answer), 2: answer 503
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("app"))
            .When(r => r.Path == "/hc" && Volatile.Read(ref mode) == 1, UpstreamResponse.Text("late") with { HoldUntil = never.Task })
            .When(r => r.Path == "/hc" && Volatile.Read(ref mode) == 2, UpstreamResponse.Text("sick", 503))
            .When(r => r.Path == "/hc", UpstreamResponse.Text("ok")));
        var log = Path.Combine(Path.GetTempPath(), "legate-hc-timeout-" + Guid.NewGuid().ToString("N") + ".log");
        try
        {
            await using var legate = await InProcessLegate.StartAsync(TestConfigs.Admin() + $$"""
                static_resources:
                  clusters:
                  - name: backend
                    connect_timeout: 5s
                    health_checks:
                    - timeout: 2s
                      interval: 1s
                      no_traffic_interval: 1s
                      unhealthy_threshold: 2
                      healthy_threshold: 1
                      event_log_path: {{log}}
                      always_log_health_check_failures: true
                      http_health_check: { path: /hc }
                    load_assignment:
                      cluster_name: backend
                      endpoints:
                      - lb_endpoints:
                        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstream.Port.ToString(CultureInfo.InvariantCulture)}} } } }
                """, time);
            var cluster = legate.Server.Clusters.Find("backend")!;
            var checker = Assert.Single(cluster.HealthCheckers);
            var host = Assert.Single(cluster.PrioritySet.Current.Hosts);
            Assert.Single(Lines(log));

            // The upstream stops answering: the 2 s timeout is a NETWORK_TIMEOUT failure, counted as
            // a network failure; one is below unhealthy_threshold, so the host stays healthy.
            Volatile.Write(ref mode, 1);
            await TimedOutCheckAsync(time, checker, host, upstream, requests: 2);
            var lines = Lines(log);
            Assert.Equal(2, lines.Count);
            var failure = lines[1].GetProperty("health_check_failure_event");
            Assert.Equal("NETWORK_TIMEOUT", failure.GetProperty("failure_type").GetString());
            Assert.Equal(1, legate.Counter("cluster.backend.health_check.network_failure"));
            Assert.Equal(1, legate.Counter("cluster.backend.health_check.failure"));
            Assert.Equal("healthy", Legate.Admin.ClustersHandler.HealthFlags(host));

            // The second timeout in a row ejects it: eject_unhealthy_event NETWORK_TIMEOUT, and the
            // failed host shows /active_hc_timeout next to /failed_active_hc, as Envoy's /clusters.
            await TimedOutCheckAsync(time, checker, host, upstream, requests: 3);
            lines = Lines(log);
            Assert.Equal(4, lines.Count);
            Assert.Equal("NETWORK_TIMEOUT", lines[2].GetProperty("eject_unhealthy_event").GetProperty("failure_type").GetString());
            Assert.Equal("NETWORK_TIMEOUT", lines[3].GetProperty("health_check_failure_event").GetProperty("failure_type").GetString());
            Assert.Equal(2, legate.Counter("cluster.backend.health_check.network_failure"));
            Assert.Equal("/failed_active_hc/active_hc_timeout", Legate.Admin.ClustersHandler.HealthFlags(host));
            using (var client = new HttpClient())
            {
                var clusters = await client.GetStringAsync(new Uri(legate.AdminUri, "/clusters"));
                Assert.Contains("::health_flags::/failed_active_hc/active_hc_timeout", clusters, StringComparison.Ordinal);
            }

            // A wrong answer next: still failed, for another reason, so the timeout flag goes.
            Volatile.Write(ref mode, 2);
            await NextCheckAsync(time, checker, host);
            Assert.Equal("/failed_active_hc", Legate.Admin.ClustersHandler.HealthFlags(host));
            Assert.Equal("ACTIVE", Lines(log)[4].GetProperty("health_check_failure_event").GetProperty("failure_type").GetString());
            Assert.Equal(2, legate.Counter("cluster.backend.health_check.network_failure"));
        }
        finally
        {
            never.TrySetResult();
            File.Delete(log);
        }
    }

    /// <summary>Starts the next check, waits for its request to reach the (silent) upstream, then lets its 2 s timeout expire.</summary>
    private static async Task TimedOutCheckAsync(ManualTimeProvider time, HealthChecker checker, Host host, ScriptedUpstream upstream, int requests)
    {
        var done = checker.CompletedChecks(host);
        time.Advance(TimeSpan.FromSeconds(1));
        await upstream.Log.WaitForRequestsAsync(requests);
        time.Advance(TimeSpan.FromSeconds(2));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (checker.CompletedChecks(host) < done + 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the health check did not time out within 30 s");
            await Task.Delay(10);
        }
    }

    private static List<JsonElement> Lines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
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
