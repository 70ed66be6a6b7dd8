using System.Net;
using Envoy.Config.Core.V3;
using Legate.Upstream;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Tests.Upstream;

/// <summary>
/// Ring hash and Maglev with locality_weighted_lb_config: a host's share is its share of its
/// locality's host weights times its locality's share of the locality weights (Envoy's
/// normalizeLocalityWeights); a locality of weight 0 takes nothing.
/// </summary>
public sealed class HashingLocalityWeightTests
{
    [Theory]
    [InlineData(LbPolicy.RingHash)]
    [InlineData(LbPolicy.Maglev)]
    public void LocalityWeightsScaleTheHashSpaceOfTheirHosts(LbPolicy policy)
    {
        // Locality a (weight 1): one host. Locality b (weight 3): two hosts of weight 1 and 2.
        // Shares: a 1/4; b's hosts 3/4 × 1/3 = 1/4 and 3/4 × 2/3 = 1/2. Locality c has weight 0.
        var a = Host(1, "a", 1, localityWeight: 1);
        var b1 = Host(2, "b", 1, localityWeight: 3);
        var b2 = Host(3, "b", 2, localityWeight: 3);
        var c = Host(4, "c", 5, localityWeight: 0);
        var counts = Picks(policy, [a, b1, b2, c]);

        Assert.InRange(counts[a], 0.23, 0.27);
        Assert.InRange(counts[b1], 0.23, 0.27);
        Assert.InRange(counts[b2], 0.48, 0.52);
        Assert.Equal(0, counts[c]);
    }

    [Theory]
    [InlineData(LbPolicy.RingHash)]
    [InlineData(LbPolicy.Maglev)]
    public void WithoutLocalityWeightingHostWeightsAloneCount(LbPolicy policy)
    {
        var a = Host(1, "a", 1, localityWeight: 1);
        var b = Host(2, "b", 3, localityWeight: 100);
        var counts = Picks(policy, [a, b], localityWeighted: false);

        Assert.InRange(counts[a], 0.23, 0.27);
        Assert.InRange(counts[b], 0.73, 0.77);
    }

    [Theory]
    [InlineData(LbPolicy.RingHash)]
    [InlineData(LbPolicy.Maglev)]
    public void WhenEveryLocalityIsWeightlessNoHostIsChosen(LbPolicy policy)
    {
        var set = new PrioritySet();
        set.Update([Host(1, "a", 1, localityWeight: 0)]);
        var lb = LoadBalancerFactory.Create(set, Settings(policy, localityWeighted: true), null, LbRandom.Seeded(1));

        Assert.Null(lb.ChooseHost(new HashContext { HashKey = 42 }));
    }

    private static Dictionary<Host, double> Picks(LbPolicy policy, Host[] hosts, bool localityWeighted = true)
    {
        var set = new PrioritySet();
        set.Update(hosts);
        var lb = LoadBalancerFactory.Create(set, Settings(policy, localityWeighted), null, LbRandom.Seeded(1));
        var counts = hosts.ToDictionary(h => h, _ => 0.0);
        var random = new Random(7);
        var context = new HashContext();
        const int picks = 100_000;
        for (var i = 0; i < picks; i++)
        {
            context.HashKey = (ulong)random.NextInt64();
            counts[lb.ChooseHost(context)!]++;
        }

        foreach (var host in hosts)
        {
            counts[host] /= picks;
        }

        return counts;
    }

    private static LoadBalancerSettings Settings(LbPolicy policy, bool localityWeighted) =>
        LoadBalancerSettings.Default with { Policy = policy, LocalityWeighted = localityWeighted, MinimumRingSize = 64 * 1024 };

    private static Host Host(int port, string zone, uint weight, uint localityWeight) =>
        new(new IPEndPoint(IPAddress.Loopback, port), weight: weight, locality: new Locality { Zone = zone }, localityWeight: localityWeight);

    private sealed class HashContext : LoadBalancerContext
    {
    }
}
