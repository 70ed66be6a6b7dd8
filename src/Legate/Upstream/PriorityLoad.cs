using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// How a cluster's traffic is spread over its priorities, as Envoy computes it: each priority's
/// health is its share of healthy hosts times the overprovisioning factor (capped at 100%), the
/// same for degraded hosts; load goes to the highest priorities first, as much as their health
/// allows, then to degraded hosts, and whatever rounding leaves over goes to the first priority
/// with healthy (else degraded) hosts. A priority whose healthy-plus-degraded share is below the
/// panic threshold is "in panic" and balances over all its hosts; when every priority panics, load
/// follows host counts instead of health. Computed once per snapshot; immutable.
/// </summary>
/// <remarks>
/// Indices are positions in <see cref="PrioritySnapshot.HostSets"/> (priorities without hosts are
/// left out there; they have no health and would take no load).
/// </remarks>
internal sealed class PriorityLoad
{
    private PriorityLoad(int[] healthy, int[] degraded, bool[] panic, int[] health, int[] degradedHealth)
    {
        HealthyLoad = ImmutableArray.Create(healthy);
        DegradedLoad = ImmutableArray.Create(degraded);
        Panic = ImmutableArray.Create(panic);
        Health = ImmutableArray.Create(health);
        DegradedHealth = ImmutableArray.Create(degradedHealth);
        for (var i = 0; i < healthy.Length; i++)
        {
            if (healthy[i] == 100)
            {
                Single = (i, false);
            }
            else if (degraded[i] == 100)
            {
                Single = (i, true);
            }
        }
    }

    /// <summary>The priority that takes all the load, when one does: no number needs drawing.</summary>
    public (int Index, bool Degraded)? Single { get; }

    /// <summary>Percent of requests for each priority's healthy hosts.</summary>
    public ImmutableArray<int> HealthyLoad { get; }

    /// <summary>Percent of requests for each priority's degraded hosts.</summary>
    public ImmutableArray<int> DegradedLoad { get; }

    /// <summary>Whether each priority balances over all of its hosts (Envoy's panic mode).</summary>
    public ImmutableArray<bool> Panic { get; }

    /// <summary>Each priority's health, 0–100, after the overprovisioning factor.</summary>
    public ImmutableArray<int> Health { get; }

    /// <summary>Each priority's degraded availability, 0–100.</summary>
    public ImmutableArray<int> DegradedHealth { get; }

    /// <summary>
    /// All the load on one priority (position <paramref name="index"/>), its healthy or its degraded
    /// hosts, with <paramref name="original"/>'s health and panic flags: what an aggregate cluster
    /// hands the cluster it chose (Envoy's AggregateLoadBalancerContext), so that cluster's own
    /// load balancer picks within that priority and still balances over all of it when it panics.
    /// </summary>
    public static PriorityLoad Only(PriorityLoad original, int index, bool degraded)
    {
        var n = original.HealthyLoad.Length;
        var healthy = new int[n];
        var degradedLoad = new int[n];
        (degraded ? degradedLoad : healthy)[index] = 100;
        return new PriorityLoad(healthy, degradedLoad, [.. original.Panic], [.. original.Health], [.. original.DegradedHealth]);
    }

    /// <param name="panicThreshold">healthy_panic_threshold in percent (0 disables panic mode).</param>
    public static PriorityLoad Compute(PrioritySnapshot snapshot, int panicThreshold)
    {
        var sets = snapshot.HostSets;
        var n = Math.Max(1, sets.Length);
        var health = new int[n];
        var degradedHealth = new int[n];
        var healthyLoad = new int[n];
        var degradedLoad = new int[n];
        var panic = new bool[n];
        for (var i = 0; i < sets.Length; i++)
        {
            (health[i], degradedHealth[i]) = Availability(sets[i]);
        }

        var total = NormalizedTotalAvailability(health, degradedHealth);
        if (total > 0)
        {
            var (firstHealthy, remaining) = Distribute(healthyLoad, health, 100, total);
            var (firstDegraded, left) = Distribute(degradedLoad, degradedHealth, remaining, total);
            if (left != 0)
            {
                if (firstHealthy >= 0)
                {
                    healthyLoad[firstHealthy] += left;
                }
                else
                {
                    degradedLoad[firstDegraded] += left;
                }
            }
        }

        panicThreshold = Math.Clamp(panicThreshold, 0, 100);
        if (panicThreshold == 0 && total == 0)
        {
            // Nothing to route to and panic disabled: the loads must still add up to 100.
            healthyLoad[0] = 100;
            return new PriorityLoad(healthyLoad, degradedLoad, panic, health, degradedHealth);
        }

        var totalPanic = sets.Length > 0;
        for (var i = 0; i < sets.Length; i++)
        {
            // Never panic while the priorities together have enough capacity.
            panic[i] = total != 100 && InPanic(sets[i], panicThreshold);
            totalPanic &= panic[i];
        }

        if (totalPanic)
        {
            LoadInTotalPanic(sets, healthyLoad, degradedLoad);
        }

        return new PriorityLoad(healthyLoad, degradedLoad, panic, health, degradedHealth);
    }

