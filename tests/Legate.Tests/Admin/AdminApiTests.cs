using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Legate.Tests.Harness;

namespace Legate.Tests.Admin;

/// <summary>The admin endpoints beyond the basics, compared with the shapes of Envoy's documentation.</summary>
public sealed class AdminApiTests
{
    private static string Config(string extra = "") => TestConfigs.Admin() + extra + $$"""
        static_resources:
          listeners:
        {{TestConfigs.DirectResponseListener("web")}}
          - name: outbound
            traffic_direction: OUTBOUND
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: outbound
                  route_config:
                    name: outbound_routes
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: backend }
          clusters:
          - name: backend
            connect_timeout: 1s
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9 } } }
        """;

    [Fact]
    public async Task MutatingEndpointsAnswerGetWith405()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());
        foreach (var path in new[] { "healthcheck/fail", "healthcheck/ok", "drain_listeners", "runtime_modify?a=b", "reopen_logs", "reset_counters", "quitquitquit" })
        {
            using var response = await legate.Http.GetAsync(new Uri(legate.AdminUri, path));
            Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
            Assert.Equal("Method GET not allowed, POST required.", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(Legate.Server.ServerState.Live, legate.Server.State);
    }

    [Fact]
    public async Task HomePageLinksEveryEndpointAndMutatingOnesArePostForms()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());
        var html = await legate.Http.GetStringAsync(legate.AdminUri);
        foreach (var path in new[] { "listeners", "logging", "runtime", "memory", "hot_restart_version", "config_dump", "stats" })
        {
            Assert.Contains($"<a href='{path}'>", html, StringComparison.Ordinal);
        }

        foreach (var path in new[] { "healthcheck/fail", "healthcheck/ok", "drain_listeners", "runtime_modify", "reopen_logs" })
        {
            Assert.Contains($"<form action='{path}' method='post'>", html, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ListenersInTextAndJson()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());
        var web = legate.ListenerEndpoint("web");
        var outbound = legate.ListenerEndpoint("outbound");

        var text = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "listeners"));
        Assert.Equal($"web::127.0.0.1:{web.Port}\noutbound::127.0.0.1:{outbound.Port}\n", text);

        using var json = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "listeners?format=json")));
        var statuses = json.RootElement.GetProperty("listener_statuses");
        Assert.Equal(2, statuses.GetArrayLength());
        Assert.Equal("web", statuses[0].GetProperty("name").GetString());
        var address = statuses[0].GetProperty("local_address").GetProperty("socket_address");
        Assert.Equal("127.0.0.1", address.GetProperty("address").GetString());
        Assert.Equal(web.Port, address.GetProperty("port_value").GetInt32());
    }

    [Fact]
    public async Task ConfigDumpHasEnvoysTypedSectionsInOrder()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());
        using var json = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "config_dump")));
        var configs = json.RootElement.GetProperty("configs").EnumerateArray().ToArray();
        Assert.Equal(
            [
                "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
                "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
                "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
            ],
            configs.Select(c => c.GetProperty("@type").GetString()!).ToArray());

        var cluster = configs[1].GetProperty("static_clusters")[0];
        Assert.Equal("backend", cluster.GetProperty("cluster").GetProperty("name").GetString());
        Assert.Equal("type.googleapis.com/envoy.config.cluster.v3.Cluster", cluster.GetProperty("cluster").GetProperty("@type").GetString());
        Assert.True(DateTimeOffset.TryParse(cluster.GetProperty("last_updated").GetString(), out _));

        var listeners = configs[2].GetProperty("static_listeners");
        Assert.Equal(["web", "outbound"], listeners.EnumerateArray().Select(l => l.GetProperty("listener").GetProperty("name").GetString()!).ToArray());

        var route = Assert.Single(configs[3].GetProperty("static_route_configs").EnumerateArray(), r => r.GetProperty("route_config").TryGetProperty("name", out _));
        Assert.Equal("outbound_routes", route.GetProperty("route_config").GetProperty("name").GetString());
        Assert.Equal(2, configs[3].GetProperty("static_route_configs").GetArrayLength());
    }

    [Fact]
    public async Task ConfigDumpResourceMaskNameRegexAndIncludeEds()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());

        using (var resource = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "config_dump?resource=static_listeners&name_regex=^out"))))
        {
            var listener = Assert.Single(resource.RootElement.GetProperty("configs").EnumerateArray());
            Assert.Equal("type.googleapis.com/envoy.admin.v3.ListenersConfigDump.StaticListener", listener.GetProperty("@type").GetString());
            Assert.Equal("outbound", listener.GetProperty("listener").GetProperty("name").GetString());
        }

        using (var masked = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "config_dump?resource=static_clusters&mask=cluster.name,cluster.connect_timeout"))))
        {
            var cluster = Assert.Single(masked.RootElement.GetProperty("configs").EnumerateArray()).GetProperty("cluster");
            Assert.Equal("backend", cluster.GetProperty("name").GetString());
            Assert.Equal("1s", cluster.GetProperty("connect_timeout").GetString());
            Assert.False(cluster.TryGetProperty("load_assignment", out _));
        }

        using (var eds = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "config_dump?include_eds"))))
        {
            var configs = eds.RootElement.GetProperty("configs").EnumerateArray().ToArray();
            Assert.Equal("type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", configs[2].GetProperty("@type").GetString());
            var endpoint = configs[2].GetProperty("static_endpoint_configs")[0].GetProperty("endpoint_config");
            Assert.Equal("backend", endpoint.GetProperty("cluster_name").GetString());
        }

        using var missing = await legate.Http.GetAsync(new Uri(legate.AdminUri, "config_dump?resource=nothing_like_this"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task LoggingListsAndChangesLevels()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());
        var list = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "logging"));
        Assert.StartsWith("active loggers:\n", list, StringComparison.Ordinal);
        Assert.Contains("\n  admin: info\n", list, StringComparison.Ordinal);

        using (var get = await legate.Http.GetAsync(new Uri(legate.AdminUri, "logging?level=debug")))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        }

        using (var one = await legate.Http.PostAsync(new Uri(legate.AdminUri, "logging?upstream=trace"), null))
        {
            var body = await one.Content.ReadAsStringAsync();
            Assert.Contains("\n  upstream: trace\n", body, StringComparison.Ordinal);
            Assert.Contains("\n  admin: info\n", body, StringComparison.Ordinal);
        }

        using (var paths = await legate.Http.PostAsync(new Uri(legate.AdminUri, "logging?paths=admin:warning,router:error"), null))
        {
            var body = await paths.Content.ReadAsStringAsync();
            Assert.Contains("\n  admin: warning\n", body, StringComparison.Ordinal);
            Assert.Contains("\n  router: error\n", body, StringComparison.Ordinal);
        }

        using (var all = await legate.Http.PostAsync(new Uri(legate.AdminUri, "logging?level=critical"), null))
        {
            Assert.DoesNotContain(": info\n", await all.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(Legate.Server.Logging.LogLevel.Critical, legate.Server.Logs.Get("admin").Level);
        using var bad = await legate.Http.PostAsync(new Uri(legate.AdminUri, "logging?nosuchlogger=debug"), null);
        Assert.Equal(HttpStatusCode.NotFound, bad.StatusCode);
        Assert.StartsWith("usage: /logging?<name>=<level>", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RuntimeLayersAndModifyChangeAnAccessLogFilter()
    {
        var dir = Directory.CreateTempSubdirectory("legate-runtime-").FullName;
        try
        {
            var path = Path.Combine(dir, "access.log");
            var yaml = TestConfigs.Admin() + """
                layered_runtime:
                  layers:
                  - name: static_layer_0
                    static_layer:
                      log: { min_status: 500 }
                      feature: { flag: true }
                  - name: admin
                    admin_layer: {}

                """ + "static_resources:\n  listeners:\n" + TestConfigs.DirectResponseListener("web", status: 404, extraHcm: $$"""
                access_log:
                - name: envoy.access_loggers.file
                  filter: { status_code_filter: { comparison: { op: GE, value: { default_value: 200, runtime_key: log.min_status } } } }
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                    path: {{path}}
                    log_format: { text_format_source: { inline_string: "%REQ(:PATH)% %RESPONSE_CODE%\n" } }
                """);
            await using var legate = await InProcessLegate.StartAsync(yaml, "--file-flush-interval-msec", "50");

            using (var json = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "runtime"))))
            {
                Assert.Equal(["static_layer_0", "admin"], json.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetString()!).ToArray());
                var entry = json.RootElement.GetProperty("entries").GetProperty("log.min_status");
                Assert.Equal(["500", ""], entry.GetProperty("layer_values").EnumerateArray().Select(v => v.GetString()!).ToArray());
                Assert.Equal("500", entry.GetProperty("final_value").GetString());
                Assert.Equal("true", json.RootElement.GetProperty("entries").GetProperty("feature.flag").GetProperty("final_value").GetString());
            }

            // 404 < 500 from the static layer: not logged. The filter decides when the stream ends,
            // after the response went out; a second request on the same connection is only read
            // once the first stream ended (the connection reuses one stream), so its answer means
            // the decision about /first was made before the runtime changes.
            await using (var connection = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web")))
            {
                foreach (var target in new[] { "/first", "/first-barrier" })
                {
                    await connection.WriteAsync($"GET {target} HTTP/1.1\r\nHost: web\r\n\r\n");
                    Assert.Equal(404, (await connection.ReadResponseAsync()).Status);
                }
            }

            using (var modify = await legate.Http.PostAsync(new Uri(legate.AdminUri, "runtime_modify?log.min_status=400"), null))
            {
                Assert.Equal("OK\n", await modify.Content.ReadAsStringAsync());
            }

            await legate.Http.GetAsync(legate.ListenerUri("web", "/second"));
            Assert.Equal(["/second 404"], await Legate.Tests.AccessLog.AccessLogTests.WaitForLinesAsync(path, 1));
            Assert.Equal(1, legate.Server.Stats.Gauge("runtime.admin_overrides_active", Legate.Stats.ImportMode.NeverImport).Value);

            using (var json = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "runtime"))))
            {
                var entry = json.RootElement.GetProperty("entries").GetProperty("log.min_status");
                Assert.Equal(["500", "400"], entry.GetProperty("layer_values").EnumerateArray().Select(v => v.GetString()!).ToArray());
                Assert.Equal("400", entry.GetProperty("final_value").GetString());
            }

            // An empty value removes the override.
            await legate.Http.PostAsync(new Uri(legate.AdminUri, "runtime_modify?log.min_status="), null);
            Assert.Equal("500", legate.Server.Runtime.Snapshot.Get("log.min_status"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task RuntimeModifyWithoutAnAdminLayerIs503()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Admin() + """
            layered_runtime:
              layers:
              - name: static
                static_layer: { a: 1 }

            """ + "static_resources:\n  listeners:\n" + TestConfigs.DirectResponseListener("web"));
        using var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "runtime_modify?a=2"), null);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("No admin layer specified", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task HealthCheckFailMakesTheServerDrainingUntilOk()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());
        using (var fail = await legate.Http.PostAsync(new Uri(legate.AdminUri, "healthcheck/fail"), null))
        {
            Assert.Equal("OK\n", await fail.Content.ReadAsStringAsync());
        }

        using (var ready = await legate.Http.GetAsync(new Uri(legate.AdminUri, "ready")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Equal("DRAINING\n", await ready.Content.ReadAsStringAsync());
        }

        var stats = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats?filter=^server\\.live$"));
        Assert.Equal("server.live: 0\n", stats);
        using (var info = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "server_info"))))
        {
            Assert.Equal("DRAINING", info.RootElement.GetProperty("state").GetString());
        }

        // Traffic still flows: only health checks fail.
        Assert.Equal("hello\n", await legate.Http.GetStringAsync(legate.ListenerUri("web")));

        await legate.Http.PostAsync(new Uri(legate.AdminUri, "healthcheck/ok"), null);
        using var live = await legate.Http.GetAsync(new Uri(legate.AdminUri, "ready"));
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("server.live: 1\n", await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats?filter=^server\\.live$")));
    }

    [Fact]
    public async Task DrainListenersInboundOnlyStopsAcceptingOnInboundListeners()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());
        var web = legate.ListenerEndpoint("web");
        var outbound = legate.ListenerEndpoint("outbound");

        using (var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "drain_listeners?inboundonly&graceful"), null))
        {
            Assert.Equal("OK\n", await response.Content.ReadAsStringAsync());
        }

        await WaitForAsync(async () => !await AcceptsAsync(web));
        Assert.True(await AcceptsAsync(outbound));
    }

    [Fact]
    public async Task DrainListenersSkipExitDrainsTheConnectionsButKeepsTheListenersServing()
    {
        await using var legate = await InProcessLegate.StartAsync(Config(), "--drain-time-s", "30");
        var web = legate.ListenerEndpoint("web");

        // skip_exit means nothing without graceful: Envoy's 400, and nothing is drained.
        using (var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "drain_listeners?skip_exit"), null))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("skip_exit requires graceful\n", await response.Content.ReadAsStringAsync());
        }

        // A keep-alive connection open before the drain (idle between requests) is closed by it.
        using var before = new TcpClient();
        await before.ConnectAsync(web);
        var stream = before.GetStream();
        var first = await ExchangeAsync(stream);
        Assert.StartsWith("HTTP/1.1 200", first, StringComparison.Ordinal);
        Assert.DoesNotContain("connection: close", first, StringComparison.OrdinalIgnoreCase);

        using (var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "drain_listeners?graceful&skip_exit"), null))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("OK\n", await response.Content.ReadAsStringAsync());
        }

        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(0, await stream.ReadAsync(new byte[16], timeout.Token));
        }

        // The listener was not stopped: new connections are accepted and served, then and later.
        Assert.True(await AcceptsAsync(web));
        Assert.Equal("hello\n", await legate.Http.GetStringAsync(legate.ListenerUri("web")));
        Assert.NotNull(legate.Server.Listeners.Find("web")?.BoundEndpoint);

        static async Task<string> ExchangeAsync(NetworkStream stream)
        {
            await stream.WriteAsync("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray());
            var buffer = new byte[4096];
            var text = string.Empty;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (!text.EndsWith("hello\n", StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(buffer, timeout.Token);
                Assert.True(n > 0, "the connection closed before the response: " + text);
                text += System.Text.Encoding.ASCII.GetString(buffer, 0, n);
            }

            return text;
        }
    }

    [Fact]
    public async Task ARepeatedGracefulDrainIsIgnoredWhileOneRuns()
    {
        await using var legate = await InProcessLegate.StartAsync(Config(), "--drain-time-s", "30");
        var web = legate.ListenerEndpoint("web");

        // A graceful drain that keeps the listeners (skip_exit) runs; Envoy's drain manager is then
        // draining, and a second graceful drain, even without skip_exit, answers OK and does nothing.
        foreach (var query in new[] { "drain_listeners?graceful&skip_exit", "drain_listeners?graceful", "drain_listeners?graceful&inboundonly" })
        {
            using var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, query), null);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("OK\n", await response.Content.ReadAsStringAsync());
        }

        Assert.True(await AcceptsAsync(web));
        Assert.Equal("hello\n", await legate.Http.GetStringAsync(legate.ListenerUri("web")));
        Assert.NotNull(legate.Server.Listeners.Find("web")?.BoundEndpoint);

        // A non-graceful drain is never ignored: it stops the listeners at once, as in Envoy.
        using (var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "drain_listeners"), null))
        {
            Assert.Equal("OK\n", await response.Content.ReadAsStringAsync());
        }

        await WaitForAsync(async () => !await AcceptsAsync(web));
    }

    [Fact]
    public async Task AGracefulDrainOfAllAfterAnInboundOneDrainsTheRest()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());
        var web = legate.ListenerEndpoint("web");
        var outbound = legate.ListenerEndpoint("outbound");

        using (var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "drain_listeners?inboundonly&graceful"), null))
        {
            Assert.Equal("OK\n", await response.Content.ReadAsStringAsync());
        }

        await WaitForAsync(async () => !await AcceptsAsync(web));
        Assert.True(await AcceptsAsync(outbound));

        // Draining inbound only does not cover all directions: this one is not ignored.
        using (var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "drain_listeners?graceful"), null))
        {
            Assert.Equal("OK\n", await response.Content.ReadAsStringAsync());
        }

        await WaitForAsync(async () => !await AcceptsAsync(outbound));
    }

    [Fact]
    public async Task MemoryAndHotRestartVersion()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());
        using var memory = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "memory")));
        foreach (var field in new[] { "allocated", "heap_size", "pageheap_unmapped", "pageheap_free", "total_thread_cache", "total_physical_bytes" })
        {
            // Envoy prints these uint64 fields as JSON strings.
            Assert.True(ulong.TryParse(memory.RootElement.GetProperty(field).GetString(), out _), field);
        }

        Assert.True(ulong.Parse(memory.RootElement.GetProperty("allocated").GetString()!) > 0);
        Assert.Equal("disabled", await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "hot_restart_version")));
    }

    [Fact]
    public async Task StatsHistogramBucketsCumulativeAndDisjoint()
    {
        await using var legate = await InProcessLegate.StartAsync(Config());
        await legate.Http.GetStringAsync(legate.ListenerUri("web"));
        await WaitForAsync(() => Task.FromResult(legate.Server.Stats.Histogram("http.web.downstream_rq_time", Legate.Stats.HistogramUnit.Milliseconds).Count == 1));

        var cumulative = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats?filter=^http\\.web\\.downstream_rq_time$&histogram_buckets=cumulative"));
        Assert.Matches(@"^http\.web\.downstream_rq_time: B0\.5\(0,[01]\) B1\(0,[01]\) B5\(0,[01]\) .* B3600000\(0,1\)\n$", cumulative);
        var disjoint = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats?filter=^http\\.web\\.downstream_rq_time$&histogram_buckets=disjoint"));
        Assert.Single(Regex.Matches(disjoint, @"\(0,1\)"));
        Assert.EndsWith("B3600000(0,0)\n", disjoint, StringComparison.Ordinal);

        using var bad = await legate.Http.GetAsync(new Uri(legate.AdminUri, "stats?histogram_buckets=sideways"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    private static async Task<bool> AcceptsAsync(IPEndPoint endpoint)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(endpoint);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(20);
        }
    }
}
