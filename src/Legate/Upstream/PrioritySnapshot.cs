using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// Every host set of a cluster as of one update: what a load balancer reads. Readers take the
/// current snapshot with one reference read and keep using it; nothing in it ever changes.
/// </summary>
internal sealed class PrioritySnapshot
{
    public static readonly PrioritySnapshot Empty = new([], [], 0, PrioritySet.DefaultOverprovisioningFactor, false);

    private PrioritySnapshot(ImmutableArray<HostSet> hostSets, ImmutableArray<Host> hosts, long version, uint overprovisioningFactor, bool weightedPriorityHealth, bool linearized = false)
    {
        IsLinearized = linearized;
        HostSets = hostSets;
        Hosts = hosts;
        Version = version;
        OverprovisioningFactor = overprovisioningFactor;
        WeightedPriorityHealth = weightedPriorityHealth;
    }

    /// <summary>The load assignment's <c>policy.overprovisioning_factor</c> (default 140).</summary>
    public uint OverprovisioningFactor { get; }

    /// <summary>The load assignment's <c>policy.weighted_priority_health</c>.</summary>
    public bool WeightedPriorityHealth { get; }

    /// <summary>
    /// One set per priority that has hosts, the highest (0) first. Envoy keeps empty sets for
    /// skipped priorities; they take no traffic, so leaving them out changes nothing and keeps a
    /// stray <c>priority: 1000000</c> from allocating a million sets.
    /// </summary>
    public ImmutableArray<HostSet> HostSets { get; }

    /// <summary>Every host of every priority, in update order.</summary>
    public ImmutableArray<Host> Hosts { get; }

    /// <summary>An aggregate cluster's view: positions, not priority numbers, are its priorities.</summary>
    public bool IsLinearized { get; }

    /// <summary>Counts the updates that changed something; 0 for the empty start.</summary>
    public long Version { get; }

    /// <summary>Groups <paramref name="hosts"/> by their current priority and health.</summary>
    public static PrioritySnapshot Build(ImmutableArray<Host> hosts, long version) =>
        Build(hosts, version, PrioritySet.DefaultOverprovisioningFactor, weightedPriorityHealth: false, previous: null);

    /// <summary>
    /// Groups <paramref name="hosts"/> by their current priority and health. A priority whose hosts,
    /// health and weights are what they were in <paramref name="previous"/> keeps its
    /// <see cref="HostSet"/> object: only the priorities an update touched are rebuilt.
    /// </summary>
    /// <param name="localityWeightOf">
    /// When set, each locality's weight (priority, locality, configured weight → weight) and no set is
    /// kept from <paramref name="previous"/> (the weights depend on more than this set's hosts).
    /// </param>
    public static PrioritySnapshot Build(ImmutableArray<Host> hosts, long version, uint overprovisioningFactor, bool weightedPriorityHealth, PrioritySnapshot? previous,
        Func<uint, Envoy.Config.Core.V3.Locality?, uint, uint>? localityWeightOf = null)
    {
        if (hosts.IsEmpty)
        {
            return new PrioritySnapshot([], hosts, version, overprovisioningFactor, weightedPriorityHealth);
        }

        // Read each priority once: a later update may change it in place while we build.
        var byPriority = new SortedDictionary<uint, ImmutableArray<Host>.Builder>();
        foreach (var host in hosts)
        {
            var priority = host.Priority;
            if (!byPriority.TryGetValue(priority, out var builder))
            {
                builder = ImmutableArray.CreateBuilder<Host>();
                byPriority.Add(priority, builder);
            }

            builder.Add(host);
        }

        var sets = ImmutableArray.CreateBuilder<HostSet>(byPriority.Count);
        foreach (var (priority, builder) in byPriority)
        {
            var members = builder.DrainToImmutable();
            var kept = localityWeightOf is null ? previous?.Find(priority) : null;
            sets.Add(kept is not null && kept.Matches(members, overprovisioningFactor, weightedPriorityHealth)
                ? kept
                : new HostSet(priority, members, overprovisioningFactor, weightedPriorityHealth,
                    localityWeightOf is null ? null : (locality, weight) => localityWeightOf(priority, locality, weight)));
        }

        return new PrioritySnapshot(sets.MoveToImmutable(), hosts, version, overprovisioningFactor, weightedPriorityHealth);
    }

    /// <summary>
    /// An aggregate cluster's view (Envoy's linearized priority set): the given host sets, each
    /// kept as its cluster built it, one after the other; positions, not their own priority
    /// numbers, are the aggregate's priorities.
    /// </summary>
    public static PrioritySnapshot Linearized(ImmutableArray<HostSet> sets, long version)
    {
        var hosts = ImmutableArray.CreateBuilder<Host>();
        foreach (var set in sets)
        {
            hosts.AddRange(set.Hosts);
        }

        return new PrioritySnapshot(sets, hosts.ToImmutable(), version, PrioritySet.DefaultOverprovisioningFactor, weightedPriorityHealth: false, linearized: true);
    }

    /// <summary>
    /// The index in <see cref="HostSets"/> of the priority <paramref name="host"/> is in, or -1
    /// (Envoy's retry priority mapping): its priority number's set, or in a linearized snapshot the
    /// position of its own cluster's set for that priority (every listed cluster has a priority 0).
    /// </summary>
    public int PriorityIndexOf(Host host)
    {
        var priority = host.Priority;
        for (var p = 0; p < HostSets.Length; p++)
        {
            var set = HostSets[p];
            if (set.Priority != priority)
            {
                continue;
            }

            if (!IsLinearized)
            {
                return p;
            }

            foreach (var member in set.Hosts)
            {
                if (ReferenceEquals(member, host))
                {
                    return p;
                }
            }
        }

        return -1;
    }

    /// <summary>The host set of <paramref name="priority"/>, or null when no host has it.</summary>
    public HostSet? Find(uint priority)
    {
        foreach (var set in HostSets)
        {
            if (set.Priority == priority)
            {
                return set;
            }
        }

        return null;
    }
}
