using System.Collections.Immutable;
using System.Net;
using System.Runtime.InteropServices;
using Envoy.Config.Core.V3;
using Legate.Network;

namespace Legate.Upstream;

/// <summary>
/// One upstream endpoint of a cluster. Its identity (address, hostname, locality) never changes,
/// so a host that survives a config or DNS update keeps its counters and, later, its connection
/// pools. What Envoy updates in place on a kept host (weight, priority, metadata, the health
/// status from config) and the health flags set by health checkers are mutable, each through a
/// single atomic write, so readers on any thread never lock.
/// </summary>
/// <remarks>
/// The one exception to a fixed address is a LOGICAL_DNS cluster's host: its address follows
/// the first address DNS returns, while the host (and its pool) stays the same, as in Envoy.
/// </remarks>
internal sealed class Host
{
    private const HostHealthFlags FailedMask =
        HostHealthFlags.FailedActiveHealthCheck | HostHealthFlags.FailedOutlierCheck | HostHealthFlags.FailedEdsHealth | HostHealthFlags.EdsStatusDraining;

    private const HostHealthFlags DegradedMask = HostHealthFlags.DegradedActiveHealthCheck | HostHealthFlags.DegradedEdsHealth;

    private const HostHealthFlags EdsMask = HostHealthFlags.FailedEdsHealth | HostHealthFlags.DegradedEdsHealth | HostHealthFlags.EdsStatusDraining;

    // Element 0 is the address connections go to; the whole list is what DNS returned (a logical
    // host tries them in order later, Happy Eyeballs). Never mutated once published.
    private volatile IPEndPoint[] _addresses;
    private volatile Metadata? _metadata;
    private uint _weight;
    private uint _priority;
    private uint _localityWeight;
    private int _healthStatus;
    private int _healthFlags;
    private long _activeRequests;
    private long _totalRequests;
    private long _activeConnections;
    private long _totalConnections;
    private long _connectFailures;
    private long _successes;
    private long _errors;
    private long _timeouts;

    /// <param name="address">Where connections go.</param>
    /// <param name="hostname">The endpoint's hostname (Envoy: <c>endpoint.hostname</c>, or the DNS name it was resolved from); empty when none.</param>
    /// <param name="weight"><c>load_balancing_weight</c>; at least 1.</param>
    /// <param name="locality">The locality of its <c>LocalityLbEndpoints</c>; copied, never changed.</param>
    /// <param name="priority">The priority of its <c>LocalityLbEndpoints</c> (0 is the highest).</param>
    /// <param name="metadata">The endpoint's metadata; copied.</param>
    /// <param name="healthStatus">The <c>health_status</c> given by config or EDS.</param>
    public Host(
        IPEndPoint address,
        string hostname = "",
        uint weight = 1,
        Locality? locality = null,
        uint priority = 0,
        Metadata? metadata = null,
        HealthStatus healthStatus = HealthStatus.Unknown,
        uint localityWeight = 0)
        : this([address], hostname, weight, locality, priority, metadata, healthStatus, isLogical: false)
    {
        _localityWeight = localityWeight;
    }

    private Host(
        IPEndPoint[] addresses,
        string hostname,
        uint weight,
        Locality? locality,
        uint priority,
        Metadata? metadata,
        HealthStatus healthStatus,
        bool isLogical)
    {
        ArgumentOutOfRangeException.ThrowIfZero(weight);
        _addresses = addresses;
        Hostname = hostname;
        _weight = weight;
        Locality = locality?.Clone();
        _priority = priority;
        _metadata = metadata?.Clone();
        IsLogical = isLogical;
        SetHealthStatus(healthStatus);
    }

    /// <summary>A LOGICAL_DNS cluster's single host, whose address follows DNS.</summary>
    public static Host CreateLogical(
        ImmutableArray<IPEndPoint> addresses,
        string hostname,
        uint weight,
        Locality? locality,
        Metadata? metadata,
        HealthStatus healthStatus,
        uint localityWeight = 0)
    {
        if (addresses.IsDefaultOrEmpty)
        {
            throw new ArgumentException("a logical host needs at least one address", nameof(addresses));
        }

        // Envoy rewrites a logical host's priority to 0: the cluster has exactly one host.
        return new Host(addresses.ToArray(), hostname, weight, locality, 0, metadata, healthStatus, isLogical: true)
        {
            _localityWeight = localityWeight,
        };
    }

    /// <summary>The address connections go to.</summary>
    public IPEndPoint Address => _addresses[0];

    /// <summary>Every resolved address, <see cref="Address"/> first (one element except for a logical host).</summary>
    public ImmutableArray<IPEndPoint> AddressList => ImmutableCollectionsMarshal.AsImmutableArray(_addresses);

