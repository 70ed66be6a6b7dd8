using LookupFamily = Envoy.Config.Cluster.V3.Cluster.Types.DnsLookupFamily;

namespace Legate.Upstream;

/// <summary>The DNS settings of a STRICT_DNS or LOGICAL_DNS cluster.</summary>
/// <param name="RefreshRate"><c>dns_refresh_rate</c>: how often a name is resolved again after a success (default 5 s).</param>
/// <param name="FailureRefreshRate"><c>dns_failure_refresh_rate</c> as (base, max); null to retry failures at <paramref name="RefreshRate"/>.</param>
/// <param name="LookupFamily"><c>dns_lookup_family</c>.</param>
/// <param name="WaitForWarmOnInit"><c>wait_for_warm_on_init</c>: initialization waits for the first answers (default true).</param>
internal sealed record DnsSettings(
    TimeSpan RefreshRate,
    (TimeSpan Base, TimeSpan Max)? FailureRefreshRate,
    LookupFamily LookupFamily,
    bool WaitForWarmOnInit)
{
    public static readonly TimeSpan DefaultRefreshRate = TimeSpan.FromSeconds(5);

    public static readonly DnsSettings Default = new(DefaultRefreshRate, null, LookupFamily.Auto, WaitForWarmOnInit: true);

    /// <summary>
    /// <c>respect_dns_ttl</c>: after an answer with addresses, the next resolution comes after
    /// their TTL (STRICT_DNS: the lowest; LOGICAL_DNS: the first address's) instead of
    /// <see cref="RefreshRate"/>; a TTL of 0 keeps the refresh rate, as Envoy.
    /// </summary>
    public bool RespectDnsTtl { get; init; }

    /// <summary>The cluster's own resolver (<c>dns_resolvers</c>, or Legate's DNS client for <c>respect_dns_ttl</c>); null = the context's.</summary>
    public IDnsResolver? Resolver { get; init; }

    /// <param name="nextRandom">A random number in [0, argument), for the jitter.</param>
    public IBackOffStrategy CreateFailureBackOff(Func<long, long> nextRandom) =>
        FailureRefreshRate is { } rate
            ? new JitteredExponentialBackOffStrategy(rate.Base, rate.Max, nextRandom)
            : new FixedBackOffStrategy(RefreshRate);
}
