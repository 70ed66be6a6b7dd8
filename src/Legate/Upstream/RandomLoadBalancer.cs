using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// Envoy's RANDOM: a uniformly random host of the chosen list. Like Envoy's, it ignores host
/// weights (priorities, health and locality weights still apply).
/// </summary>
internal sealed class RandomLoadBalancer(PrioritySet prioritySet, LoadBalancerSettings settings, ClusterStats? stats, LbRandom? random)
    : LoadBalancerBase(prioritySet, settings, stats, random)
{
    protected override HostPicker CreatePicker(ImmutableArray<Host> hosts) => new RandomPicker(hosts.ToArray());

    private sealed class RandomPicker(Host[] hosts) : HostPicker
    {
        public override Host? Pick(ulong random, ILoadBalancerContext? context) => hosts[(int)(random % (ulong)hosts.Length)];
    }
}
