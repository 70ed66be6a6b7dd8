using Legate.Server.Logging;

namespace Legate.Upstream;

/// <summary>What clusters are built with: the resolver, the clock and the randomness, so that tests can replace all three.</summary>
internal sealed class ClusterFactoryContext
{
    public static readonly ClusterFactoryContext Default = new();

    public IDnsResolver DnsResolver { get; init; } = SystemDnsResolver.Instance;

    /// <summary>Drives DNS refresh timers.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Seeds each cluster's load balancer start and each DNS target's back-off jitter. Only read
    /// while building a cluster (one writer at a time), so a seeded <see cref="Random"/> is safe.
    /// </summary>
    public Random Random { get; init; } = Random.Shared;

    /// <summary>The "upstream" logger; null logs nothing.</summary>
    public Logger? Logger { get; init; }
}
