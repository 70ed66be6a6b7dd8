using Legate.Tests.Harness;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>
/// Envoy frees a cluster's stats scope when CDS removes the cluster: its <c>cluster.NAME.*</c>
/// stats leave /stats, and a cluster added again by that name counts from zero. A cluster whose
/// name extends the removed one (<c>foo.bar</c> for <c>foo</c>) keeps its own.
/// </summary>
public sealed class RemovedClusterStatsTests
{
    [Theory]
    [InlineData("AGGREGATED_GRPC")]
    [InlineData("AGGREGATED_DELTA_GRPC")]
    public async Task ARemovedClustersStatsLeaveAndANestedNameKeepsItsOwn(string apiType)
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        string[] names = ["foo", "foo.bar", "other"];
        xds.Set(ClusterType, "c1", names.Select(n => (Google.Protobuf.IMessage)EdsCluster(n)).ToArray());
        xds.Set(EndpointType, "e1", names.Select((n, i) => (Google.Protobuf.IMessage)Endpoints(n, 9_000 + i)).ToArray());
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType));
        var store = legate.Server.Stats;
        await XdsWait.UntilAsync(() => names.All(n => legate.Server.Clusters.Find(n)?.PrioritySet.Current.Hosts.Length == 1), "the three clusters");
        await XdsWait.UntilAsync(() => Listed(legate).Contains("cluster.foo.update_success"), "foo's EDS stats");
        // The cluster's own counter object, as its requests update it.
        store.Counter("cluster.foo.upstream_rq_total").Inc();
        Assert.Contains("cluster.foo.circuit_breakers.default.cx_open", Listed(legate));

        xds.Set(ClusterType, "c2", EdsCluster("foo.bar"), EdsCluster("other"));
        await XdsWait.UntilAsync(() => legate.Server.Clusters.Find("foo") is null && !Listed(legate).Contains("cluster.foo.upstream_rq_total"), "foo and its stats to go");

        var listed = Listed(legate);
        Assert.DoesNotContain(listed, n => n.StartsWith("cluster.foo.", StringComparison.Ordinal) && !n.StartsWith("cluster.foo.bar.", StringComparison.Ordinal));
        Assert.Contains("cluster.foo.bar.upstream_rq_total", listed);
        Assert.Contains("cluster.foo.bar.update_success", listed);
        Assert.Contains("cluster.foo.bar.circuit_breakers.default.cx_open", listed);
        Assert.Contains("cluster.other.upstream_rq_total", listed);
        Assert.Equal(1, XdsWait.Counter(legate, "cluster_manager.cluster_removed"));

        // Added again: its stats are new, from zero.
        xds.Set(ClusterType, "c3", names.Select(n => (Google.Protobuf.IMessage)EdsCluster(n)).ToArray());
        await XdsWait.UntilAsync(() => legate.Server.Clusters.Find("foo")?.PrioritySet.Current.Hosts.Length == 1, "foo again");
        Assert.Equal(0, store.Counters().Single(c => c.Name.Full == "cluster.foo.upstream_rq_total").Value);
    }

    private static HashSet<string> Listed(InProcessLegate legate) =>
        legate.Server.Stats.Counters().Select(c => c.Name.Full)
            .Concat(legate.Server.Stats.Gauges().Select(g => g.Name.Full))
            .Concat(legate.Server.Stats.Histograms().Select(h => h.Name.Full))
            .ToHashSet(StringComparer.Ordinal);
}
