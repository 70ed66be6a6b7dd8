using Envoy.Config.Route.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Http;

namespace Legate.Tests.Router.Actions;

/// <summary>Compiled route actions: weighted cluster selection, per-cluster settings, validation.</summary>
public sealed class RouteEntryActionsTests
{
    private static RouteEntry Compile(Route route, ConfigErrors? errors = null)
    {
        errors ??= new ConfigErrors();
        var entry = RouteEntry.Compile(route, "r", 4096, new VirtualHost { Name = "vh" }, null, errors);
        return entry;
    }

    private static Route Weighted(params (string Name, uint Weight)[] clusters)
    {
        var weighted = new WeightedCluster();
        foreach (var (name, weight) in clusters)
        {
            weighted.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = name, Weight = weight });
        }

        return new Route { Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { WeightedClusters = weighted } };
    }

    [Theory]
    [InlineData(0UL, "a")]
    [InlineData(9UL, "a")]
    [InlineData(10UL, "b")]
    [InlineData(29UL, "b")]
    [InlineData(30UL, "c")]
    [InlineData(99UL, "c")]
    [InlineData(100UL, "a")]
    [InlineData(ulong.MaxValue, "b")] // 18446744073709551615 % 100 = 15
    public void RandomValueModuloTotalWeightFallsIntoCumulativeRanges(ulong random, string expected)
    {
        var entry = Compile(Weighted(("a", 10), ("b", 20), ("c", 70)));

        Assert.Equal(100UL, entry.TotalWeight);
        Assert.Equal(expected, entry.PickWeightedCluster(random).ClusterName);
    }

    [Fact]
    public void AZeroWeightClusterIsNeverPicked()
    {
        var entry = Compile(Weighted(("a", 0), ("b", 5)));

        for (ulong i = 0; i < 20; i++)
        {
            Assert.Equal("b", entry.PickWeightedCluster(i).ClusterName);
        }
    }

    [Fact]
    public void TotalWeightMustMatchTheSum()
    {
        var route = Weighted(("a", 1), ("b", 2));
#pragma warning disable CS0612
        route.Route_.WeightedClusters.TotalWeight = 10;
#pragma warning restore CS0612
        var errors = new ConfigErrors();

        Compile(route, errors);

        var error = Assert.Single(errors.Errors);
        Assert.Equal("r.route.weighted_clusters.total_weight", error.Path);
        Assert.Equal("the weights of weighted_clusters add up to 3, not total_weight 10", error.Message);
    }

    [Fact]
    public void AllZeroWeightsAreAnError()
    {
        var errors = new ConfigErrors();
        Compile(Weighted(("a", 0)), errors);
        Assert.Equal("r.route.weighted_clusters.clusters", Assert.Single(errors.Errors).Path);
    }

    [Fact]
    public void AWeightedClustersOwnFilterConfigWinsOverTheRoutes()
    {
        var route = Weighted(("a", 1), ("b", 1));
        var disabled = Any.Pack(new Envoy.Config.Route.V3.FilterConfig { Disabled = true });
        route.Route_.WeightedClusters.Clusters[1].TypedPerFilterConfig.Add("envoy.filters.http.buffer", disabled);

        var entry = Compile(route);

        Assert.Null(entry.WeightedClusters![0].PerFilterConfig("envoy.filters.http.buffer"));
        Assert.IsType<DisabledFilterConfig>(entry.WeightedClusters[1].PerFilterConfig("envoy.filters.http.buffer"));
        Assert.True(entry.WeightedClusters[1].HasDisabledFilters);
        Assert.False(entry.WeightedClusters[0].HasDisabledFilters);
    }

    [Fact]
    public void RouteCarriesPriorityAndIdleTimeout()
    {
        var entry = Compile(new Route
        {
            Match = new RouteMatch { Prefix = "/" },
            Route_ = new RouteAction { Cluster = "c", Priority = Envoy.Config.Core.V3.RoutingPriority.High, IdleTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(3)) },
        });

        Assert.Equal(Envoy.Config.Core.V3.RoutingPriority.High, entry.Priority);
        Assert.Equal(TimeSpan.FromSeconds(3), entry.IdleTimeout);
    }
}