    public string Hostname { get; }

    /// <summary>
    /// <c>health_check_config</c>: the address active health checks connect to — the host's own,
    /// or its <c>address</c> — with <c>port_value</c> instead of its port when set.
    /// </summary>
    public IPEndPoint HealthCheckAddress
    {
        get
        {
            var serving = Address;
            return HealthCheckIp is null && HealthCheckPort == 0 ? serving : new IPEndPoint(HealthCheckIp ?? serving.Address, HealthCheckPort != 0 ? HealthCheckPort : serving.Port);
        }
    }

    /// <summary><c>health_check_config.port_value</c> (0: the serving port).</summary>
    public int HealthCheckPort { get; init; }

    /// <summary><c>health_check_config.address</c> (null: the serving address).</summary>
    public IPAddress? HealthCheckIp { get; init; }

    /// <summary><c>health_check_config.hostname</c>: the Host / :authority of this host's HTTP and gRPC checks, over the checker's own (empty: none).</summary>
    public string HealthCheckHostname { get; init; } = string.Empty;

    /// <summary><c>health_check_config.disable_active_health_check</c>: the cluster's active health checker leaves this host alone.</summary>
    public bool ActiveHealthCheckDisabled { get; init; }

    internal bool SameHealthCheckConfig(Host other) =>
        HealthCheckPort == other.HealthCheckPort && Equals(HealthCheckIp, other.HealthCheckIp)
        && HealthCheckHostname == other.HealthCheckHostname && ActiveHealthCheckDisabled == other.ActiveHealthCheckDisabled;

    public Locality? Locality { get; }

    /// <summary>True for a LOGICAL_DNS host: its address may change under it.</summary>
    public bool IsLogical { get; }

    public uint Weight => Volatile.Read(ref _weight);

    public uint Priority => Volatile.Read(ref _priority);

    /// <summary>
    /// The <c>load_balancing_weight</c> of the host's <c>LocalityLbEndpoints</c> (0 when unset): with
    /// locality-weighted load balancing, a locality without weight takes no traffic, as in Envoy.
    /// </summary>
    public uint LocalityWeight => Volatile.Read(ref _localityWeight);

    public Metadata? Metadata => _metadata;

    /// <summary>The <c>health_status</c> from config or EDS, shown as is by the admin interface.</summary>
    public HealthStatus HealthStatus => (HealthStatus)Volatile.Read(ref _healthStatus);

    public HostHealthFlags HealthFlags => (HostHealthFlags)Volatile.Read(ref _healthFlags);

    /// <summary>
    /// Envoy's excluded host: pending its first active health check, excluded via an immediate
    /// health check failure, or DRAINING by its health_status; left out of the host counts behind
    /// priority health and panic.
    /// </summary>
    public bool IsExcluded => (HealthFlags & (HostHealthFlags.PendingActiveHealthCheck | HostHealthFlags.ExcludedViaImmediateHealthCheckFail | HostHealthFlags.EdsStatusDraining)) != 0;

    /// <summary>Any failure flag makes a host unhealthy; otherwise any degraded flag makes it degraded.</summary>
    public HostHealth Health
    {
        get
        {
            var flags = HealthFlags;
            return (flags & FailedMask) != 0 ? HostHealth.Unhealthy
                : (flags & DegradedMask) != 0 ? HostHealth.Degraded
                : HostHealth.Healthy;
        }
    }

    public long ActiveRequests => Interlocked.Read(ref _activeRequests);

    public long TotalRequests => Interlocked.Read(ref _totalRequests);

    public long ActiveConnections => Interlocked.Read(ref _activeConnections);

    public long TotalConnections => Interlocked.Read(ref _totalConnections);

    /// <summary>What identifies a host across updates: the same key is the same host.</summary>
    internal HostKey Key => new(Hostname, Address);

    public void RequestStarted()
    {
        Interlocked.Increment(ref _activeRequests);
        Interlocked.Increment(ref _totalRequests);
    }

    public void RequestFinished() => Interlocked.Decrement(ref _activeRequests);

    public void ConnectionOpened()
    {
        Interlocked.Increment(ref _activeConnections);
        Interlocked.Increment(ref _totalConnections);
    }

    public void ConnectionClosed() => Interlocked.Decrement(ref _activeConnections);

    /// <summary><c>cx_connect_fail</c> in <c>/clusters</c>.</summary>
    public long ConnectFailures => Interlocked.Read(ref _connectFailures);

    /// <summary><c>rq_success</c>: responses below 500.</summary>
    public long Successes => Interlocked.Read(ref _successes);

