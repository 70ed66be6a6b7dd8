using System.Net;
using Legate.Upstream;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Tests.Upstream;

/// <summary>
/// slow_start_config for ROUND_ROBIN and LEAST_REQUEST: a new host's weight is scaled by
/// max(min_weight_percent, (elapsed / window) ^ (1 / aggression)) until its window ends; the
/// clock is a manual one, so every share is exact.
/// </summary>
public sealed class SlowStartTests
{
    [Theory]
    [InlineData(1.0, 10.0, 0.0, 0.1)]      // 1 ms / 10 s is below the 10% floor
    [InlineData(1.0, 10.0, 2.5, 0.25)]
    [InlineData(1.0, 10.0, 5.0, 0.5)]
    [InlineData(2.0, 10.0, 2.5, 0.5)]      // sqrt(0.25)
    [InlineData(0.5, 10.0, 5.0, 0.25)]     // 0.5 ^ 2
    [InlineData(1.0, 30.0, 1.0, 0.3)]      // 10% of the window, floored at 30%
    [InlineData(1.0, 10.0, 10.0, 1.0)]     // the window is over
    public void TheWeightFollowsEnvoysFormula(double aggression, double minWeightPercent, double elapsedSeconds, double expectedFactor)
    {
        var time = new ManualTimeProvider();
        var slowStart = new SlowStart(new SlowStartSettings(TimeSpan.FromSeconds(10), aggression, minWeightPercent / 100), time);
        var host = new Host(new IPEndPoint(IPAddress.Loopback, 1), weight: 4);
        host.LastHcPassTimestamp = time.GetTimestamp();

        time.Advance(TimeSpan.FromSeconds(elapsedSeconds));

        Assert.Equal(4 * expectedFactor, slowStart.Apply(host.Weight, host, time.GetTimestamp()), 9);
    }

