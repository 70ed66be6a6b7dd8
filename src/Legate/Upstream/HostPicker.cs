namespace Legate.Upstream;

/// <summary>
/// Chooses among one fixed list of hosts (a priority's healthy, degraded or all hosts, or one
/// locality's): what a load balancing policy builds per host list. Safe from any number of
/// threads.
/// </summary>
internal abstract class HostPicker
{
    /// <param name="random">A fresh random number (or the request's hash, for hashing policies).</param>
    /// <param name="context">The request's context, or null.</param>
    public abstract Host? Pick(ulong random, ILoadBalancerContext? context);

    /// <summary>False when <see cref="Pick"/> ignores its random number (round robin): the caller skips drawing one.</summary>
    public virtual bool UsesRandom => true;
}
