using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// Every host set of a cluster as of one update: what a load balancer reads. Readers take the
/// current snapshot with one reference read and keep using it; nothing in it ever changes.
/// </summary>
internal sealed class PrioritySnapshot
{
    public static readonly PrioritySnapshot Empty = new([], [], 0);

    private PrioritySnapshot(ImmutableArray<HostSet> hostSets, ImmutableArray<Host> hosts, long version)
    {
        HostSets = hostSets;
        Hosts = hosts;
        Version = version;
    }

    /// <summary>
    /// One set per priority that has hosts, the highest (0) first. Envoy keeps empty sets for
    /// skipped priorities; they take no traffic, so leaving them out changes nothing and keeps a
    /// stray <c>priority: 1000000</c> from allocating a million sets.
    /// </summary>
    public ImmutableArray<HostSet> HostSets { get; }

    /// <summary>Every host of every priority, in update order.</summary>
    public ImmutableArray<Host> Hosts { get; }

    /// <summary>Counts the updates that changed something; 0 for the empty start.</summary>
    public long Version { get; }

    /// <summary>Groups <paramref name="hosts"/> by their current priority and health.</summary>
    public static PrioritySnapshot Build(ImmutableArray<Host> hosts, long version)
    {
        if (hosts.IsEmpty)
        {
            return new PrioritySnapshot([], hosts, version);
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
            sets.Add(new HostSet(priority, builder.DrainToImmutable()));
        }

        return new PrioritySnapshot(sets.MoveToImmutable(), hosts, version);
    }
}
