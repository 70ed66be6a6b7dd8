using Legate.Server.Logging;

namespace Legate.Upstream;

/// <summary>What clusters are built with: the resolver, the clock and the randomness, so that tests can replace all three.</summary>
internal sealed class ClusterFactoryContext
{
    public static readonly ClusterFactoryContext Default = new();

    private readonly Lock _randomLock = new();

    public IDnsResolver DnsResolver { get; init; } = SystemDnsResolver.Instance;

    /// <summary>Drives DNS refresh timers.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Where each load balancer starts its rotation and how DNS back-off is jittered. Drawn from
    /// through <see cref="NextRandom"/> only, so a seeded or scripted <see cref="System.Random"/>
    /// (not thread-safe) can be given.
    /// </summary>
    public Random Random { get; init; } = Random.Shared;

    /// <summary>What load balancers draw per pick; null = <see cref="Upstream.LbRandom.Shared"/>. Tests pass a seeded one.</summary>
    public LbRandom? LbRandom { get; init; }

    /// <summary>Where cluster stats are recorded; null gives each cluster a private store (tests).</summary>
    public Legate.Stats.StatsStore? Stats { get; init; }

    /// <summary>Secrets by name for clusters' TLS contexts.</summary>
    public Legate.Tls.SecretManager Secrets { get; init; } = Legate.Tls.SecretManager.Empty;

    /// <summary>Where EDS clusters get their endpoints (the xDS manager); null: EDS clusters are an error.</summary>
    public IEdsSource? Eds { get; init; }

    /// <summary>cluster_manager.local_cluster_name with the node's locality: zone-aware routing; null = none.</summary>
    public LocalClusterSource? LocalCluster { get; init; }

    /// <summary>The runtime load balancers read (<c>upstream.zone_routing.*</c>); null = config values only.</summary>
    public Legate.Runtime.RuntimeLoader? Runtime { get; init; }

    /// <summary>The "upstream" logger; null logs nothing.</summary>
    public Logger? Logger { get; init; }

    /// <summary>A random number in [0, <paramref name="maxExclusive"/>); callable from any thread.</summary>
    public long NextRandom(long maxExclusive)
    {
        // Rare (cluster builds, DNS failures): a lock is cheaper than a Random per caller.
        lock (_randomLock)
        {
            return Random.NextInt64(maxExclusive);
        }
    }
}
