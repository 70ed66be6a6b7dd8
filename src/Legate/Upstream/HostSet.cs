using System.Collections.Immutable;
using Envoy.Config.Core.V3;

namespace Legate.Upstream;

/// <summary>
/// The hosts of one priority level, with the healthy and degraded ones already picked out and
/// grouped by locality, as of one update. Immutable: a change builds a new one (see
/// <see cref="PrioritySet"/>), and an update that leaves a priority as it was keeps its
/// <see cref="HostSet"/> object, so load balancers keep what they built for it (ring hash and
/// Maglev tables, schedulers).
/// </summary>
internal sealed class HostSet
{
    // What each host looked like when this set was built: a later snapshot may reuse the set only
    // if nothing a load balancer reads has changed since.
    private readonly (HostHealth Health, uint Weight, uint LocalityWeight, bool Excluded)[] _seen;

    public HostSet(uint priority, ImmutableArray<Host> hosts, uint overprovisioningFactor = PrioritySet.DefaultOverprovisioningFactor, bool weightedPriorityHealth = false,
        Func<Locality?, uint, uint>? localityWeightOf = null)
    {
        Priority = priority;
        Hosts = hosts;
        OverprovisioningFactor = overprovisioningFactor;
        WeightedPriorityHealth = weightedPriorityHealth;
        _seen = new (HostHealth, uint, uint, bool)[hosts.Length];
        var healthy = ImmutableArray.CreateBuilder<Host>();
        var degraded = ImmutableArray.CreateBuilder<Host>();
        for (var i = 0; i < hosts.Length; i++)
        {
            var host = hosts[i];
            var health = host.Health;
            var excluded = host.IsExcluded;
            _seen[i] = (health, host.Weight, host.LocalityWeight, excluded);
            if (excluded)
            {
                ExcludedCount++;
                ExcludedWeight += host.Weight;
            }

            switch (health)
            {
                case HostHealth.Healthy:
                    healthy.Add(host);
                    break;
                case HostHealth.Degraded:
                    degraded.Add(host);
                    break;
            }
        }

        HealthyHosts = healthy.DrainToImmutable();
        DegradedHosts = degraded.DrainToImmutable();
        (Localities, LocalityWeights, HostsPerLocality, HealthyHostsPerLocality, DegradedHostsPerLocality) = GroupByLocality(hosts, _seen, localityWeightOf);
    }

    public uint Priority { get; }

    /// <summary>Every host of this priority, in config (or DNS answer) order.</summary>
    public ImmutableArray<Host> Hosts { get; }

    public ImmutableArray<Host> HealthyHosts { get; }

    public ImmutableArray<Host> DegradedHosts { get; }

    /// <summary>
    /// Hosts Envoy excludes from the balancer's arithmetic (pending their first health check with
    /// <c>ignore_new_hosts_until_first_hc</c>, or excluded via an immediate health check failure):
    /// they do not count in a priority's health or panic share. They are never healthy.
    /// </summary>
    public int ExcludedCount { get; }

    /// <summary>The weights of the excluded hosts (for <c>weighted_priority_health</c>).</summary>
    public ulong ExcludedWeight { get; }

    /// <summary>The <c>ClusterLoadAssignment.policy.overprovisioning_factor</c> (140 = 1.4).</summary>
    public uint OverprovisioningFactor { get; }

    /// <summary><c>policy.weighted_priority_health</c>: priority health counts host weights instead of hosts.</summary>
    public bool WeightedPriorityHealth { get; }

    /// <summary>The localities of this priority in order of first appearance (null = no locality).</summary>
    public ImmutableArray<Locality?> Localities { get; }

    /// <summary>Each locality's <c>load_balancing_weight</c> (0 = unset), parallel to <see cref="Localities"/>.</summary>
    public ImmutableArray<uint> LocalityWeights { get; }

    public ImmutableArray<ImmutableArray<Host>> HostsPerLocality { get; }

    public ImmutableArray<ImmutableArray<Host>> HealthyHostsPerLocality { get; }

    public ImmutableArray<ImmutableArray<Host>> DegradedHostsPerLocality { get; }

    /// <summary>
    /// True when <paramref name="hosts"/> are the same hosts in the same order, each with the
    /// health, weight and locality weight this set was built with, and the policy is the same.
    /// </summary>
    public bool Matches(ImmutableArray<Host> hosts, uint overprovisioningFactor, bool weightedPriorityHealth)
    {
        if (hosts.Length != Hosts.Length || overprovisioningFactor != OverprovisioningFactor || weightedPriorityHealth != WeightedPriorityHealth)
        {
            return false;
        }

        for (var i = 0; i < hosts.Length; i++)
        {
            var host = hosts[i];
            if (!ReferenceEquals(host, Hosts[i]) || _seen[i] != (host.Health, host.Weight, host.LocalityWeight, host.IsExcluded))
            {
                return false;
            }
        }

        return true;
    }

    private static (ImmutableArray<Locality?>, ImmutableArray<uint>, ImmutableArray<ImmutableArray<Host>>, ImmutableArray<ImmutableArray<Host>>, ImmutableArray<ImmutableArray<Host>>)
        GroupByLocality(ImmutableArray<Host> hosts, (HostHealth Health, uint Weight, uint LocalityWeight, bool Excluded)[] seen, Func<Locality?, uint, uint>? localityWeightOf)
    {
        var localities = new List<Locality?>();
        var weights = new List<uint>();
        var all = new List<ImmutableArray<Host>.Builder>();
        var healthy = new List<ImmutableArray<Host>.Builder>();
        var degraded = new List<ImmutableArray<Host>.Builder>();
        for (var i = 0; i < hosts.Length; i++)
        {
            var host = hosts[i];
            var index = localities.FindIndex(l => Equals(l, host.Locality));
            if (index < 0)
            {
                index = localities.Count;
                localities.Add(host.Locality);
                // A subset with scale_locality_weight scales the configured weight (SubsetLoadBalancer).
                weights.Add(localityWeightOf is null ? seen[i].LocalityWeight : localityWeightOf(host.Locality, seen[i].LocalityWeight));
                all.Add(ImmutableArray.CreateBuilder<Host>());
                healthy.Add(ImmutableArray.CreateBuilder<Host>());
                degraded.Add(ImmutableArray.CreateBuilder<Host>());
            }

            all[index].Add(host);
            if (seen[i].Health == HostHealth.Healthy)
            {
                healthy[index].Add(host);
            }
            else if (seen[i].Health == HostHealth.Degraded)
            {
                degraded[index].Add(host);
            }
        }

        return ([.. localities], [.. weights], Freeze(all), Freeze(healthy), Freeze(degraded));
    }

    private static ImmutableArray<ImmutableArray<Host>> Freeze(List<ImmutableArray<Host>.Builder> builders)
    {
        var result = ImmutableArray.CreateBuilder<ImmutableArray<Host>>(builders.Count);
        foreach (var builder in builders)
        {
            result.Add(builder.DrainToImmutable());
        }

        return result.MoveToImmutable();
    }
}
