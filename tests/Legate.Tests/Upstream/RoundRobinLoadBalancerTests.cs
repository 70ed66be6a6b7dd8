using System.Net;
using Envoy.Config.Core.V3;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

public sealed class RoundRobinLoadBalancerTests
{
    [Fact]
    public void EqualWeightsRotateInOrder()
    {
        var (set, hosts) = Hosts(1, 1, 1);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);

        var picks = Pick(lb, 7);

        Assert.Equal([hosts[0], hosts[1], hosts[2], hosts[0], hosts[1], hosts[2], hosts[0]], picks);
    }

    [Fact]
    public void TheSeedChoosesWhereTheRotationStarts()
    {
        var (set, hosts) = Hosts(1, 1, 1);
        var lb = new RoundRobinLoadBalancer(set, seed: 4);

        Assert.Equal([hosts[1], hosts[2], hosts[0]], Pick(lb, 3));
    }

    [Fact]
    public void UnequalWeightsInterleaveEarliestDeadlineFirst()
    {
        // Deadlines: A 1; B 1/2, 1; C 1/3, 2/3, 1. Ties at 1 go to the entry scheduled first:
        // A (at the start), then B (rescheduled at 1/2), then C (rescheduled at 2/3).
        var (set, hosts) = Hosts(1, 2, 3);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);
        var (a, b, c) = (hosts[0], hosts[1], hosts[2]);

        var picks = Pick(lb, 12);

        Assert.Equal([c, b, c, a, b, c, c, b, c, a, b, c], picks);
        Assert.Equal(2, LongestRun(picks, c));
    }

    [Fact]
    public void HostsOfSimilarWeightAlternateInsteadOfTakingRuns()
    {
        // Naive weighted round robin would send 5 in a row to A, then 4 to B.
        var (set, hosts) = Hosts(5, 4);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);
        var (a, b) = (hosts[0], hosts[1]);

        var picks = Pick(lb, 9 * 100);

        Assert.Equal([a, b, a, b, a, b, a, b, a], picks.Take(9));
        Assert.Equal(2, LongestRun(picks, a));
        Assert.Equal(1, LongestRun(picks, b));
        Assert.Equal(500, picks.Count(h => h == a));
    }

    [Fact]
    public void WeightsOneTwoThreeSplitOneHundredThousandPicksInProportion()
    {
        var (set, hosts) = Hosts(1, 2, 3);
        var lb = new RoundRobinLoadBalancer(set, seed: 12345);

        var counts = Count(Pick(lb, 100_000), hosts);

        // The order repeats every 6 picks, so no host is off its share by more than its weight.
        Assert.InRange(counts[0], 16_666 - 1, 16_666 + 1);
        Assert.InRange(counts[1], 33_333 - 2, 33_333 + 2);
        Assert.InRange(counts[2], 50_000 - 3, 50_000 + 3);
        Assert.Equal(100_000, counts.Sum());
    }

    [Fact]
    public void WeightsAreReducedByTheirCommonDivisor()
    {
        var (set, hosts) = Hosts(100, 200, 300);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);

        Assert.Equal([hosts[2], hosts[1], hosts[2], hosts[0], hosts[1], hosts[2]], Pick(lb, 6));
    }

    [Fact]
    public void WeightsTooUnevenForATableUseTheLockedScheduler()
    {
        // 997 + 1000 picks per period: longer than the table limit given here.
        var (set, hosts) = Hosts(997, 1000);
        var lb = new RoundRobinLoadBalancer(set, seed: 0, maxTableLength: 100);

        var counts = Count(Pick(lb, 1997 * 10), hosts);

        Assert.Equal([9970, 10000], counts);
    }

    [Fact]
    public void NoHealthyHostMeansNoHostWhenPanicModeIsOff()
    {
        var set = new PrioritySet();
        set.Update([Host("10.0.0.1:80", status: HealthStatus.Unhealthy), Host("10.0.0.2:80", status: HealthStatus.Timeout)]);
        var lb = new RoundRobinLoadBalancer(set, LoadBalancerSettings.Default with { PanicThreshold = 0 }, null, null);

        Assert.Null(lb.ChooseHost(null));
    }

    [Fact]
    public void NoHealthyHostMeansPanicOverAllHostsByDefault()
    {
        // Envoy: below the 50% panic threshold the load balancer ignores health.
        var set = new PrioritySet();
        var hosts = new[] { Host("10.0.0.1:80", status: HealthStatus.Unhealthy), Host("10.0.0.2:80", status: HealthStatus.Timeout) };
        set.Update(hosts);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);

        Assert.Equal([hosts[0], hosts[1], hosts[0]], Pick(lb, 3));
    }

    [Fact]
    public void AnEmptyClusterHasNoHost() =>
        Assert.Null(new RoundRobinLoadBalancer(new PrioritySet(), seed: 0).ChooseHost(null));

    [Fact]
    public void OnlyHealthyHostsArePicked()
    {
        var set = new PrioritySet();
        var healthy = Host("10.0.0.2:80");
        var other = Host("10.0.0.3:80");
        // 2 of 3 healthy: health 140 * 2/3 = 93%, above the panic threshold: all load on the healthy hosts.
        set.Update([Host("10.0.0.1:80", status: HealthStatus.Unhealthy), healthy, other]);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);

        Assert.All(Pick(lb, 10), h => Assert.True(ReferenceEquals(healthy, h) || ReferenceEquals(other, h)));
    }

    [Fact]
    public void TheHighestPriorityWithAHealthyHostTakesAllTraffic()
    {
        var set = new PrioritySet();
        var p0 = Host("10.0.0.1:80", priority: 0);
        var p1 = Host("10.0.0.2:80", priority: 1);
        set.Update([p1, p0]);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);

        Assert.All(Pick(lb, 5), h => Assert.Same(p0, h));

        // P0 fails: traffic fails over to P1.
        p0.SetHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
        set.RefreshHealth();
        Assert.All(Pick(lb, 5), h => Assert.Same(p1, h));

        // P0 recovers: back to P0.
        p0.ClearHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
        set.RefreshHealth();
        Assert.All(Pick(lb, 5), h => Assert.Same(p0, h));
    }

    [Fact]
    public void DegradedHostsAreUsedOnlyWhenHealthyCapacityRunsOut()
    {
        var set = new PrioritySet();
        var degraded = Host("10.0.0.1:80", priority: 0, status: HealthStatus.Degraded);
        var backup = Host("10.0.0.2:80", priority: 1);
        set.Update([degraded, backup]);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);

        Assert.Same(backup, lb.ChooseHost(null));

        backup.SetHealthFlag(HostHealthFlags.FailedOutlierCheck);
        set.RefreshHealth();
        Assert.Same(degraded, lb.ChooseHost(null));
    }

    [Fact]
    public void FollowsHostSetUpdates()
    {
        var set = new PrioritySet();
        var a = Host("10.0.0.1:80");
        set.Update([a]);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);
        Assert.Same(a, lb.ChooseHost(null));

        var b = Host("10.0.0.2:80");
        set.Update([b]);

        Assert.Same(b, lb.ChooseHost(null));
    }

    [Fact]
    public void TheContextCanAskForAnotherHost()
    {
        var (set, hosts) = Hosts(1, 1, 1);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);
        var context = new AvoidHosts(retries: 2, hosts[0], hosts[1]);

        Assert.Same(hosts[2], lb.ChooseHost(context));

        // Out of retries: the last pick stands even if the context would reject it.
        var stubborn = new AvoidHosts(retries: 1, hosts[0], hosts[1], hosts[2]);
        Assert.Same(hosts[1], lb.ChooseHost(stubborn));
    }

    [Theory]
    [InlineData(1u, 1u, 1u)]
    [InlineData(1u, 2u, 3u)]
    public void PicksDoNotAllocate(uint a, uint b, uint c)
    {
        var (set, _) = Hosts(a, b, c);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);
        var context = new AvoidHosts(retries: 1);
        // The first pick after an update builds the state for the new snapshot: that allocates, once.
        lb.ChooseHost(null);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            lb.ChooseHost(null);
            lb.ChooseHost(context);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void ConcurrentPicksShareOneRotationExactly()
    {
        // Every pick takes the next slot of the shared table: however the threads interleave,
        // 480,000 picks over a 6-pick period land exactly in proportion.
        var (set, hosts) = Hosts(1, 2, 3);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);
        var counts = new int[8, 3];

        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, thread =>
        {
            for (var i = 0; i < 60_000; i++)
            {
                var host = lb.ChooseHost(null)!;
                counts[thread, Array.IndexOf(hosts, host)]++;
            }
        });

        var totals = Enumerable.Range(0, 3).Select(h => Enumerable.Range(0, 8).Sum(t => counts[t, h])).ToArray();
        Assert.Equal([80_000, 160_000, 240_000], totals);
    }

    [Fact]
    public async Task PicksStayConsistentWhileTheHostSetChanges()
    {
        var first = new[] { Host("10.0.0.1:80"), Host("10.0.0.2:80") };
        var second = new[] { Host("10.0.0.3:80", weight: 2), Host("10.0.0.4:80") };
        var allowed = first.Concat(second).ToHashSet();
        var set = new PrioritySet();
        set.Update(first);
        var lb = new RoundRobinLoadBalancer(set, seed: 0);
        var wrong = 0;
        var picked = 0;

        var writer = Task.Run(() =>
        {
            for (var i = 0; i < 2_000; i++)
            {
                set.Update(i % 2 == 0 ? second : first);
            }
        });
        var readers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var n = 0; n < 10_000 || !writer.IsCompleted; n++)
            {
                var host = lb.ChooseHost(null);
                Interlocked.Increment(ref picked);
                if (host is null || !allowed.Contains(host))
                {
                    Interlocked.Increment(ref wrong);
                }
            }
        })).ToArray();
        await Task.WhenAll([writer, .. readers]).WaitAsync(TimeSpan.FromMinutes(1));

        Assert.Equal(0, wrong);
        Assert.True(picked >= 40_000);
        Assert.Same(first[0], set.Current.Hosts[0]);
    }

    private static (PrioritySet Set, Host[] Hosts) Hosts(params uint[] weights)
    {
        var hosts = weights.Select((w, i) => new Host(IPEndPoint.Parse($"10.0.0.{i + 1}:80"), weight: w)).ToArray();
        var set = new PrioritySet();
        set.Update(hosts);
        return (set, hosts);
    }

    private static Host Host(string address, uint weight = 1, uint priority = 0, HealthStatus status = HealthStatus.Unknown) =>
        new(IPEndPoint.Parse(address), weight: weight, priority: priority, healthStatus: status);

    private static Host[] Pick(ILoadBalancer lb, int count)
    {
        var picks = new Host[count];
        for (var i = 0; i < count; i++)
        {
            picks[i] = lb.ChooseHost(null)!;
        }

        return picks;
    }

    private static int[] Count(Host[] picks, Host[] hosts) =>
        hosts.Select(h => picks.Count(p => ReferenceEquals(p, h))).ToArray();

    private static int LongestRun(Host[] picks, Host host)
    {
        int longest = 0, run = 0;
        foreach (var pick in picks)
        {
            run = ReferenceEquals(pick, host) ? run + 1 : 0;
            longest = Math.Max(longest, run);
        }

        return longest;
    }

    private sealed class AvoidHosts(int retries, params Host[] avoid) : LoadBalancerContext
    {
        public override int HostSelectionRetryCount => retries;

        public override bool ShouldSelectAnotherHost(Host host) => avoid.Contains(host);
    }
}
