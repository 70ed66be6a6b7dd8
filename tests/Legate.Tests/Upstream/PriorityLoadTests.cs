using System.Net;
using Envoy.Config.Core.V3;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>Envoy's priority load: overprovisioning, healthy + degraded spill-over, panic.</summary>
public sealed class PriorityLoadTests
{
    [Theory]
    // healthy of 100 hosts in P0 (P1 all healthy) → P0 load, P1 load: the table in Envoy's docs.
    [InlineData(100, 100, 0)]
    [InlineData(72, 100, 0)]
    [InlineData(71, 99, 1)]
    [InlineData(50, 70, 30)]
    [InlineData(25, 35, 65)]
    [InlineData(0, 0, 100)]
    public void LoadSpillsToTheNextPriorityByOverprovisionedHealth(int healthyPercent, int p0, int p1)
    {
        var hosts = new List<Host>();
        for (var i = 0; i < 100; i++)
        {
            hosts.Add(MakeHost(i, 0, i < healthyPercent ? HealthStatus.Healthy : HealthStatus.Unhealthy));
            hosts.Add(MakeHost(100 + i, 1, HealthStatus.Healthy));
        }

        var load = PriorityLoad.Compute(Snapshot(hosts), panicThreshold: 50);

        Assert.Equal([p0, p1], load.HealthyLoad.ToArray());
        Assert.Equal([0, 0], load.DegradedLoad.ToArray());
        Assert.Equal([false, false], load.Panic.ToArray());
    }

    [Fact]
    public void DegradedHostsTakeWhatHealthyHostsCannot()
    {
        // P0: 5 healthy, 5 degraded of 10 → healthy 70%, degraded 70%: 70% to healthy, 30% to degraded.
        var hosts = Enumerable.Range(0, 10).Select(i => MakeHost(i, 0, i < 5 ? HealthStatus.Healthy : HealthStatus.Degraded)).ToList();

        var load = PriorityLoad.Compute(Snapshot(hosts), 50);

        Assert.Equal([70], load.HealthyLoad.ToArray());
        Assert.Equal([30], load.DegradedLoad.ToArray());
        Assert.Equal((0, false), load.Choose(69));
        Assert.Equal((0, true), load.Choose(70));
    }

    [Fact]
    public void ThreePrioritiesRoundLikeEnvoysExample()
    {
        // Envoy's comment: health 10/20/10% and degraded 20/10/0% give 16/28/14 healthy and 28/14/0
        // degraded (the first healthy priority takes the 2% rounding). With factor 100 the
        // availabilities are the host shares themselves.
        var hosts = new List<Host>();
        AddPriority(hosts, 0, healthy: 1, degraded: 2, total: 10);
        AddPriority(hosts, 1, healthy: 2, degraded: 1, total: 10);
        AddPriority(hosts, 2, healthy: 1, degraded: 0, total: 10);

        var load = PriorityLoad.Compute(Snapshot(hosts, overprovisioningFactor: 100), 0);

        Assert.Equal([16, 28, 14], load.HealthyLoad.ToArray());
        Assert.Equal([28, 14, 0], load.DegradedLoad.ToArray());
    }

    [Fact]
    public void APriorityBelowThePanicThresholdPanicsWhenTotalCapacityIsShort()
    {
        // P0 2/10 healthy (28%), P1 2/10 healthy (28%): total 56% < 100, both under 50% → total
        // panic: load by host count, 50/50.
        var hosts = new List<Host>();
        AddPriority(hosts, 0, healthy: 2, degraded: 0, total: 10);
        AddPriority(hosts, 1, healthy: 2, degraded: 0, total: 10);

        var load = PriorityLoad.Compute(Snapshot(hosts), 50);

        Assert.Equal([true, true], load.Panic.ToArray());
        Assert.Equal([50, 50], load.HealthyLoad.ToArray());
    }

