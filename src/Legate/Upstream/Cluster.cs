using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>
/// An upstream cluster: a named group of hosts, how they are discovered (the subclasses) and how
/// one is chosen for a request (<see cref="LoadBalancer"/>). The router and tcp_proxy look a
/// cluster up in the <see cref="ClusterManager"/>, ask the load balancer for a host, and connect
/// within <see cref="ConnectTimeout"/>.
/// </summary>
internal abstract class Cluster : IAsyncDisposable
{
    /// <summary>Envoy's connect_timeout default.</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(5);

    protected Cluster(string name, DiscoveryType type, TimeSpan connectTimeout, LbPolicy lbPolicy, ulong lbSeed)
    {
        Name = name;
        Type = type;
        ConnectTimeout = connectTimeout;
        LbPolicy = lbPolicy;
        // ROUND_ROBIN is the only policy so far; the factory warned if another one was asked for.
        LoadBalancer = new RoundRobinLoadBalancer(PrioritySet, lbSeed);
        PrioritySet.Updated += DrainRemovedHosts;
    }

    public string Name { get; }

    public DiscoveryType Type { get; }

    /// <summary><c>connect_timeout</c>: how long a new upstream connection may take.</summary>
    public TimeSpan ConnectTimeout { get; }

    /// <summary>The <c>lb_policy</c> the config asked for.</summary>
    public LbPolicy LbPolicy { get; }

    /// <summary>The hosts, by priority; updated by the cluster type, read by load balancers.</summary>
    public PrioritySet PrioritySet { get; } = new();

    /// <summary>Round robin until the factory sets the configured policy (with the cluster's stats).</summary>
    public ILoadBalancer LoadBalancer { get; internal set; }

    /// <summary>
    /// A host for a request and the cluster it belongs to: this one, or for an aggregate cluster
    /// the listed cluster the host was chosen from (whose circuit breakers, pools and TLS apply).
    /// </summary>
    public Host? ChooseHost(ILoadBalancerContext? context, out Cluster target)
    {
        if (LoadBalancer is AggregateLoadBalancer aggregate)
        {
            var host = aggregate.ChooseHost(context, out var chosen);
            target = chosen ?? this;
            return host;
        }

        target = this;
        return LoadBalancer.ChooseHost(context);
    }

    /// <summary>Settings and stats the data path reads; set by the factory right after construction.</summary>
    public ClusterInfo Info { get; internal set; } = null!;

    /// <summary>
    /// Brings the cluster to its first usable state (Envoy's cluster warming): immediate for a
    /// static cluster; after the first DNS answers for DNS clusters, unless wait_for_warm_on_init
    /// is false. Starts whatever keeps the hosts current (DNS refresh).
    /// </summary>
    public abstract Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>The cluster's active health checkers, one per <c>health_checks</c> entry (set by the factory).</summary>
    public IReadOnlyList<HealthChecker> HealthCheckers { get; internal set; } = [];

    /// <summary>
    /// <see cref="InitializeAsync"/>, then the health checkers start and the cluster waits for
    /// their first round, so no request reaches a host that has never been checked (Envoy's warming).
    /// </summary>
    public async Task WarmAsync(CancellationToken cancellationToken)
    {
        // A cluster whose client certificate or CA comes from SDS is not used before it arrives (or times out).
        if (Info is { } info)
        {
            await info.SecretsReady.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        foreach (var checker in HealthCheckers)
        {
            checker.Start();
        }

        foreach (var checker in HealthCheckers)
        {
            await checker.FirstRound.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        // Warm: from now on health, weight and metadata changes may be merged (Envoy registers
        // its merge callback when the cluster is initialized, so warming never waits on it).
        if (MergeWindow is { } merge)
        {
            PrioritySet.StartMerging(merge);
        }
    }

    /// <summary><c>common_lb_config.update_merge_window</c> (set by the factory), started once the cluster is warm.</summary>
    internal UpdateMergeWindow? MergeWindow { get; set; }

    /// <summary>The cluster's outlier detection, when configured (set by the factory).</summary>
    public OutlierDetector? OutlierDetector { get; internal set; }

    /// <summary>
    /// Takes a retry slot of the circuit breaker for <paramref name="priority"/> (max_retries or the
    /// retry budget); false, with <c>upstream_rq_retry_overflow</c> counted, when none is left and the
    /// retry must not happen. A slot taken is given back with <see cref="ReleaseRetry"/> when the
    /// retried request ends.
    /// </summary>
    public bool TryAcquireRetry(Envoy.Config.Core.V3.RoutingPriority priority = Envoy.Config.Core.V3.RoutingPriority.Default)
    {
        if (Info.CircuitBreakers.For(priority).Retries.TryAcquire())
        {
            return true;
        }

        Info.Stats.UpstreamRqRetryOverflow.Inc();
        return false;
    }

    /// <summary>Gives back a slot taken with <see cref="TryAcquireRetry"/>.</summary>
    public void ReleaseRetry(Envoy.Config.Core.V3.RoutingPriority priority = Envoy.Config.Core.V3.RoutingPriority.Default) =>
        Info.CircuitBreakers.For(priority).Retries.Release();

    private ulong _dropNumerator;
    private ulong _dropDenominator = 1;

    /// <summary>
    /// The load assignment's <c>policy.drop_overloads</c> (Envoy takes one category): this share of
    /// requests is answered 503 DO by the router without reaching an upstream.
    /// </summary>
    internal void SetDropOverload(Envoy.Type.V3.FractionalPercent percentage) =>
        SetDropOverload(percentage.Numerator, percentage.Denominator switch
        {
            Envoy.Type.V3.FractionalPercent.Types.DenominatorType.TenThousand => 10_000UL,
            Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Million => 1_000_000UL,
            _ => 100UL,
        });

    internal void SetDropOverload(uint numerator, ulong denominator)
    {
        _dropDenominator = Math.Max(1, denominator);
        _dropNumerator = numerator;
    }

    /// <summary>True when this request falls in the drop_overloads share (Envoy's bernoulli draw: random % denominator &lt; numerator).</summary>
    public bool ShouldDropOverload()
    {
        var numerator = _dropNumerator;
        return numerator != 0 && (numerator >= _dropDenominator || LbRandom.Shared.Next() % _dropDenominator < numerator);
    }

    /// <summary>Stops refreshing; the hosts stay as they were for requests still holding them.</summary>
    public virtual ValueTask DisposeAsync()
    {
        // Health timers stop with the cluster; subclasses stop their own refreshes and call this.
        OutlierDetector?.Dispose();
        PrioritySet.StopMerging();

        // Its SDS secrets leave the subscription unless another cluster or listener uses them (as
        // Envoy's SdsApi when its last TLS context goes). Null: the cluster failed before its info.
        Info?.ReleaseSecrets();
        foreach (var checker in HealthCheckers)
        {
            checker.Dispose();
        }

        // Removed, replaced or stopped: its idle upstream connections close, busy ones after their request.
        PrioritySet.Updated -= DrainRemovedHosts;
        foreach (var host in PrioritySet.Current.Hosts)
        {
            host.DrainConnectionPools();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>A host that left the cluster (EDS, DNS) has its pools drained, as Envoy does; off the update's lock.</summary>
    private static void DrainRemovedHosts(HostUpdate update)
    {
        if (!update.Removed.IsEmpty)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static removed =>
            {
                foreach (var host in removed)
                {
                    host.DrainConnectionPools();
                }
            }, update.Removed, preferLocal: false);
        }
    }

    public override string ToString() => Name;
}
