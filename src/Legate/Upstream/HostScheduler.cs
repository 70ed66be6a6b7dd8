namespace Legate.Upstream;

/// <summary>Picks the next host from one fixed list of hosts; safe from any number of threads.</summary>
internal abstract class HostScheduler : HostPicker
{
    public abstract Host Pick();

    public sealed override Host? Pick(ulong random, ILoadBalancerContext? context) => Pick();

    public override bool UsesRandom => false;
}