    [Fact]
    public void NoPanicWhileTheOtherPrioritiesMakeUpTheCapacity()
    {
        var hosts = new List<Host>();
        AddPriority(hosts, 0, healthy: 1, degraded: 0, total: 10);
        AddPriority(hosts, 1, healthy: 10, degraded: 0, total: 10);

        var load = PriorityLoad.Compute(Snapshot(hosts), 50);

        Assert.Equal([false, false], load.Panic.ToArray());
        Assert.Equal([14, 86], load.HealthyLoad.ToArray());
    }

    [Fact]
    public void OnePriorityInPanicWhileAnotherIsNot()
    {
        // Factor 100: P0 4/10 (40%, under the threshold), P1 5/10 (50%, not under it): total 90 <
        // 100, so P0 panics and P1 does not; loads follow health (44 + 55, rounding to P0).
        var hosts = new List<Host>();
        AddPriority(hosts, 0, healthy: 4, degraded: 0, total: 10);
        AddPriority(hosts, 1, healthy: 5, degraded: 0, total: 10);

        var load = PriorityLoad.Compute(Snapshot(hosts, overprovisioningFactor: 100), 50);

        Assert.Equal([true, false], load.Panic.ToArray());
        Assert.Equal([45, 55], load.HealthyLoad.ToArray());
        Assert.Equal([0, 0], load.DegradedLoad.ToArray());
    }

    [Fact]
    public void WeightedPriorityHealthCountsWeights()
    {
        // One healthy host of weight 3, one unhealthy of weight 1: 75% healthy by weight → 105 → 100.
        var hosts = new List<Host>
        {
            new(IPEndPoint.Parse("10.0.0.1:80"), weight: 3),
            new(IPEndPoint.Parse("10.0.0.2:80"), weight: 1, healthStatus: HealthStatus.Unhealthy),
            new(IPEndPoint.Parse("10.0.1.1:80"), priority: 1),
        };

        Assert.Equal([70, 30], PriorityLoad.Compute(Snapshot(hosts), 50).HealthyLoad.ToArray());
        Assert.Equal([100, 0], PriorityLoad.Compute(Snapshot(hosts, weighted: true), 50).HealthyLoad.ToArray());
    }

    [Fact]
    public void OverprovisioningFactorOneHundredSpillsAsSoonAsAHostFails()
    {
        var hosts = new List<Host>();
        AddPriority(hosts, 0, healthy: 9, degraded: 0, total: 10);
        AddPriority(hosts, 1, healthy: 10, degraded: 0, total: 10);

        Assert.Equal([90, 10], PriorityLoad.Compute(Snapshot(hosts, overprovisioningFactor: 100), 50).HealthyLoad.ToArray());
        Assert.Equal([100, 0], PriorityLoad.Compute(Snapshot(hosts), 50).HealthyLoad.ToArray());
    }

    [Fact]
    public void NothingAvailableAndPanicDisabledPutsTheLoadOnTheFirstPriority()
    {
        var hosts = new List<Host>();
        AddPriority(hosts, 0, healthy: 0, degraded: 0, total: 2);

        var load = PriorityLoad.Compute(Snapshot(hosts), 0);

        Assert.Equal([100], load.HealthyLoad.ToArray());
        Assert.Equal([false], load.Panic.ToArray());
    }

    private static void AddPriority(List<Host> hosts, uint priority, int healthy, int degraded, int total)
    {
        for (var i = 0; i < total; i++)
        {
            var status = i < healthy ? HealthStatus.Healthy : i < healthy + degraded ? HealthStatus.Degraded : HealthStatus.Unhealthy;
            hosts.Add(MakeHost((int)(priority * 1000) + i, priority, status));
        }
    }

    private static Host MakeHost(int n, uint priority, HealthStatus status) =>
        new(new IPEndPoint(IPAddress.Parse($"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"), 80), priority: priority, healthStatus: status);

    private static PrioritySnapshot Snapshot(List<Host> hosts, uint overprovisioningFactor = 140, bool weighted = false)
    {
        var set = new PrioritySet();
        set.Update(hosts, overprovisioningFactor, weighted);
        return set.Current;
    }
}
