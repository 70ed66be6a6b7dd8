using System.Collections.Immutable;
using Envoy.Config.Core.V3;

namespace Legate.Upstream;

/// <summary>
/// Envoy's zone-aware routing for priority 0 (ZoneAwareLoadBalancerBase), computed once per
/// upstream or local cluster snapshot. Localities are ordered as Envoy orders them (the local one
/// first, the others by region, zone, sub-zone) in both clusters and compared by position. When
/// the local zone's share of the upstream's healthy hosts is at least its share of the local
/// cluster's, every pick stays local (<see cref="Mode.Direct"/>); otherwise only
/// <c>upstream% × 10000 / local%</c> of picks do, and the rest go to the other zones in proportion
/// to their residual capacity (upstream share minus local share, where positive).
/// </summary>
internal sealed class ZoneRouting
{
    private ZoneRouting(Mode mode, ulong localPercentToRoute, ulong[] residualCapacity, ImmutableArray<ImmutableArray<Host>> healthy, ImmutableArray<ImmutableArray<Host>> degraded, bool localInPanic)
    {
        RoutingMode = mode;
        LocalPercentToRoute = localPercentToRoute;
        ResidualCapacity = residualCapacity;
        HealthyPerLocality = healthy;
        DegradedPerLocality = degraded;
        LocalInPanic = localInPanic;
        Healthy = [.. healthy.Select(h => new LoadBalancerBase.HostSource(h))];
        Degraded = [.. degraded.Select(h => new LoadBalancerBase.HostSource(h))];
    }

    internal enum Mode
    {
        /// <summary>No zone-aware routing: fewer than two zones, no healthy local host, a different number of zones, or too few hosts.</summary>
        None,

        /// <summary>Every pick goes to the local zone.</summary>
        Direct,

        /// <summary>A share goes to the local zone, the rest to zones with residual capacity.</summary>
        Residual,
    }

    public Mode RoutingMode { get; }

    /// <summary>In 1/10000: the share of picks routed to the local zone (Residual mode).</summary>
    public ulong LocalPercentToRoute { get; }

    /// <summary>Accumulated residual capacity per zone, in 1/10000 (index 0, the local zone, is 0).</summary>
    public ulong[] ResidualCapacity { get; }

    /// <summary>Healthy hosts per zone, the local zone first.</summary>
    public ImmutableArray<ImmutableArray<Host>> HealthyPerLocality { get; }

    public ImmutableArray<ImmutableArray<Host>> DegradedPerLocality { get; }

    /// <summary>The local cluster's priority 0 is in panic: zone-aware routing is skipped per pick (lb_local_cluster_not_ok).</summary>
    public bool LocalInPanic { get; }

    internal ImmutableArray<LoadBalancerBase.HostSource> Healthy { get; }

    internal ImmutableArray<LoadBalancerBase.HostSource> Degraded { get; }

    /// <summary>
    /// Envoy's regenerateLocalityRoutingStructures for the upstream's priority 0 set and the local
    /// cluster's; counts why routing is off (the lb_* stats), as Envoy does per recomputation.
    /// </summary>
    public static ZoneRouting Compute(HostSet? upstream, HostSet? local, Locality localLocality, ulong minClusterSize, int panicThreshold, ClusterStats? stats)
    {
        stats?.LbRecalculateZoneStructures.Inc();
        var upstreamHealthy = Ordered(upstream, localLocality, out var upstreamDegraded, out var hasLocal);
        var localHealthy = Ordered(local, localLocality, out _, out _);
        var localInPanic = local is null || InPanic(local, panicThreshold);
        var mode = Mode.None;
        if (upstreamHealthy.Length < 2)
        {
            return new ZoneRouting(mode, 0, [], upstreamHealthy, upstreamDegraded, localInPanic);
        }

        if (!hasLocal || upstreamHealthy[0].IsEmpty)
        {
            stats?.LbLocalClusterNotOk.Inc();
            return new ZoneRouting(mode, 0, [], upstreamHealthy, upstreamDegraded, localInPanic);
        }

        if (upstreamHealthy.Length != localHealthy.Length)
        {
            stats?.LbZoneNumberDiffers.Inc();
            return new ZoneRouting(mode, 0, [], upstreamHealthy, upstreamDegraded, localInPanic);
        }

        if ((ulong)upstream!.HealthyHosts.Length < minClusterSize)
        {
            stats?.LbZoneClusterTooSmall.Inc();
            return new ZoneRouting(mode, 0, [], upstreamHealthy, upstreamDegraded, localInPanic);
        }

        var localPercent = Percentages(localHealthy);
        var upstreamPercent = Percentages(upstreamHealthy);
        if (upstreamPercent[0] >= localPercent[0])
        {
            return new ZoneRouting(Mode.Direct, 10000, [], upstreamHealthy, upstreamDegraded, localInPanic);
        }

        var residual = new ulong[upstreamHealthy.Length];
        for (var i = 1; i < residual.Length; i++)
        {
            residual[i] = residual[i - 1] + (upstreamPercent[i] > localPercent[i] ? upstreamPercent[i] - localPercent[i] : 0);
        }

        return new ZoneRouting(Mode.Residual, upstreamPercent[0] * 10000 / localPercent[0], residual, upstreamHealthy, upstreamDegraded, localInPanic);
    }

