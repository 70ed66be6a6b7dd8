using System.Net;
using Legate.Stats;
using Legate.Upstream;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Tests.Upstream;

/// <summary>LEAST_REQUEST, RANDOM, RING_HASH and MAGLEV, measured over 100,000 picks or keys.</summary>
public sealed class LoadBalancerPolicyTests
{
    private const int Picks = 100_000;

    [Fact]
    public void LeastRequestWithEqualWeightsSpreadsEvenlyAndAvoidsABusyHost()
    {
        var (set, hosts) = Hosts(1, 1, 1, 1);
        var lb = new LeastRequestLoadBalancer(set, LoadBalancerSettings.Default with { Policy = LbPolicy.LeastRequest }, null, LbRandom.Seeded(1));

        var idle = Count(lb, hosts);
        Assert.All(idle, c => Assert.InRange(c, 23_500, 26_500));

        // Host 0 has 10 requests in flight: with two choices it wins only when both samples are it (1/16).
        for (var i = 0; i < 10; i++)
        {
            hosts[0].RequestStarted();
        }

        var busy = Count(lb, hosts);
        Assert.InRange(busy[0], 5_250, 7_250);
        Assert.All(busy.Skip(1), c => Assert.InRange(c, 30_000, 32_500));
    }

    [Fact]
    public void LeastRequestChoiceCountThreeAvoidsTheBusyHostMore()
    {
        var (set, hosts) = Hosts(1, 1, 1, 1);
        hosts[0].RequestStarted();
        var lb = new LeastRequestLoadBalancer(set, LoadBalancerSettings.Default with { Policy = LbPolicy.LeastRequest, ChoiceCount = 3 }, null, LbRandom.Seeded(2));

        // (1/4)^3 = 1.6%.
        Assert.InRange(Count(lb, hosts)[0], 1_100, 2_100);
    }

    [Fact]
    public void WeightedLeastRequestFollowsWeightsOverActiveRequests()
    {
        var (set, hosts) = Hosts(1, 2, 3);
        var lb = new LeastRequestLoadBalancer(set, LoadBalancerSettings.Default with { Policy = LbPolicy.LeastRequest }, null, LbRandom.Seeded(3));

        var idle = Count(lb, hosts);
        Assert.InRange(idle[0], 16_167, 17_167);
        Assert.InRange(idle[1], 32_833, 33_833);
        Assert.InRange(idle[2], 49_500, 50_500);

        // Host 2 (weight 3) with 2 active requests weighs 3 / (2 + 1) = 1: shares 1 : 2 : 1.
        hosts[2].RequestStarted();
        hosts[2].RequestStarted();
        var loaded = Count(lb, hosts);
        Assert.InRange(loaded[0], 24_000, 26_000);
        Assert.InRange(loaded[1], 49_000, 51_000);
        Assert.InRange(loaded[2], 24_000, 26_000);

        // active_request_bias 0 ignores active requests: plain weighted round robin again.
        var unbiased = new LeastRequestLoadBalancer(set, LoadBalancerSettings.Default with { Policy = LbPolicy.LeastRequest, ActiveRequestBias = 0 }, null, null);
        Assert.InRange(Count(unbiased, hosts)[2], 49_500, 50_500);
    }

    [Fact]
    public void RandomIsUniformAndIgnoresWeightsAsEnvoys()
    {
        var (set, hosts) = Hosts(1, 2, 3, 4);
        var lb = new RandomLoadBalancer(set, LoadBalancerSettings.Default with { Policy = LbPolicy.Random }, null, LbRandom.Seeded(4));

        Assert.All(Count(lb, hosts), c => Assert.InRange(c, 23_500, 26_500));
    }

