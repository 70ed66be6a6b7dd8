using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Legate.Stats;
using Legate.Tests.Harness;
using Legate.Upstream;
using Microsoft.AspNetCore.Http;

namespace Legate.Tests.Upstream;

/// <summary>Active health checks against real upstreams; the clock is moved check by check.</summary>
public sealed class HealthCheckTests
{
    private static string Config(IEnumerable<int> ports, string healthCheck, string clusterExtra = "") =>
        Config(string.Concat(ports.Select(p => $"{{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {p.ToString(CultureInfo.InvariantCulture)} }} }} }}\n")), healthCheck, clusterExtra);

    /// <summary>One <c>endpoint</c> per line of <paramref name="endpoints"/> (each a flow mapping).</summary>
    private static string Config(string endpoints, string healthCheck, string clusterExtra = "") => TestConfigs.Admin() + $$"""
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
        {{clusterExtra}}
            health_checks:
            - {{healthCheck}}
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
        {{string.Concat(endpoints.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(e => "        - endpoint: " + e + "\n"))}}
        """;

    [Fact]
    public async Task AFailingHostIsTakenOutBeforeTrafficAndReturnsAfterHealthyThresholdPasses()
    {
        var time = new ManualTimeProvider();
        var aHealthy = false;
        await using var a = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("a"))
            .When(r => r.Path == "/healthz" && Volatile.Read(ref aHealthy), UpstreamResponse.Text("fine"))
            .When(r => r.Path == "/healthz", UpstreamResponse.Text("sick", 503)));
        await using var b = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("b")).OnPath("/healthz", UpstreamResponse.Text("fine")));
        await using var legate = await InProcessLegate.StartAsync(Config([a.Port, b.Port],
            "{ timeout: 5s, interval: 1s, no_traffic_interval: 1s, healthy_threshold: 2, unhealthy_threshold: 2, http_health_check: { path: /healthz, host: health.internal, request_headers_to_add: [ { header: { key: x-probe, value: legate } } ] } }"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var checker = Assert.Single(cluster.HealthCheckers);
        var hostA = cluster.PrioritySet.Current.Hosts.Single(h => h.Address.Port == a.Port);
        using var client = TestHttp.CreateClient();
        var uri = legate.ListenerUri("web", "/app");

        // Started (warmed) only after the first round: A failed its check before any request.
        Assert.Equal(1, checker.CompletedChecks(hostA));
        Assert.Equal(HostHealth.Unhealthy.ToString(), hostA.Health.ToString());
        Assert.Equal(1, legate.Server.Stats.Gauge("cluster.backend.health_check.healthy", ImportMode.NeverImport).Value);
        var probe = Assert.Single(a.Log.Requests);
        Assert.Equal(["health.internal"], probe.Headers["Host"]);
        Assert.Equal(["legate"], probe.Headers["x-probe"]);
        Assert.Equal(["Envoy/HC"], probe.Headers["User-Agent"]);
        for (var i = 0; i < 6; i++)
        {
            using var response = await client.GetAsync(uri);
            Assert.Equal("b", await response.Content.ReadAsStringAsync());
        }

        Assert.DoesNotContain(a.Log.Requests, r => r.Path == "/app");

        // A recovers: one passing check is not enough (healthy_threshold 2) ...
        Volatile.Write(ref aHealthy, true);
        await NextCheckAsync(time, checker, hostA);
        Assert.Equal(HostHealth.Unhealthy.ToString(), hostA.Health.ToString());
        using (var response = await client.GetAsync(uri))
        {
            Assert.Equal("b", await response.Content.ReadAsStringAsync());
        }

        // ... the second puts it back, and traffic reaches it.
        await NextCheckAsync(time, checker, hostA);
        Assert.Equal(HostHealth.Healthy.ToString(), hostA.Health.ToString());
        var bodies = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await client.GetAsync(uri);
            bodies.Add(await response.Content.ReadAsStringAsync());
        }

        Assert.Contains("a", bodies);
        Assert.True(legate.Server.Stats.Counter("cluster.backend.health_check.attempt").Value >= 6);
        Assert.True(legate.Server.Stats.Counter("cluster.backend.health_check.failure").Value >= 1);
        Assert.Equal(2, legate.Server.Stats.Gauge("cluster.backend.health_check.healthy", ImportMode.NeverImport).Value);
    }

    /// <summary>
    /// An endpoint's <c>health_check_config</c>: <c>port_value</c> sends its checks to another port,
    /// <c>hostname</c> names them (over the checker's <c>host</c>), and
    /// <c>disable_active_health_check</c> leaves a host unchecked and healthy.
    /// </summary>
    [Fact]
    public async Task AnEndpointsHealthCheckConfigMovesItsChecksOrTurnsThemOff()
    {
        var time = new ManualTimeProvider();
        await using var aTraffic = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("a")).OnPath("/healthz", UpstreamResponse.Text("sick", 503)));
        await using var aHealth = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("fine")));
        await using var b = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("b")).OnPath("/healthz", UpstreamResponse.Text("sick", 503)));
        var endpoints =
            $"{{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {aTraffic.Port} }} }}, health_check_config: {{ port_value: {aHealth.Port}, hostname: hc-a.internal }} }}\n" +
            $"{{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {b.Port} }} }}, health_check_config: {{ disable_active_health_check: true }} }}\n";
        await using var legate = await InProcessLegate.StartAsync(Config(endpoints,
            "{ timeout: 5s, interval: 1s, healthy_threshold: 1, unhealthy_threshold: 1, http_health_check: { path: /healthz, host: health.internal } }"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var hosts = cluster.PrioritySet.Current.Hosts;

        // A's check went to its health port, named as its config says; A's traffic port saw none.
        var probe = Assert.Single(aHealth.Log.Requests);
        Assert.Equal("/healthz", probe.Path);
        Assert.Equal(["hc-a.internal"], probe.Headers["Host"]);
        Assert.Empty(aTraffic.Log.Requests);

        // B is never checked (its /healthz would fail) and counts as healthy.
        Assert.Empty(b.Log.Requests);
        Assert.All(hosts, h => Assert.Equal(HostHealth.Healthy.ToString(), h.Health.ToString()));
        using var client = TestHttp.CreateClient();
        var bodies = new HashSet<string>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await client.GetAsync(legate.ListenerUri("web", "/app"));
            bodies.Add(await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(["a", "b"], bodies.Order());
        Assert.DoesNotContain(b.Log.Requests, r => r.Path == "/healthz");
    }

    [Fact]
    public async Task ImmediateFailHeaderAndNetworkFailuresFollowEnvoysThresholds()
    {
        var time = new ManualTimeProvider();
        var mode = 0;
        await using var up = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("ok"))
            .When(_ => Volatile.Read(ref mode) == 1, UpstreamResponse.Text("draining", 503).WithHeader("x-envoy-immediate-health-check-fail", "true"))
            .When(_ => Volatile.Read(ref mode) == 2, UpstreamResponse.Close()));
        await using var legate = await InProcessLegate.StartAsync(Config([up.Port],
            "{ timeout: 5s, interval: 1s, no_traffic_interval: 1s, unhealthy_threshold: 2, healthy_threshold: 1, http_health_check: { path: /hc } }"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var checker = cluster.HealthCheckers[0];
        var host = cluster.PrioritySet.Current.Hosts[0];
        Assert.Equal(HostHealth.Healthy.ToString(), host.Health.ToString());

        // A connection closed without an answer is a network failure: two in a row are needed.
        Volatile.Write(ref mode, 2);
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Healthy.ToString(), host.Health.ToString());
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Unhealthy.ToString(), host.Health.ToString());
        Assert.Equal(2, legate.Server.Stats.Counter("cluster.backend.health_check.network_failure").Value);

        // Healthy again at once (healthy_threshold 1), then the immediate-fail header takes it out in one check.
        Volatile.Write(ref mode, 0);
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Healthy.ToString(), host.Health.ToString());
        Volatile.Write(ref mode, 1);
        await NextCheckAsync(time, checker, host);
        Assert.Equal(HostHealth.Unhealthy.ToString(), host.Health.ToString());
        Assert.True(host.HealthFlags.HasFlag(HostHealthFlags.ExcludedViaImmediateHealthCheckFail));
    }

    [Fact]
    public async Task GrpcHealthCheckAsksTheServiceOverH2c()
    {
        var time = new ManualTimeProvider();
        var serving = true;
        await using var up = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Custom(async context =>
        {
            context.Response.ContentType = "application/grpc";
            var status = Volatile.Read(ref serving) ? (byte)1 : (byte)2;
            await context.Response.Body.WriteAsync(new byte[] { 0, 0, 0, 0, 2, 0x08, status });
            context.Response.AppendTrailer("grpc-status", "0");
        })), UpstreamProtocols.Http2);
        await using var legate = await InProcessLegate.StartAsync(Config([up.Port],
            "{ timeout: 5s, interval: 1s, no_traffic_interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1, grpc_health_check: { service_name: shop.Cart } }"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var host = cluster.PrioritySet.Current.Hosts[0];

        Assert.Equal(HostHealth.Healthy.ToString(), host.Health.ToString());
        var request = Assert.Single(up.Log.Requests);
        Assert.Equal("/grpc.health.v1.Health/Check", request.Path);
        Assert.Equal("HTTP/2", request.Protocol);
        // HealthCheckRequest { service: "shop.Cart" } in one frame.
        Assert.Equal([0, 0, 0, 0, 11, 0x0a, 9, .. "shop.Cart"u8.ToArray()], request.Body);

        Volatile.Write(ref serving, false);
        await NextCheckAsync(time, cluster.HealthCheckers[0], host);
        Assert.Equal(HostHealth.Unhealthy.ToString(), host.Health.ToString());
    }

    [Fact]
    public async Task TcpHealthCheckSendsAndExpectsHexPayloads()
    {
        var time = new ManualTimeProvider();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var answer = true;
        using var stop = new CancellationTokenSource();
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var socket = await listener.AcceptSocketAsync(stop.Token);
                var buffer = new byte[4];
                var read = 0;
                while (read < 4)
                {
                    var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, stop.Token);
                    if (n == 0)
                    {
                        break;
                    }

                    read += n;
                }

                // "ping" in, "xxpong" out (the expected block need not start the answer), or nothing.
                if (Volatile.Read(ref answer) && buffer.AsSpan().SequenceEqual("ping"u8))
                {
                    await socket.SendAsync("xxpong"u8.ToArray(), SocketFlags.None, stop.Token);
                }

                socket.Shutdown(SocketShutdown.Both);
            }
        });
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        await using var legate = await InProcessLegate.StartAsync(Config([port],
            "{ timeout: 5s, interval: 1s, no_traffic_interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: { send: { text: \"70696e67\" }, receive: [ { text: \"706f6e67\" } ] } }"), time);
        var cluster = legate.Server.Clusters.Find("backend")!;
        var host = cluster.PrioritySet.Current.Hosts[0];

        // The first check's result is applied before start returns, its count just after: wait for
        // it, or the next step would take that count for the check it waits for.
        await WaitForChecksAsync(cluster.HealthCheckers[0], host, 1);
        Assert.Equal(HostHealth.Healthy.ToString(), host.Health.ToString());
        Volatile.Write(ref answer, false);
        await NextCheckAsync(time, cluster.HealthCheckers[0], host);
        Assert.Equal(HostHealth.Unhealthy.ToString(), host.Health.ToString());
        stop.Cancel();
        listener.Stop();
        await Assert.ThrowsAnyAsync<Exception>(() => server);
    }

    private static async Task WaitForChecksAsync(HealthChecker checker, Host host, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (checker.CompletedChecks(host) < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{count} health check(s) did not complete within 30 s");
            await Task.Delay(10);
        }
    }

    /// <summary>Moves the clock to the host's next check and waits until it has been applied.</summary>
    private static async Task NextCheckAsync(ManualTimeProvider time, HealthChecker checker, Host host)
    {
        var done = checker.CompletedChecks(host);
        time.Advance(TimeSpan.FromSeconds(1));
        await WaitForChecksAsync(checker, host, done + 1);
    }
}
