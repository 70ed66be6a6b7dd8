using System.Net;
using System.Text.Json;
using Legate.Server;
using Legate.Tests.Harness;

namespace Legate.Tests.EndToEnd;

/// <summary>The admin endpoints over HTTP, on an in-process server.</summary>
public sealed class AdminEndpointTests
{
    [Fact]
    public async Task ReadyIsLiveWhenServing()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        using var response = await legate.Http.GetAsync(new Uri(legate.AdminUri, "ready"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("LIVE\n", await response.Content.ReadAsStringAsync());
        Assert.Equal("text/plain; charset=UTF-8", response.Content.Headers.ContentType?.ToString());
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("x-content-type-options")));
        Assert.Equal("no-cache, max-age=0", response.Headers.CacheControl?.ToString());
    }

    [Fact]
    public async Task ServerInfoReportsVersionStateCommandLineAndNode()
    {
        var yaml = "node: { id: from-bootstrap, cluster: bootstrap-cluster }\n" + TestConfigs.Simple();
        await using var legate = await InProcessLegate.StartAsync(
            yaml, "--service-node", "from-flag", "--service-zone", "zone-a", "--concurrency", "3", "--drain-time-s", "5", "-l", "warn",
            "--component-log-level", "upstream:debug");

        using var response = await legate.Http.GetAsync(new Uri(legate.AdminUri, "server_info"));
        var json = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        var options = root.GetProperty("command_line_options");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.ToString());
        Assert.StartsWith("{\n \"version\": ", json, StringComparison.Ordinal);
        Assert.Equal(VersionInfo.Full, root.GetProperty("version").GetString());
        Assert.Matches(@"^[0-9a-f]+|unknown/0\.\d+\.\d+/", VersionInfo.Full);
        Assert.Equal("LIVE", root.GetProperty("state").GetString());
        Assert.Matches(@"^\d+s$", root.GetProperty("uptime_current_epoch").GetString());
        Assert.Matches(@"^\d+s$", root.GetProperty("uptime_all_epochs").GetString());
        Assert.Equal("disabled", root.GetProperty("hot_restart_version").GetString());
        Assert.Equal("from-flag", options.GetProperty("service_node").GetString());
        Assert.Equal("zone-a", options.GetProperty("service_zone").GetString());
        Assert.Equal(string.Empty, options.GetProperty("service_cluster").GetString());
        Assert.Equal(3, options.GetProperty("concurrency").GetInt32());
        Assert.Equal("5s", options.GetProperty("drain_time").GetString());
        Assert.Equal("900s", options.GetProperty("parent_shutdown_time").GetString());
        Assert.Equal("warning", options.GetProperty("log_level").GetString());
        Assert.Equal("upstream:debug", options.GetProperty("component_log_level").GetString());
        Assert.Equal("[%Y-%m-%d %T.%e][%t][%l][%n] %v", options.GetProperty("log_format").GetString());
        Assert.Equal("Serve", options.GetProperty("mode").GetString());
        Assert.Equal("Gradual", options.GetProperty("drain_strategy").GetString());
        Assert.Equal("0", options.GetProperty("base_id").GetString());
        Assert.Equal(0, options.GetProperty("restart_epoch").GetInt32());
        Assert.False(options.GetProperty("disable_hot_restart").GetBoolean());
        Assert.Contains("static_resources", options.GetProperty("config_yaml").GetString(), StringComparison.Ordinal);
        Assert.Equal("from-flag", root.GetProperty("node").GetProperty("id").GetString());
        Assert.Equal("bootstrap-cluster", root.GetProperty("node").GetProperty("cluster").GetString());
        Assert.Equal("zone-a", root.GetProperty("node").GetProperty("locality").GetProperty("zone").GetString());
    }

    [Fact]
    public async Task HelpListsEveryEndpointSortedLikeEnvoyWithItsParameters()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        var help = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "help"));

        Assert.Equal(
            "admin commands are:\n" +
            "  /: Admin home page\n" +
            "  /allocprofiler (POST): enable/disable the allocation profiler (if supported)\n" +
            "      enable: enable/disable the allocation profiler; One of (y, n)\n" +
            "  /certs: print certs on machine\n" +
            "  /clusters: upstream cluster status\n" +
            "  /config_dump: dump current Envoy configs (experimental)\n" +
            "      resource: The resource to dump\n" +
            "      mask: The mask to apply. When both resource and mask are specified, the mask is applied to every element in the desired repeated field so that only a subset of fields are returned. The mask is parsed as a ProtobufWkt::FieldMask\n" +
            "      name_regex: Dump only the currently loaded configurations whose names match the specified regex. Can be used with both resource and mask query parameters.\n" +
            "      include_eds: Dump currently loaded configuration including EDS. See the response definition for more information\n" +
            "  /contention: dump current Envoy mutex contention stats (if enabled)\n" +
            "  /cpuprofiler (POST): enable/disable the CPU profiler\n" +
            "      enable: enables the CPU profiler; One of (y, n)\n" +
            "  /dashboard: live dashboard: request and error rates, latency, hosts, recent local replies\n" +
            "  /dashboard/data: the dashboard's numbers as JSON\n" +
            "  /drain_listeners (POST): drain listeners\n" +
            "      graceful: When draining listeners, enter a graceful drain period prior to closing listeners. This behaviour and duration is configurable via server options or CLI\n" +
            "      skip_exit: When draining listeners, do not exit after the drain period. This must be used with graceful\n" +
            "      inboundonly: Drains all inbound listeners. traffic_direction field in envoy_v3_api_msg_config.listener.v3.Listener is used to determine whether a listener is inbound or outbound.\n" +
            "  /explain: explain which listener, filter chain, virtual host and route a request would take (params: url, method, header=name:value, listener, port)\n" +
            "  /healthcheck/fail (POST): cause the server to fail health checks\n" +
            "  /healthcheck/ok (POST): cause the server to pass health checks\n" +
            "  /heap_dump: dump current Envoy heap (if supported)\n" +
            "  /heapprofiler (POST): enable/disable the heap profiler\n" +
            "      enable: enable/disable the heap profiler; One of (y, n)\n" +
            "  /help: print out list of admin commands\n" +
            "  /hot_restart_version: print the hot restart compatibility version\n" +
            "  /init_dump: dump current Envoy init manager information (experimental)\n" +
            "      mask: The desired component to dump unready targets. The mask is parsed as a ProtobufWkt::FieldMask. For example, get the unready targets of all listeners with /init_dump?mask=listener`\n" +
            "  /listeners: print listener info\n" +
            "      format: File format to use; One of (text, json)\n" +
            "  /logging: query/change logging levels\n" +
            "      paths: Change multiple logging levels by setting to <logger_name1>:<desired_level1>,<logger_name2>:<desired_level2>. If fine grain logging is enabled, use __FILE__ or a glob experision as the logger name. For example, source/common*:warning\n" +
            "      level: desired logging level, this will change all loggers's level; One of (, trace, debug, info, warning, error, critical, off)\n" +
            "  /memory: print current allocation/heap usage\n" +
            "  /quitquitquit (POST): exit the server\n" +
            "  /ready: print server state, return 200 if LIVE, otherwise return 503\n" +
            "  /reopen_logs (POST): reopen access logs\n" +
            "  /reset_counters (POST): reset all counters to zero\n" +
            "  /runtime: print runtime values\n" +
            "  /runtime_modify (POST): " + Legate.Admin.RuntimeHandler.ModifyHelp + "\n" +
            "  /server_info: print server version/status information\n" +
            "  /stats: print server stats\n" +
            "      usedonly: Only include stats that have been written by system since restart\n" +
            "      filter: Regular expression (Google re2) for filtering stats\n" +
            "      format: Format to use; One of (html, active-html, text, json)\n" +
            "      type: Stat types to include.; One of (All, Counters, Histograms, Gauges, TextReadouts)\n" +
            "      histogram_buckets: Histogram bucket display mode; One of (cumulative, disjoint, detailed, none)\n" +
            "  /stats/prometheus: print server stats in prometheus format\n" +
            "      usedonly: Only include stats that have been written by system since restart\n" +
            "      text_readouts: Render text_readouts as new gaugues with value 0 (increases Prometheus data size)\n" +
            "      filter: Regular expression (Google re2) for filtering stats\n" +
            "      histogram_buckets: Histogram bucket display mode; One of (cumulative, summary)\n" +
            "  /stats/recentlookups: Show recent stat-name lookups\n" +
            "  /stats/recentlookups/clear (POST): clear list of stat-name lookups and counter\n" +
            "  /stats/recentlookups/disable (POST): disable recording of reset stat-name lookup names\n" +
            "  /stats/recentlookups/enable (POST): enable recording of reset stat-name lookup names\n",
            help); // No /tap: Envoy adds it with the first admin_config tap filter (TapAdminTests).
    }

    [Fact]
    public async Task ExplainAnswersForTheLiveConfiguration()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        using var ok = await legate.Http.GetAsync(new Uri(legate.AdminUri, "explain?url=http://localhost/anything&method=POST"));
        var body = await ok.Content.ReadAsStringAsync();
        using var missing = await legate.Http.GetAsync(new Uri(legate.AdminUri, "explain"));

        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.StartsWith("listener:      static_resources.listeners[0] 'test'", body, StringComparison.Ordinal);
        Assert.Contains("\nroute:", body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Equal("error: the url parameter is required, e.g. /explain?url=http://example.com/path\n", await missing.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task HomePageLinksEndpointsAndUsesPostFormsForMutations()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        using var response = await legate.Http.GetAsync(legate.AdminUri);
        var html = await response.Content.ReadAsStringAsync();

        Assert.Equal("text/html; charset=UTF-8", response.Content.Headers.ContentType?.ToString());
        Assert.Contains("<a href='server_info'>server_info</a>", html, StringComparison.Ordinal);
        Assert.Contains("<form action='quitquitquit' method='post'>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("href='quitquitquit'", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownPathIs404WithHelp()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        using var response = await legate.Http.GetAsync(new Uri(legate.AdminUri, "stats/nope"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.StartsWith("invalid path. admin commands are:\n  /: Admin home page\n", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task QueryStringDoesNotChangeTheEndpoint()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        Assert.Equal("LIVE\n", await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "ready?verbose=1")));
    }

    [Fact]
    public async Task QuitQuitQuitNeedsPost()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        using var get = await legate.Http.GetAsync(new Uri(legate.AdminUri, "quitquitquit"));

        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        Assert.Equal("Method GET not allowed, POST required.", await get.Content.ReadAsStringAsync());
        Assert.False(legate.Server.ShutdownRequested.IsCompleted);
        Assert.Contains(legate.Logs.Lines, l => l.EndsWith("[error][admin] admin path \"/quitquitquit\" mutates state, method=GET rather than POST", StringComparison.Ordinal));

        using var post = await legate.Http.PostAsync(new Uri(legate.AdminUri, "quitquitquit"), null);

        Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        Assert.Equal("OK\n", await post.Content.ReadAsStringAsync());
        Assert.Equal("/quitquitquit", await legate.Server.ShutdownRequested.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task ConfigDumpHasTheBootstrapWithSnakeCaseNamesAndTypes()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple("dumped"), "--service-cluster", "flag-cluster");

        using var response = await legate.Http.GetAsync(new Uri(legate.AdminUri, "config_dump"));
        var json = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(json);
        // The bootstrap section comes first, as in Envoy.
        var config = doc.RootElement.GetProperty("configs")[0];
        var bootstrap = config.GetProperty("bootstrap");
        var listener = bootstrap.GetProperty("static_resources").GetProperty("listeners")[0];
        var hcm = listener.GetProperty("filter_chains")[0].GetProperty("filters")[0].GetProperty("typed_config");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.ToString());
        Assert.Equal("type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", config.GetProperty("@type").GetString());
        Assert.True(DateTimeOffset.TryParse(config.GetProperty("last_updated").GetString(), out _));
        Assert.Equal("dumped", listener.GetProperty("name").GetString());
        Assert.Equal(0, listener.GetProperty("address").GetProperty("socket_address").GetProperty("port_value").GetInt32());
        Assert.Equal("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", hcm.GetProperty("@type").GetString());
        Assert.Equal("dumped", hcm.GetProperty("stat_prefix").GetString());
        Assert.Equal("flag-cluster", bootstrap.GetProperty("node").GetProperty("cluster").GetString());
        Assert.Contains("\n  {\n   \"@type\": ", json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConfigDumpRedactsPrivateKeys()
    {
        var yaml = TestConfigs.Admin() + """
            static_resources:
              secrets:
              - name: server_cert
                tls_certificate:
                  certificate_chain: { inline_string: "PUBLIC CERTIFICATE" }
                  private_key: { inline_string: "-----BEGIN PRIVATE KEY----- TOPSECRETKEY" }
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);

        var json = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "config_dump"));

        Assert.DoesNotContain("TOPSECRETKEY", json, StringComparison.Ordinal);
        Assert.Contains("\"private_key\": {\n", json, StringComparison.Ordinal);
        Assert.Contains("\"inline_string\": \"[redacted]\"", json, StringComparison.Ordinal);
        Assert.Contains("PUBLIC CERTIFICATE", json, StringComparison.Ordinal);

        // The dump redacts a copy: the running config keeps its key.
        var secret = legate.Server.Bootstrap.StaticResources.Secrets[0];
        Assert.Equal("-----BEGIN PRIVATE KEY----- TOPSECRETKEY", secret.TlsCertificate.PrivateKey.InlineString);
    }
}
