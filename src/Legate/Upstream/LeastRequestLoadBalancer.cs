using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// Envoy's LEAST_REQUEST. With equal weights: the power of <c>choice_count</c> choices (sample that
/// many hosts at random, keep the one with the fewest active requests; Envoy's default is 2). With
/// unequal weights: earliest-deadline-first where a host's weight is
/// <c>weight / (active_requests + 1) ^ active_request_bias</c>, re-evaluated each time the host is
/// rescheduled, as Envoy's EDF.
/// </summary>
internal sealed class LeastRequestLoadBalancer(PrioritySet prioritySet, LoadBalancerSettings settings, ClusterStats? stats, LbRandom? random, TimeProvider? time = null)
    : LoadBalancerBase(prioritySet, settings, stats, random, time)
{
    protected override HostPicker CreatePicker(ImmutableArray<Host> hosts)
    {
        var bias = Settings.ActiveRequestBias;
        // In slow start Envoy schedules by weight / (active + 1)^bias × the slow start factor, whatever the weights.
        return WithSlowStart(hosts, CreateSteadyPicker(hosts), host => EffectiveWeight(host, bias));
    }

    private HostPicker CreateSteadyPicker(ImmutableArray<Host> hosts)
    {
        var weight = hosts[0].Weight;
        foreach (var host in hosts)
        {
            if (host.Weight != weight)
            {
                return new WeightedPicker(hosts, Settings.ActiveRequestBias);
            }
        }

        return new ChoicesPicker(hosts.ToArray(), Math.Max(1, Settings.ChoiceCount), Random);
    }

    /// <summary>Envoy's least-request host weight: <c>weight / (active_requests + 1) ^ active_request_bias</c>.</summary>
    internal static double EffectiveWeight(Host host, double bias)
    {
        var active = host.ActiveRequests;
        var weight = (double)host.Weight;
        return bias switch
        {
            0 => weight,
            1 => weight / (active + 1),
            _ => weight / Math.Pow(active + 1, bias),
        };
    }

    /// <summary>The best of N random samples: lock-free, one random number per extra sample.</summary>
    private sealed class ChoicesPicker(Host[] hosts, int choices, LbRandom random) : HostPicker
    {
        public override Host? Pick(ulong first, ILoadBalancerContext? context)
        {
            var n = (ulong)hosts.Length;
            var candidate = hosts[(int)(first % n)];
            if (hosts.Length == 1)
            {
                return candidate;
            }

            var candidateActive = candidate.ActiveRequests;
            for (var i = 1; i < choices; i++)
            {
                var sampled = hosts[(int)(random.Next() % n)];
                var active = sampled.ActiveRequests;
                if (active < candidateActive)
                {
                    candidate = sampled;
                    candidateActive = active;
                }
            }

            return candidate;
        }
    }

    /// <summary>
    /// A live EDF scheduler whose weights follow the hosts' active requests. A pick pops the
    /// earliest deadline and pushes that host back at now + 1/current weight (a short lock).
    /// </summary>
    private sealed class WeightedPicker : HostPicker
    {
        private readonly Lock _lock = new();
        private readonly Host[] _hosts;
        private readonly double _bias;
        private readonly PriorityQueue<int, (double Deadline, ulong Order)> _queue;
        private double _now;
        private ulong _order;

        public WeightedPicker(ImmutableArray<Host> hosts, double bias)
        {
            _hosts = hosts.ToArray();
            _bias = bias;
            _queue = new PriorityQueue<int, (double, ulong)>(_hosts.Length);
            for (var i = 0; i < _hosts.Length; i++)
            {
                _queue.Enqueue(i, (1.0 / EffectiveWeight(_hosts[i]), _order++));
            }
        }

        public override bool UsesRandom => false;

        public override Host? Pick(ulong random, ILoadBalancerContext? context)
        {
            lock (_lock)
            {
                _queue.TryDequeue(out var index, out var deadline);
                _now = deadline.Deadline;
                var host = _hosts[index];
                // Rescheduled with its weight as of now, as Envoy's pickAndAdd.
                _queue.Enqueue(index, (_now + 1.0 / EffectiveWeight(host), _order++));
                return host;
            }
        }

        private double EffectiveWeight(Host host) => LeastRequestLoadBalancer.EffectiveWeight(host, _bias);
    }
}