    /// <summary>Envoy's tryChooseLocalLocalityHosts: the zone (index) for one pick, counting the routing stats.</summary>
    public int ChooseLocality(LbRandom random, ClusterStats? stats)
    {
        if (RoutingMode == Mode.Direct)
        {
            stats?.LbZoneRoutingAllDirectly.Inc();
            return 0;
        }

        if (random.Next() % 10000 < LocalPercentToRoute)
        {
            stats?.LbZoneRoutingSampled.Inc();
            return 0;
        }

        stats?.LbZoneRoutingCrossZone.Inc();
        var total = ResidualCapacity[^1];
        if (total == 0)
        {
            // Rounding can leave no residual capacity anywhere: a random zone, as Envoy.
            stats?.LbZoneNoCapacityLeft.Inc();
            return (int)(random.Next() % (ulong)ResidualCapacity.Length);
        }

        var threshold = random.Next() % total;
        var index = 0;
        while (threshold > ResidualCapacity[index])
        {
            index++;
        }

        return index;
    }

    /// <summary>Each zone's share of the hosts, in 1/10000 (Envoy's calculateLocalityPercentage).</summary>
    private static ulong[] Percentages(ImmutableArray<ImmutableArray<Host>> perLocality)
    {
        ulong total = 0;
        foreach (var hosts in perLocality)
        {
            total += (ulong)hosts.Length;
        }

        var result = new ulong[perLocality.Length];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = total > 0 ? 10000UL * (ulong)perLocality[i].Length / total : 0;
        }

        return result;
    }

    /// <summary>The set's healthy (and degraded) hosts per locality, the local locality first, then by region, zone, sub-zone.</summary>
    private static ImmutableArray<ImmutableArray<Host>> Ordered(HostSet? set, Locality localLocality, out ImmutableArray<ImmutableArray<Host>> degraded, out bool hasLocal)
    {
        hasLocal = false;
        if (set is null)
        {
            degraded = [];
            return [];
        }

        var order = new int[set.Localities.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        var localities = set.Localities;
        Array.Sort(order, (x, y) =>
        {
            var a = localities[x] ?? s_none;
            var b = localities[y] ?? s_none;
            var aLocal = Same(a, localLocality);
            var bLocal = Same(b, localLocality);
            if (aLocal != bLocal)
            {
                return aLocal ? -1 : 1;
            }

            var c = string.CompareOrdinal(a.Region, b.Region);
            c = c != 0 ? c : string.CompareOrdinal(a.Zone, b.Zone);
            return c != 0 ? c : string.CompareOrdinal(a.SubZone, b.SubZone);
        });
        hasLocal = order.Length > 0 && Same(localities[order[0]] ?? s_none, localLocality);
        var healthy = ImmutableArray.CreateBuilder<ImmutableArray<Host>>(order.Length);
        var degradedBuilder = ImmutableArray.CreateBuilder<ImmutableArray<Host>>(order.Length);
        foreach (var i in order)
        {
            healthy.Add(set.HealthyHostsPerLocality[i]);
            degradedBuilder.Add(set.DegradedHostsPerLocality[i]);
        }

        degraded = degradedBuilder.MoveToImmutable();
        return healthy.MoveToImmutable();
    }

    private static readonly Locality s_none = new();

    private static bool Same(Locality a, Locality b) => a.Region == b.Region && a.Zone == b.Zone && a.SubZone == b.SubZone;

    /// <summary>Envoy's isHostSetInPanic with the upstream's threshold: healthy plus degraded below it.</summary>
    private static bool InPanic(HostSet set, int threshold)
    {
        var count = set.Hosts.Length;
        var percent = count == 0 ? 0.0 : 100.0 * (set.HealthyHosts.Length + set.DegradedHosts.Length) / count;
        return percent < threshold;
    }
}