    /// <summary><c>rq_error</c>: 5xx responses and connection failures or resets before a response.</summary>
    public long Errors => Interlocked.Read(ref _errors);

    /// <summary><c>rq_timeout</c>.</summary>
    public long Timeouts => Interlocked.Read(ref _timeouts);

    public void ConnectFailed() => Interlocked.Increment(ref _connectFailures);

    /// <summary>The upstream answered with <paramref name="code"/>: host counters and outlier detection.</summary>
    public void ReportHttpCode(int code)
    {
        Interlocked.Increment(ref code >= 500 ? ref _errors : ref _successes);
        OutlierMonitor?.PutHttpResponseCode(code);
    }

    /// <summary>A local-origin event of an exchange: host counters and outlier detection.</summary>
    public void ReportResult(OutlierResult result)
    {
        switch (result)
        {
            case OutlierResult.LocalOriginConnectFailed:
                Interlocked.Increment(ref _errors);
                break;
            case OutlierResult.LocalOriginTimeout:
                Interlocked.Increment(ref _timeouts);
                break;
        }

        OutlierMonitor?.PutResult(result);
    }

    /// <summary>Sets one health flag (health checker, outlier detection); true when it was not set.</summary>
    public bool SetHealthFlag(HostHealthFlags flag) =>
        ((HostHealthFlags)Interlocked.Or(ref _healthFlags, (int)flag) & flag) != flag;

    /// <summary>Clears one health flag; true when it was set.</summary>
    public bool ClearHealthFlag(HostHealthFlags flag) =>
        ((HostHealthFlags)Interlocked.And(ref _healthFlags, ~(int)flag) & flag) != 0;

