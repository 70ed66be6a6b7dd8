using Legate.Server;
using Legate.Stats;
using Legate.Tests.Harness;

namespace Legate.Tests.Stats;

public sealed class ServerStatsTests
{
    [Theory]
    [InlineData(nameof(ServerState.Live), 0)]
    [InlineData(nameof(ServerState.Draining), 1)]
    [InlineData(nameof(ServerState.PreInitializing), 2)]
    [InlineData(nameof(ServerState.Initializing), 3)]
    public void StateUsesEnvoysEncoding(string state, long encoded) =>
        Assert.Equal(encoded, ServerStats.Encode(Enum.Parse<ServerState>(state)));

    [Fact]
    public async Task ServerGaugesAreRegisteredAndRefreshedOnRead()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple(), "--concurrency", "3", "--restart-epoch", "2");
        var store = legate.Server.Stats;

        store.Refresh();
        var names = store.Gauges().Select(g => g.Name.Full).Where(n => n.StartsWith("server.", StringComparison.Ordinal)).ToArray();

        // Envoy's ALL_SERVER_STATS gauges plus the compilation settings and the hot restart generation.
        Assert.Equal(
            ["server.compilation_settings.fips_mode", "server.concurrency", "server.days_until_first_cert_expiring", "server.hot_restart_epoch",
                "server.hot_restart_generation", "server.live", "server.memory_allocated", "server.memory_heap_size", "server.memory_physical_size",
                "server.parent_connections", "server.seconds_until_first_ocsp_response_expiring", "server.state", "server.stats_recent_lookups",
                "server.total_connections", "server.uptime", "server.version"],
            names);
        Assert.Equal(
            ["server.debug_assertion_failures", "server.dropped_stat_flushes", "server.dynamic_unknown_fields", "server.envoy_bug_failures",
                "server.static_unknown_fields", "server.wip_protos"],
            store.Counters().Select(c => c.Name.Full).Where(n => n.StartsWith("server.", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(3, Gauge(store, "server.concurrency"));
        Assert.Equal(1, Gauge(store, "server.live"));
        Assert.Equal(2, Gauge(store, "server.hot_restart_epoch"));
        Assert.Equal(1, Gauge(store, "server.hot_restart_generation"));
        Assert.True(Gauge(store, "server.memory_allocated") > 0);
        Assert.True(Gauge(store, "server.memory_heap_size") > 0);
        Assert.True(Gauge(store, "server.memory_physical_size") > 0);
        Assert.True(Gauge(store, "server.stats_recent_lookups") > 0, "every stat name looked up is counted");
        // Recorded once, when the server turned LIVE.
        Assert.Equal(1, Assert.Single(store.Histograms(), h => h.Name.Full == "server.initialization_time_ms").Count);
    }

    [Fact]
    public async Task TotalConnectionsCountsTheOpenDownstreamConnections()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple("web"));
        var store = legate.Server.Stats;
        store.Refresh();
        Assert.Equal(0, Gauge(store, "server.total_connections"));

        using var first = new System.Net.Sockets.TcpClient();
        using var second = new System.Net.Sockets.TcpClient();
        await first.ConnectAsync(legate.ListenerEndpoint("web"));
        await second.ConnectAsync(legate.ListenerEndpoint("web"));
        await InProcessLegate.WaitUntilAsync(() => { store.Refresh(); return Gauge(store, "server.total_connections") == 2; }, "two connections counted");

        first.Close();
        second.Close();
        await InProcessLegate.WaitUntilAsync(() => { store.Refresh(); return Gauge(store, "server.total_connections") == 0; }, "closed connections no longer counted");
    }

    [Theory]
    [InlineData(null, "3f2a9c1d0e", 0x3f2a9c)]
    [InlineData(null, "unknown", 0)]
    [InlineData(null, "ab", 0)]
    [InlineData(0UL, "3f2a9c1d0e", 0x3f2a9c)]
    [InlineData(1234UL, "3f2a9c1d0e", 1234)]
    public void VersionIsTheRevisionsFirstSixHexDigitsUnlessOverridden(ulong? versionOverride, string revision, long expected) =>
        Assert.Equal(expected, ServerStats.VersionNumber(versionOverride, revision));

    [Fact]
    public async Task StatsServerVersionOverrideSetsTheVersionGauge()
    {
        var yaml = TestConfigs.Simple() + "\nstats_server_version_override: 4242\n";
        await using var legate = await InProcessLegate.StartAsync(yaml);

        var text = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats?filter=^server\\.version$"));

        Assert.Equal("server.version: 4242\n", text);
        Assert.DoesNotContain(legate.Server.Warnings, w => w.ToString().Contains("stats_server_version_override", StringComparison.Ordinal));
    }

    private static long Gauge(StatsStore store, string name) => store.Gauges().Single(g => g.Name.Full == name).Value;

    [Fact]
    public async Task UseAllDefaultTagsFalseInTheBootstrapTurnsTagsOff()
    {
        var yaml = TestConfigs.Simple() + "\nstats_config:\n  use_all_default_tags: false\n";
        await using var legate = await InProcessLegate.StartAsync(yaml);
        legate.Server.Stats.Counter("cluster.foo.upstream_rq_200").Inc();

        var prometheus = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats/prometheus?filter=cluster.foo"));

        Assert.Equal("# TYPE envoy_cluster_foo_upstream_rq_200 counter\nenvoy_cluster_foo_upstream_rq_200{} 1\n", prometheus);
    }
}