    [Theory]
    // Ring hash: the removed host's keys (~10%) plus what the resized ring moves (each remaining
    // host goes from 103 to 114 entries with the default minimum ring of 1024, as in Envoy).
    [InlineData(LbPolicy.RingHash, 0.08, 0.20)]
    [InlineData(LbPolicy.Maglev, 0.09, 0.14)]
    public void RemovingOneOfTenHostsRemapsAboutATenthOfTheKeys(LbPolicy policy, double low, double high)
    {
        var hosts = MakeHosts(10);
        var before = Assign(policy, hosts);
        var after = Assign(policy, hosts.Where((_, i) => i != 3).ToArray());

        var moved = 0;
        var movedFromOthers = 0;
        for (var k = 0; k < before.Length; k++)
        {
            if (!ReferenceEquals(before[k], after[k]))
            {
                moved++;
                movedFromOthers += ReferenceEquals(before[k], hosts[3]) ? 0 : 1;
            }
        }

        var fraction = (double)moved / before.Length;
        Assert.InRange(fraction, low, high);
        // Most of what moved was the removed host's; the other hosts keep at least 90% of their keys.
        var onRemoved = before.Count(h => ReferenceEquals(h, hosts[3]));
        Assert.Equal(moved - movedFromOthers, onRemoved);
        Assert.True(movedFromOthers < 0.1 * (before.Length - onRemoved), $"{movedFromOthers} keys of other hosts moved");
    }

    [Theory]
    [InlineData(LbPolicy.RingHash, 0.07, 0.13)]
    [InlineData(LbPolicy.Maglev, 0.097, 0.103)]
    public void HashingSpreadsKeysEvenly(LbPolicy policy, double low, double high)
    {
        var hosts = MakeHosts(10);
        var assignment = Assign(policy, hosts);

        foreach (var host in hosts)
        {
            var share = (double)assignment.Count(h => ReferenceEquals(h, host)) / assignment.Length;
            Assert.InRange(share, low, high);
        }
    }

    [Theory]
    [InlineData(LbPolicy.RingHash)]
    [InlineData(LbPolicy.Maglev)]
    public void TheSameHostSetGivesTheSameAssignmentWhateverItsOrder(LbPolicy policy)
    {
        var hosts = MakeHosts(10);
        var shuffled = hosts.Reverse().ToArray();

        var first = Assign(policy, hosts).Select(h => h.Address.ToString()).ToArray();
        var second = Assign(policy, shuffled).Select(h => h.Address.ToString()).ToArray();
        var again = Assign(policy, MakeHosts(10)).Select(h => h.Address.ToString()).ToArray();

        Assert.Equal(first, second);
        Assert.Equal(first, again);
    }

    [Fact]
    public void RingHashHonoursWeights()
    {
        var (set, hosts) = Hosts(1, 2, 3);
        var lb = new RingHashLoadBalancer(set, LoadBalancerSettings.Default with { Policy = LbPolicy.RingHash }, null, null);
        var counts = new int[3];
        var keys = new Random(5);
        for (var i = 0; i < Picks; i++)
        {
            counts[Array.IndexOf(hosts, lb.ChooseHost(new Hash((ulong)keys.NextInt64())))]++;
        }

        // About 171, 342 and 513 ring entries: shares within a few points of 1/6, 2/6, 3/6.
        Assert.InRange(counts[0], 12_000, 21_500);
        Assert.InRange(counts[1], 28_000, 38_500);
        Assert.InRange(counts[2], 45_000, 55_000);
    }

    [Theory]
    [InlineData(LbPolicy.RingHash)]
    [InlineData(LbPolicy.Maglev)]
    public void WithoutAHashTheHostIsRandom(LbPolicy policy)
    {
        var (set, hosts) = Hosts(1, 1, 1, 1);
        var lb = LoadBalancerFactory.Create(set, LoadBalancerSettings.Default with { Policy = policy }, null, LbRandom.Seeded(6));

        Assert.All(Count(lb, hosts), c => Assert.InRange(c, 20_000, 30_000));
    }

    [Theory]
    [InlineData(LbPolicy.RingHash)]
    [InlineData(LbPolicy.Maglev)]
    public void AHostSelectionRetryMovesToAnotherHost(LbPolicy policy)
    {
        var (set, _) = Hosts(1, 1, 1);
        var lb = LoadBalancerFactory.Create(set, LoadBalancerSettings.Default with { Policy = policy }, null, null);
        var first = lb.ChooseHost(new Hash(42))!;

        var retried = lb.ChooseHost(new Hash(42, avoid: first, retries: 3));

        Assert.NotSame(first, retried);
    }