    /// <summary>
    /// This load with the <paramref name="excluded"/> priorities (indices) taken out and the rest
    /// spread by health over the others, as Envoy's previous_priorities retry plugin does (its own
    /// distribution: each priority takes health × 100 / total, repeated until all 100 is handed
    /// out); panic flags stay. Null when the remaining priorities have no health at all.
    /// </summary>
    public PriorityLoad? Excluding(ReadOnlySpan<bool> excluded)
    {
        var n = Health.Length;
        var health = new int[n];
        var degradedHealth = new int[n];
        var total = 0;
        for (var i = 0; i < n; i++)
        {
            if (i >= excluded.Length || !excluded[i])
            {
                health[i] = Health[i];
                degradedHealth[i] = DegradedHealth[i];
                total += health[i] + degradedHealth[i];
            }
        }

        total = Math.Min(total, 100);
        if (total == 0)
        {
            return null;
        }

        var healthyLoad = new int[n];
        var degradedLoad = new int[n];
        var remaining = 100;
        while (remaining != 0)
        {
            for (var i = 0; i < n; i++)
            {
                var delta = Math.Min(remaining, health[i] * 100 / total);
                healthyLoad[i] += delta;
                remaining -= delta;
            }

            for (var i = 0; i < n; i++)
            {
                var delta = Math.Min(remaining, degradedHealth[i] * 100 / total);
                degradedLoad[i] += delta;
                remaining -= delta;
            }
        }

        return new PriorityLoad(healthyLoad, degradedLoad, [.. Panic], [.. Health], [.. DegradedHealth]);
    }

    /// <summary>
    /// The priority (index) and whether its degraded hosts are meant, for a number drawn at random
    /// (or a request hash): <c>hash % 100 + 1</c> walks the healthy loads, then the degraded ones.
    /// </summary>
    public (int Index, bool Degraded) Choose(ulong hash)
    {
        var point = (int)(hash % 100) + 1;
        var aggregate = 0;
        for (var i = 0; i < HealthyLoad.Length; i++)
        {
            aggregate += HealthyLoad[i];
            if (point <= aggregate)
            {
                return (i, false);
            }
        }

        for (var i = 0; i < DegradedLoad.Length; i++)
        {
            aggregate += DegradedLoad[i];
            if (point <= aggregate)
            {
                return (i, true);
            }
        }

        return (0, false);
    }

    private static (int Healthy, int Degraded) Availability(HostSet set)
    {
        ulong healthy, degraded, total;
        if (set.WeightedPriorityHealth)
        {
            healthy = SumWeights(set.HealthyHosts);
            degraded = SumWeights(set.DegradedHosts);
            total = SumWeights(set.Hosts) - set.ExcludedWeight;
        }
        else
        {
            healthy = (ulong)set.HealthyHosts.Length;
            degraded = (ulong)set.DegradedHosts.Length;
            total = (ulong)(set.Hosts.Length - set.ExcludedCount);
        }

        if (total == 0)
        {
            return (0, 0);
        }

        var factor = (ulong)set.OverprovisioningFactor;
        return ((int)Math.Min(100, factor * healthy / total), (int)Math.Min(100, factor * degraded / total));
    }

    private static ulong SumWeights(ImmutableArray<Host> hosts)
    {
        ulong sum = 0;
        foreach (var host in hosts)
        {
            sum += host.Weight;
        }

        return sum;
    }

    private static int NormalizedTotalAvailability(int[] health, int[] degraded)
    {
        var sum = 0;
        for (var i = 0; i < health.Length; i++)
        {
            sum += health[i] + degraded[i];
        }

        return Math.Min(100, sum);
    }

    private static (int First, int Remaining) Distribute(int[] load, int[] availability, int totalLoad, int normalizedTotal)
    {
        var first = -1;
        for (var i = 0; i < availability.Length; i++)
        {
            if (first < 0 && availability[i] > 0)
            {
                first = i;
            }

            load[i] = Math.Min(totalLoad, availability[i] * 100 / normalizedTotal);
            totalLoad -= load[i];
        }

        return (first, totalLoad);
    }

    private static bool InPanic(HostSet set, int threshold)
    {
        // As Envoy: excluded hosts do not count.
        var count = set.Hosts.Length - set.ExcludedCount;
        if (count == 0)
        {
            return true;
        }

        var available = 100.0 * set.HealthyHosts.Length / count + 100.0 * set.DegradedHosts.Length / count;
        return available < threshold;
    }

    private static void LoadInTotalPanic(ImmutableArray<HostSet> sets, int[] healthyLoad, int[] degradedLoad)
    {
        var totalHosts = 0;
        foreach (var set in sets)
        {
            totalHosts += set.Hosts.Length;
        }

        Array.Clear(degradedLoad);
        if (totalHosts == 0)
        {
            Array.Clear(healthyLoad);
            healthyLoad[0] = 100;
            return;
        }

        var remaining = 100;
        var firstNonEmpty = -1;
        for (var i = 0; i < sets.Length; i++)
        {
            var count = sets[i].Hosts.Length;
            if (firstNonEmpty < 0 && count > 0)
            {
                firstNonEmpty = i;
            }

            healthyLoad[i] = 100 * count / totalHosts;
            remaining -= healthyLoad[i];
        }

        healthyLoad[firstNonEmpty] += remaining;
    }
}
