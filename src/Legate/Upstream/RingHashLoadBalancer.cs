using System.Collections.Immutable;
using System.Globalization;

namespace Legate.Upstream;

/// <summary>
/// Envoy's RING_HASH (ketama): each host is hashed onto a 64-bit ring as "key_0", "key_1", … as many
/// times as its weight share of the ring; a request takes the first entry at or after its hash,
/// wrapping around. Removing one of N hosts moves only that host's keys (about 1/N). The ring is
/// sized so the lightest host gets a whole number of entries, at least <c>minimum_ring_size</c> and
/// at most <c>maximum_ring_size</c> entries.
/// </summary>
internal sealed class RingHashLoadBalancer(PrioritySet prioritySet, LoadBalancerSettings settings, ClusterStats? stats, LbRandom? random)
    : HashingLoadBalancer(prioritySet, settings, stats, random)
{
    protected override HashTable CreateTable(ImmutableArray<Host> hosts, double[] normalizedWeights) =>
        new Ring(hosts, normalizedWeights, Settings);

    internal sealed class Ring : HashTable
    {
        private readonly ulong[] _hashes;
        private readonly Host[] _hosts;

        public Ring(ImmutableArray<Host> hosts, double[] weights, LoadBalancerSettings settings)
        {
            var minWeight = weights.Min();
            var scale = Math.Min(Math.Ceiling(minWeight * settings.MinimumRingSize) / minWeight, settings.MaximumRingSize);
            var size = (int)Math.Ceiling(scale);
            var entries = new List<(ulong Hash, int Host)>(size);
            double current = 0, target = 0;
            for (var h = 0; h < hosts.Length; h++)
            {
                var key = ConsistentHash.HostKey(hosts[h], settings.UseHostnameForHashing) + "_";
                target += scale * weights[h];
                for (var i = 0; current < target; i++, current++)
                {
                    var entryKey = key + i.ToString(CultureInfo.InvariantCulture);
                    var hash = settings.RingHashMurmur2 ? ConsistentHash.MurmurHash2(entryKey) : ConsistentHash.XxHash64(entryKey);
                    entries.Add((hash, h));
                }
            }

            // Equal hashes (vanishingly rare) are ordered by host key so the ring does not depend on host order.
            entries.Sort((a, b) =>
            {
                var byHash = a.Hash.CompareTo(b.Hash);
                return byHash != 0 ? byHash : string.CompareOrdinal(ConsistentHash.HostKey(hosts[a.Host], settings.UseHostnameForHashing), ConsistentHash.HostKey(hosts[b.Host], settings.UseHostnameForHashing));
            });
            _hashes = new ulong[entries.Count];
            _hosts = new Host[entries.Count];
            for (var i = 0; i < entries.Count; i++)
            {
                _hashes[i] = entries[i].Hash;
                _hosts[i] = hosts[entries[i].Host];
            }
        }

        public int Size => _hashes.Length;

        public override Host? Choose(ulong hash, int attempt)
        {
            // The first entry whose hash is at or after the request's, wrapping to the start.
            int low = 0, high = _hashes.Length;
            while (low < high)
            {
                var mid = (int)((uint)(low + high) >> 1);
                if (_hashes[mid] < hash)
                {
                    low = mid + 1;
                }
                else
                {
                    high = mid;
                }
            }

            var index = low == _hashes.Length ? 0 : low;
            if (attempt > 0)
            {
                // A host-selection retry behaves as if the host were not on the ring: Envoy steps along it.
                index = (int)((index + (long)attempt) % _hashes.Length);
            }

            return _hosts[index];
        }
    }
}