    [Fact]
    public void HashBalanceFactorSendsKeysOffAnOverloadedHost()
    {
        var store = new StatsStore();
        var stats = new ClusterStats(store, "c");
        var (set, hosts) = Hosts(1, 1, 1, 1);
        var plain = new MaglevLoadBalancer(set, LoadBalancerSettings.Default with { Policy = LbPolicy.Maglev }, stats, null);
        var bounded = new MaglevLoadBalancer(set, LoadBalancerSettings.Default with { Policy = LbPolicy.Maglev, HashBalanceFactor = 150 }, stats, null);
        var key = Enumerable.Range(0, 1000).Select(k => new Hash((ulong)k * 7919)).First(h => ReferenceEquals(plain.ChooseHost(h), hosts[0]));

        // 8 requests in flight, all on host 0: its bound is ceil(ceil(9 x 1.5) / 4) = 4.
        for (var i = 0; i < 8; i++)
        {
            hosts[0].RequestStarted();
            stats.UpstreamRqActive.Inc();
        }

        Assert.Same(hosts[0], plain.ChooseHost(key));
        var moved = bounded.ChooseHost(key);
        Assert.NotSame(hosts[0], moved);
        Assert.Same(moved, bounded.ChooseHost(key));
    }

    [Theory]
    [InlineData("", 6142509188972423790UL)]
    [InlineData("a", 4993892634952068459UL)]
    [InlineData("hello", 2762169579135187400UL)]
    [InlineData("10.0.0.1:80_0", 13659246566588789388UL)]
    [InlineData("abcdefgh", 8664279048047335611UL)]
    [InlineData("abcdefghi", 13036955925923793583UL)]
    public void MurmurHash2MatchesLibstdcxxStdHash(string key, ulong expected) =>
        // Expected values printed by std::hash<std::string> of GCC's libstdc++ (what Envoy's MURMUR_HASH_2 is).
        Assert.Equal(expected, ConsistentHash.MurmurHash2(key));

    [Fact]
    public void XxHash64MatchesTheReferenceVector() =>
        Assert.Equal(0xEF46DB3751D8E999UL, ConsistentHash.XxHash64(""));

    [Fact]
    public void RingHashWithMurmurPlacesHostsDifferentlyButAsConsistently()
    {
        var hosts = MakeHosts(5);
        var xx = Assign(LbPolicy.RingHash, hosts);
        var murmur = Assign(LbPolicy.RingHash, hosts, LoadBalancerSettings.Default with { Policy = LbPolicy.RingHash, RingHashMurmur2 = true });
        var murmurAgain = Assign(LbPolicy.RingHash, hosts, LoadBalancerSettings.Default with { Policy = LbPolicy.RingHash, RingHashMurmur2 = true });

        Assert.NotEqual(xx, murmur);
        Assert.Equal(murmur, murmurAgain);
    }

    private static Host[] Assign(LbPolicy policy, Host[] hosts, LoadBalancerSettings? settings = null)
    {
        var set = new PrioritySet();
        set.Update(hosts);
        var lb = LoadBalancerFactory.Create(set, settings ?? LoadBalancerSettings.Default with { Policy = policy }, null, null);
        var keys = new Random(99);
        var result = new Host[Picks];
        for (var i = 0; i < Picks; i++)
        {
            result[i] = lb.ChooseHost(new Hash((ulong)keys.NextInt64() ^ ((ulong)keys.Next() << 63)))!;
        }

        return result;
    }

    private static Host[] MakeHosts(int count) =>
        Enumerable.Range(1, count).Select(i => new Host(IPEndPoint.Parse($"10.1.0.{i}:8080"))).ToArray();

    private static (PrioritySet Set, Host[] Hosts) Hosts(params uint[] weights)
    {
        var hosts = weights.Select((w, i) => new Host(IPEndPoint.Parse($"10.0.0.{i + 1}:80"), weight: w)).ToArray();
        var set = new PrioritySet();
        set.Update(hosts);
        return (set, hosts);
    }

    private static int[] Count(ILoadBalancer lb, Host[] hosts)
    {
        var counts = new int[hosts.Length];
        for (var i = 0; i < Picks; i++)
        {
            counts[Array.IndexOf(hosts, lb.ChooseHost(null))]++;
        }

        return counts;
    }

    private sealed class Hash(ulong hash, Host? avoid = null, int retries = 0) : LoadBalancerContext
    {
        public override ulong? HashKey => hash;

        public override int HostSelectionRetryCount => retries;

        public override bool ShouldSelectAnotherHost(Host host) => ReferenceEquals(host, avoid);
    }
}
