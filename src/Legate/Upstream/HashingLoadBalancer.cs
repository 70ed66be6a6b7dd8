using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// What ring hash and Maglev share (Envoy's ThreadAwareLoadBalancerBase): the request's hash (or a
/// random number when the route gives none) chooses the priority and then the host in that
/// priority's table; tables are built per host list on first use and kept while the priority's
/// hosts do not change. With <c>hash_balance_factor</c>, a host already carrying more than its
/// share of active requests passes the request on (bounded-load consistent hashing).
/// </summary>
/// <remarks>
/// A table covers a priority's healthy hosts, its degraded hosts when the priority load sends the
/// request to them, or all its hosts when the priority panics. With locality-weighted load
/// balancing, locality weights are folded into host weights, as Envoy does for these policies.
/// </remarks>
internal abstract class HashingLoadBalancer(PrioritySet prioritySet, LoadBalancerSettings settings, ClusterStats? stats, LbRandom? random)
    : LoadBalancerBase(prioritySet, settings, stats, random)
{
    /// <summary>Ring hash and Maglev are not zone aware in Envoy either (thread-aware balancers).</summary>
    protected override bool SupportsZoneRouting => false;

    protected sealed override HostPicker CreatePicker(ImmutableArray<Host> hosts) => CreatePicker(hosts, null);

    protected sealed override HostPicker CreatePicker(ImmutableArray<Host> hosts, HostSet? set)
    {
        double[] weights;
        if (Settings.LocalityWeighted)
        {
            (hosts, weights) = LocalityWeightedHosts(hosts, set);
            if (hosts.IsEmpty)
            {
                // Every locality has weight 0: Envoy's table is empty and no host is chosen.
                return EmptyTable.Instance;
            }
        }
        else
        {
            weights = NormalizedWeights(hosts);
        }

        var table = CreateTable(hosts, weights);
        return Settings.HashBalanceFactor == 0 ? table : new BoundedLoadTable(table, hosts, weights, Settings.HashBalanceFactor, Stats);
    }

    /// <summary>The policy's table over <paramref name="hosts"/> with weights that sum to 1.</summary>
    protected abstract HashTable CreateTable(ImmutableArray<Host> hosts, double[] normalizedWeights);

    protected override Host? ChooseOnce(LbState state, ILoadBalancerContext? context, int attempt)
    {
        if (state.Priorities.IsEmpty)
        {
            return null;
        }

        var hash = context?.HashKey ?? Random.Next();
        var (index, degraded) = state.Load.Single ?? state.Load.Choose(hash);
        var priority = state.Priorities[index];
        HostSource source;
        if (state.Load.Panic[index])
        {
            Stats?.LbHealthyPanic.Inc();
            source = priority.All;
        }
        else
        {
            source = degraded ? priority.Degraded : priority.Healthy;
        }

        return source.Picker(this) is HashTable table ? table.Choose(hash, attempt) : null;
    }

    private static uint LocalityWeightOf(Host host, HostSet? set)
    {
        if (set is not null)
        {
            for (var i = 0; i < set.Localities.Length; i++)
            {
                if (Equals(set.Localities[i], host.Locality))
                {
                    return set.LocalityWeights[i];
                }
            }
        }

        return host.LocalityWeight;
    }

    /// <summary>
    /// Envoy's normalizeLocalityWeights: a host's weight is its share of its locality's host weights
    /// times its locality's share of the locality weights; hosts of a locality without weight are
    /// left out of the table.
    /// </summary>
    /// <remarks>
    /// The locality weights are the priority's (<paramref name="set"/>), as Envoy reads the host
    /// set's: inside a subset with <c>scale_locality_weight</c> they are the scaled ones.
    /// </remarks>
    private static (ImmutableArray<Host> Hosts, double[] Weights) LocalityWeightedHosts(ImmutableArray<Host> hosts, HostSet? set)
    {
        var localities = new List<(Envoy.Config.Core.V3.Locality? Locality, uint Weight, double HostWeights)>();
        var index = new int[hosts.Length];
        for (var i = 0; i < hosts.Length; i++)
        {
            var host = hosts[i];
            var at = localities.FindIndex(l => Equals(l.Locality, host.Locality));
            if (at < 0)
            {
                at = localities.Count;
                localities.Add((host.Locality, LocalityWeightOf(host, set), 0));
            }

            localities[at] = localities[at] with { HostWeights = localities[at].HostWeights + host.Weight };
            index[i] = at;
        }

        double localitySum = 0;
        foreach (var locality in localities)
        {
            localitySum += locality.Weight;
        }

        var kept = ImmutableArray.CreateBuilder<Host>(hosts.Length);
        var weights = new List<double>(hosts.Length);
        double sum = 0;
        for (var i = 0; localitySum > 0 && i < hosts.Length; i++)
        {
            var locality = localities[index[i]];
            if (locality.Weight == 0)
            {
                continue;
            }

            var weight = hosts[i].Weight * (locality.Weight / localitySum) / locality.HostWeights;
            kept.Add(hosts[i]);
            weights.Add(weight);
            sum += weight;
        }

        var normalized = weights.ToArray();
        for (var i = 0; i < normalized.Length; i++)
        {
            normalized[i] /= sum;
        }

        return (kept.ToImmutable(), normalized);
    }

    private static double[] NormalizedWeights(ImmutableArray<Host> hosts)
    {
        var weights = new double[hosts.Length];
        double sum = 0;
        for (var i = 0; i < hosts.Length; i++)
        {
            weights[i] = hosts[i].Weight;
            sum += weights[i];
        }

        for (var i = 0; i < weights.Length; i++)
        {
            weights[i] /= sum;
        }

        return weights;
    }

    /// <summary>No host to hash to (every locality weightless).</summary>
    private sealed class EmptyTable : HashTable
    {
        public static readonly EmptyTable Instance = new();

        public override Host? Choose(ulong hash, int attempt) => null;
    }

    /// <summary>A host list laid out for hash lookups.</summary>
    protected internal abstract class HashTable : HostPicker
    {
        public sealed override Host? Pick(ulong random, ILoadBalancerContext? context) => Choose(random, 0);

        /// <param name="attempt">Host-selection retry number: each policy moves to another place in its table.</param>
        public abstract Host? Choose(ulong hash, int attempt);
    }

    /// <summary>
    /// Envoy's BoundedLoadHashingLoadBalancer: a host may carry at most
    /// <c>ceil((active + 1) × factor / 100 × its weight share)</c> requests (at least 1); a request whose
    /// host is over that walks the other hosts in an order derived from its hash and takes the first
    /// that is not, or its own host when all are.
    /// </summary>
    private sealed class BoundedLoadTable(HashTable inner, ImmutableArray<Host> hosts, double[] weights, uint factor, ClusterStats? stats) : HashTable
    {
        private readonly Host[] _hosts = hosts.ToArray();

        public override Host? Choose(ulong hash, int attempt)
        {
            var host = inner.Choose(hash, attempt);
            if (host is null)
            {
                return null;
            }

            var totalActive = TotalActive();
            var index = Array.IndexOf(_hosts, host);
            if (index < 0 || !Overloaded(host, weights[index], totalActive))
            {
                return host;
            }

            // A hash-derived stride that is coprime with the count visits every host once.
            var n = _hosts.Length;
            var start = (int)(hash % (ulong)n);
            var stride = Stride(hash, n);
            for (var i = 0; i < n; i++)
            {
                var candidate = (start + (i * (long)stride)) % n;
                if (!Overloaded(_hosts[candidate], weights[candidate], totalActive))
                {
                    return _hosts[candidate];
                }
            }

            return host;
        }

        private long TotalActive()
        {
            if (stats is not null)
            {
                return stats.UpstreamRqActive.Value;
            }

            long sum = 0;
            foreach (var host in _hosts)
            {
                sum += host.ActiveRequests;
            }

            return sum;
        }

        private bool Overloaded(Host host, double weight, long totalActive)
        {
            var totalSlots = ((totalActive + 1) * factor + 99) / 100;
            var slots = Math.Max((long)Math.Ceiling(totalSlots * weight), 1);
            return host.ActiveRequests > slots;
        }

        private static int Stride(ulong hash, int n)
        {
            if (n <= 2)
            {
                return 1;
            }

            var stride = (int)((hash >> 32) % (ulong)(n - 1)) + 1;
            while (Gcd(stride, n) != 1)
            {
                stride = stride % (n - 1) + 1;
            }

            return stride;
        }

        private static int Gcd(int a, int b)
        {
            while (b != 0)
            {
                (a, b) = (b, a % b);
            }

            return a;
        }
    }
}