    [Fact]
    public void TheAggressionRuntimeKeyIsReadLiveAndAnInvalidValueCountsAsOne()
    {
        var errors = new Legate.Config.ConfigErrors();
        var runtime = Legate.Runtime.RuntimeLoader.Create(
            UpstreamTestConfigs.ParseBootstrap("layered_runtime: { layers: [ { name: admin, admin_layer: {} } ] }\n"), errors, new Legate.Stats.StatsStore());
        Assert.Empty(errors.Errors);
        var time = new ManualTimeProvider();
        var settings = LoadBalancerSettings.Default with { SlowStart = new SlowStartSettings(TimeSpan.FromSeconds(10), 1.0, 0.1, "upstream.slow_start.aggression") };
        var lb = (LoadBalancerBase)LoadBalancerFactory.Create(new PrioritySet(), settings, null, null, time, runtime: runtime);
        var slowStart = Assert.IsType<SlowStart>(typeof(LoadBalancerBase).GetProperty("SlowStart", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!.GetValue(lb));
        var host = new Host(new IPEndPoint(IPAddress.Loopback, 1), weight: 4);
        host.LastHcPassTimestamp = time.GetTimestamp();
        time.Advance(TimeSpan.FromSeconds(2.5));

        // No runtime value: default_value (1.0, linear) → 25%.
        Assert.Equal(1.0, slowStart.Apply(host.Weight, host, time.GetTimestamp()), 9);

        // The key set at run time takes effect at once: sqrt(0.25) = 50%.
        Assert.True(runtime.Modify([new("upstream.slow_start.aggression", "2")]));
        Assert.Equal(2.0, slowStart.Apply(host.Weight, host, time.GetTimestamp()), 9);

        // Not above 0 (or not a number): 1.0, as Envoy.
        Assert.True(runtime.Modify([new("upstream.slow_start.aggression", "-3")]));
        Assert.Equal(1.0, slowStart.Apply(host.Weight, host, time.GetTimestamp()), 9);
    }

    [Fact]
    public void AnUnhealthyHostOrOneNeverSeenHealthyKeepsItsWeight()
    {
        var time = new ManualTimeProvider();
        var slowStart = new SlowStart(new SlowStartSettings(TimeSpan.FromSeconds(10)), time);
        var host = new Host(new IPEndPoint(IPAddress.Loopback, 1), weight: 3);
        Assert.Equal(3, slowStart.Apply(3, host, time.GetTimestamp()));

        host.LastHcPassTimestamp = time.GetTimestamp();
        host.SetHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
        Assert.Equal(3, slowStart.Apply(3, host, time.GetTimestamp()));
    }

    [Theory]
    [InlineData(LbPolicy.RoundRobin)]
    [InlineData(LbPolicy.LeastRequest)]
    public void ANewHostRampsUpOverTheWindowThenTakesItsFullShare(LbPolicy policy)
    {
        var time = new ManualTimeProvider();
        var set = new PrioritySet();
        var settings = LoadBalancerSettings.Default with { Policy = policy, SlowStart = new SlowStartSettings(TimeSpan.FromSeconds(10)) };
        var lb = LoadBalancerFactory.Create(set, settings, null, LbRandom.Seeded(7), time);
        var old = new Host(new IPEndPoint(IPAddress.Loopback, 1));
        set.Update([old]);
        Assert.Same(old, lb.ChooseHost(null));

        // The first host's window is long over when the second arrives.
        time.Advance(TimeSpan.FromSeconds(60));
        var added = new Host(new IPEndPoint(IPAddress.Loopback, 2));
        set.Update([old, added]);
        lb.ChooseHost(null);

        // 2.5 s in: weights 1 and 0.25 → the new host takes 1/5 of the picks (give or take the
        // deadline it was first scheduled with, at 10%).
        time.Advance(TimeSpan.FromSeconds(2.5));
        Assert.InRange(Count(lb, added, 1000), 195, 205);

        // 7.5 s in: 1 and 0.75 → 3/7.
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.InRange(Count(lb, added, 7000), 2990, 3010);

        // The window is over: an equal share (round robin alternates; least request's two random
        // choices are uniform when no request is active).
        time.Advance(TimeSpan.FromSeconds(2.5));
        if (policy == LbPolicy.RoundRobin)
        {
            Assert.InRange(Count(lb, added, 1000), 499, 501);
        }
        else
        {
            Assert.InRange(Count(lb, added, 10_000), 4700, 5300);
        }
    }

    [Fact]
    public void TheWindowOfAHealthCheckedHostStartsWhenItPassesNotWhenItIsAdded()
    {
        var time = new ManualTimeProvider();
        var set = new PrioritySet();
        var settings = LoadBalancerSettings.Default with { SlowStart = new SlowStartSettings(TimeSpan.FromSeconds(10)) };
        var lb = LoadBalancerFactory.Create(set, settings, null, null, time);
        var old = new Host(new IPEndPoint(IPAddress.Loopback, 1));
        set.Update([old]);
        lb.ChooseHost(null);
        time.Advance(TimeSpan.FromSeconds(60));

        // Added failed (pending its first check); passes 30 s later, as a health checker records it.
        var added = new Host(new IPEndPoint(IPAddress.Loopback, 2));
        added.SetHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
        set.Update([old, added]);
        Assert.Same(old, lb.ChooseHost(null));
        time.Advance(TimeSpan.FromSeconds(30));
        added.ClearHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
        added.LastHcPassTimestamp = time.GetTimestamp();
        set.RefreshHealth();

        // 5 s after the pass (35 s after it was added): half weight → a third of the picks.
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.InRange(Count(lb, added, 3000), 995, 1005);
    }

    [Fact]
    public void SharesOverAHundredThousandPicksMatchTheSlowStartWeights()
    {
        // Three hosts 9, 6 and 3 s into a 10 s window with aggression 2 (factors sqrt(0.9), sqrt(0.6),
        // sqrt(0.3)) next to a host whose window is over.
        var time = new ManualTimeProvider();
        var set = new PrioritySet();
        var settings = LoadBalancerSettings.Default with { SlowStart = new SlowStartSettings(TimeSpan.FromSeconds(10), Aggression: 2) };
        var lb = LoadBalancerFactory.Create(set, settings, null, null, time);
        var hosts = Enumerable.Range(1, 4).Select(i => new Host(new IPEndPoint(IPAddress.Loopback, i), weight: 10)).ToArray();
        set.Update([hosts[0]]);
        lb.ChooseHost(null);
        time.Advance(TimeSpan.FromSeconds(30));

        // hosts[1] arrives at +0 s, hosts[2] at +3 s, hosts[3] at +6 s; the picks are made at +9 s.
        for (var count = 2; count <= 4; count++)
        {
            set.Update(hosts.Take(count).ToArray());
            lb.ChooseHost(null);
            time.Advance(TimeSpan.FromSeconds(3));
        }

        var weights = new[] { 10.0, 10 * Math.Sqrt(0.9), 10 * Math.Sqrt(0.6), 10 * Math.Sqrt(0.3) };
        var counts = new int[4];
        const int picks = 100_000;
        for (var i = 0; i < picks; i++)
        {
            counts[Array.IndexOf(hosts, lb.ChooseHost(null))]++;
        }

        var total = weights.Sum();
        for (var i = 0; i < 4; i++)
        {
            var expected = picks * weights[i] / total;
            Assert.InRange(counts[i], expected * 0.99, expected * 1.01);
        }
    }

    private static int Count(ILoadBalancer lb, Host host, int picks)
    {
        var n = 0;
        for (var i = 0; i < picks; i++)
        {
            if (ReferenceEquals(lb.ChooseHost(null), host))
            {
                n++;
            }
        }

        return n;
    }
}
