using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// The hosts of one priority level, with the healthy and degraded ones already picked out, as of
/// one update. Immutable: a change builds a new one (see <see cref="PrioritySet"/>).
/// </summary>
internal sealed class HostSet
{
    public HostSet(uint priority, ImmutableArray<Host> hosts)
    {
        Priority = priority;
        Hosts = hosts;
        var healthy = ImmutableArray.CreateBuilder<Host>();
        var degraded = ImmutableArray.CreateBuilder<Host>();
        foreach (var host in hosts)
        {
            switch (host.Health)
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
    }

    public uint Priority { get; }

    /// <summary>Every host of this priority, in config (or DNS answer) order.</summary>
    public ImmutableArray<Host> Hosts { get; }

    public ImmutableArray<Host> HealthyHosts { get; }

    public ImmutableArray<Host> DegradedHosts { get; }
}
