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
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple(), "--concurrency", "3");
        var store = legate.Server.Stats;

        store.Refresh();
        var names = store.Gauges().Select(g => g.Name.Full).Where(n => n.StartsWith("server.", StringComparison.Ordinal)).ToArray();

        Assert.Equal(
            ["server.concurrency", "server.days_until_first_cert_expiring", "server.live", "server.memory_allocated", "server.state", "server.total_connections", "server.uptime", "server.version"],
            names);
        Assert.Equal(3, store.Gauge("server.concurrency", ImportMode.NeverImport).Value);
        Assert.Equal(1, store.Gauge("server.live", ImportMode.NeverImport).Value);
        Assert.True(store.Gauge("server.memory_allocated", ImportMode.Accumulate).Value > 0);
    }

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
