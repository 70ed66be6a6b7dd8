using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// Envoy's MAGLEV: a lookup table of <c>table_size</c> (a prime, default 65537) slots filled by each
/// host in turn along its own permutation (offset = xxHash64(key) mod M, skip = xxHash64(key, seed 1)
/// mod (M − 1) + 1), hosts taking turns in proportion to their weights; a request takes slot
/// hash mod M. Hosts are ordered by their key first, so the table depends only on the host set.
/// Lookups are O(1); removing one of N hosts moves a little more than 1/N of the keys.
/// </summary>
internal sealed class MaglevLoadBalancer(PrioritySet prioritySet, LoadBalancerSettings settings, ClusterStats? stats, LbRandom? random)
    : HashingLoadBalancer(prioritySet, settings, stats, random)
{
    protected override HashTable CreateTable(ImmutableArray<Host> hosts, double[] normalizedWeights) =>
        new Table(hosts, normalizedWeights, Settings);

    internal sealed class Table : HashTable
    {
        private readonly Host[] _table;

        public Table(ImmutableArray<Host> hosts, double[] weights, LoadBalancerSettings settings)
        {
            var size = settings.MaglevTableSize;
            var entries = new Entry[hosts.Length];
            for (var i = 0; i < hosts.Length; i++)
            {
                var key = ConsistentHash.HostKey(hosts[i], settings.UseHostnameForHashing);
                entries[i] = new Entry(key, hosts[i], weights[i], ConsistentHash.XxHash64(key) % size, (ConsistentHash.XxHash64(key, 1) % (size - 1)) + 1);
            }

            Array.Sort(entries, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
            var maxWeight = weights.Max();
            _table = new Host[size];
            ulong filled = 0;
            for (var iteration = 1; filled < size; iteration++)
            {
                for (var i = 0; i < entries.Length && filled < size; i++)
                {
                    var entry = entries[i];
                    // A host of the largest weight takes a slot every round; one of a third of
                    // that weight, every third round.
                    if (iteration * entry.Weight < entry.TargetWeight)
                    {
                        continue;
                    }

                    entry.TargetWeight += maxWeight;
                    var slot = (entry.Offset + (entry.Skip * entry.Next)) % size;
                    while (_table[slot] is not null)
                    {
                        entry.Next++;
                        slot = (entry.Offset + (entry.Skip * entry.Next)) % size;
                    }

                    _table[slot] = entry.Host;
                    entry.Next++;
                    filled++;
                }
            }
        }

        public override Host? Choose(ulong hash, int attempt)
        {
            if (attempt > 0)
            {
                // As Envoy: flip many bits so that retries land far from the first slot.
                hash ^= ulong.MaxValue - (ulong)attempt + 1;
            }

            return _table[hash % (ulong)_table.Length];
        }

        private sealed class Entry(string key, Host host, double weight, ulong offset, ulong skip)
        {
            public string Key { get; } = key;

            public Host Host { get; } = host;

            public double Weight { get; } = weight;

            public ulong Offset { get; } = offset;

            public ulong Skip { get; } = skip;

            public ulong Next { get; set; }

            public double TargetWeight { get; set; }
        }
    }
}