    /// <summary>
    /// Applies a <c>health_status</c> the way Envoy does: UNHEALTHY and TIMEOUT fail the host,
    /// DRAINING fails and excludes it (EDS_STATUS_DRAINING), DEGRADED degrades it, HEALTHY and
    /// UNKNOWN leave it to the other sources.
    /// </summary>
    /// <returns>True when the host's health flags changed.</returns>
    public bool SetHealthStatus(HealthStatus status)
    {
        Volatile.Write(ref _healthStatus, (int)status);
        var edsFlag = status switch
        {
            HealthStatus.Unhealthy or HealthStatus.Timeout => HostHealthFlags.FailedEdsHealth,
            HealthStatus.Draining => HostHealthFlags.EdsStatusDraining,
            HealthStatus.Degraded => HostHealthFlags.DegradedEdsHealth,
            _ => HostHealthFlags.None,
        };

        // Only this method writes the EDS bits; the loop keeps a health checker's concurrent
        // write to the other bits.
        var current = Volatile.Read(ref _healthFlags);
        while (true)
        {
            var next = (current & ~(int)EdsMask) | (int)edsFlag;
            if (next == current)
            {
                return false;
            }

            var seen = Interlocked.CompareExchange(ref _healthFlags, next, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }
    }

    /// <summary>
    /// Takes over what Envoy updates in place when an update keeps a host: weight, priority,
    /// metadata and health status.
    /// </summary>
    /// <returns>True when anything a load balancer or host set depends on changed.</returns>
    internal bool UpdateFrom(Host other)
    {
        var changed = false;
        if (Weight != other.Weight)
        {
            Volatile.Write(ref _weight, other.Weight);
            changed = true;
        }

        if (Priority != other.Priority)
        {
            Volatile.Write(ref _priority, other.Priority);
            changed = true;
        }

        if (LocalityWeight != other.LocalityWeight)
        {
            Volatile.Write(ref _localityWeight, other.LocalityWeight);
            changed = true;
        }

        if (!Equals(_metadata, other._metadata))
        {
            _metadata = other._metadata;
            changed = true;
        }

        var statusChanged = HealthStatus != other.HealthStatus;
        changed |= SetHealthStatus(other.HealthStatus) || statusChanged;
        return changed;
    }

    /// <summary>A LOGICAL_DNS host moves to the newly resolved addresses; its pool stays.</summary>
    internal void SetLogicalAddresses(ImmutableArray<IPEndPoint> addresses)
    {
        if (!IsLogical)
        {
            throw new InvalidOperationException("only a logical host's address follows DNS");
        }

        if (addresses.IsDefaultOrEmpty)
        {
            throw new ArgumentException("a logical host needs at least one address", nameof(addresses));
        }

        _addresses = addresses.ToArray();
    }

    /// <summary>
    /// The host's connection pool of kind <paramref name="slot"/> (0: HTTP/1.1, 1: HTTP/2, 2: HTTP/1.1
    /// pools per server name for auto_sni TLS clusters; 3, 4, 5: the same for HIGH-priority routes), created
    /// on first use. A host belongs to one cluster, so its pools are that cluster's pools for it.
    /// </summary>
    internal T ConnectionPool<T>(int slot, Func<Host, T> create)
        where T : class
    {
        if (Volatile.Read(ref _pools[slot]) is T existing)
        {
            return existing;
        }

        var created = create(this);
        return Interlocked.CompareExchange(ref _pools[slot], created, null) as T ?? created;
    }

    /// <summary>As <see cref="ConnectionPool{T}(int, Func{Host, T})"/>, with the factory's state passed in (no closure per request).</summary>
    internal T ConnectionPool<T, TState>(int slot, Func<Host, TState, T> create, TState state)
        where T : class
    {
        if (Volatile.Read(ref _pools[slot]) is T existing)
        {
            return existing;
        }

        var created = create(this, state);
        return Interlocked.CompareExchange(ref _pools[slot], created, null) as T ?? created;
    }

    /// <summary>
    /// Drains every connection pool of this host (HTTP/1.1: idle connections close, busy ones after
    /// their exchange; HTTP/2: idle connections close, busy ones after their last stream).
    /// </summary>
    internal void DrainConnectionPools()
    {
        for (var i = 0; i < _pools.Length; i++)
        {
            if (Volatile.Read(ref _pools[i]) is ConnectionPool.IDrainableConnectionPool pool)
            {
                pool.DrainConnections();
            }
        }
    }

    // 0: HTTP/1.1, 1: HTTP/2, 2: HTTP/1.1 per server name; 3, 4 and 5: 0, 2 and 1 for HIGH-priority
    // routes (Envoy keeps a pool per priority per host, each counted against its priority's thresholds).
    private readonly object?[] _pools = new object?[6];

    private long _connectionReservations;

    /// <summary>
    /// Takes the slots a pool needs before it opens a connection: one of <paramref name="resources"/>'
    /// <c>max_connections</c> (the pool's priority), then one of this host's
    /// (<c>per_host_thresholds.max_connections</c>, <paramref name="perHostMax"/>, shared by all of
    /// the host's pools). Both or neither: false when either is exhausted.
    /// </summary>
    internal bool TryAcquireConnectionSlot(ResourceManager resources, long perHostMax)
    {
        if (!resources.Connections.TryAcquire())
        {
            return false;
        }

        var current = Interlocked.Read(ref _connectionReservations);
        while (current < perHostMax)
        {
            var seen = Interlocked.CompareExchange(ref _connectionReservations, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        resources.Connections.Release();
        return false;
    }

    /// <summary>Gives back both slots taken with <see cref="TryAcquireConnectionSlot"/>.</summary>
    internal void ReleaseConnectionSlot(ResourceManager resources)
    {
        resources.Connections.Release();
        Interlocked.Decrement(ref _connectionReservations);
    }

    private long _lastHcPassTimestamp;

    /// <summary>
    /// When the host last became healthy through an active health check, or was first seen healthy
    /// by a load balancer with slow start (Envoy's <c>last_hc_pass_time</c>): a
    /// <see cref="TimeProvider"/> timestamp of the cluster's clock, 0 = never. Slow start counts from it.
    /// </summary>
    internal long LastHcPassTimestamp
    {
        get => Interlocked.Read(ref _lastHcPassTimestamp);
        set => Interlocked.Exchange(ref _lastHcPassTimestamp, value);
    }

    /// <summary>Sets <see cref="LastHcPassTimestamp"/> unless it is set already.</summary>
    internal void StampLastHcPassIfUnset(long timestamp) => Interlocked.CompareExchange(ref _lastHcPassTimestamp, timestamp, 0);

    /// <summary>Outlier detection's view of this host, when the cluster has outlier_detection; the router reports to it.</summary>
    internal HostOutlierMonitor? OutlierMonitor { get; set; }

    /// <summary>The active health checker checking this host (Envoy's host health checker monitor), if any.</summary>
    internal HealthChecker? ActiveHealthChecker { get; set; }

    /// <summary>
    /// Called by the router for each upstream answer head: with an active health checker, an
    /// answer carrying <c>x-envoy-immediate-health-check-fail</c> fails the host at once, as
    /// Envoy's router does. Costs one null check otherwise.
    /// </summary>
    internal void CheckImmediateHealthCheckFail(Legate.Http.Http1.HttpHeaderMap headers)
    {
        if (ActiveHealthChecker is { } checker && headers.GetValue("x-envoy-immediate-health-check-fail") is not null)
        {
            checker.SetUnhealthyPassive(this);
        }
    }

    public override string ToString() =>
        Hostname.Length == 0 ? SocketAddresses.Format(Address) : $"{Hostname} ({SocketAddresses.Format(Address)})";
}
