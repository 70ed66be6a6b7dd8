using System.Collections.Concurrent;
using System.Net;
using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>
/// An ORIGINAL_DST cluster (Envoy's OriginalDstCluster): no configured hosts; its load balancer
/// (<see cref="OriginalDstLoadBalancer"/>, lb_policy CLUSTER_PROVIDED) makes one host per
/// destination a request or connection asks for — the connection's restored original destination
/// or, with <c>use_http_header</c>, the request's override header — and adds it to the priority
/// set. Every <c>cleanup_interval</c> (default 5 s) the hosts nobody chose since the last sweep and
/// that have no connection or request left are removed, as Envoy's cleanup with
/// <c>original_dst_rely_on_idle_timeout</c>: a host in use stays.
/// </summary>
internal sealed class OriginalDstCluster : Cluster
{
    /// <summary>Envoy's <c>cleanup_interval</c> default.</summary>
    public static readonly TimeSpan DefaultCleanupInterval = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<IPEndPoint, Entry> _hosts = new();
    private readonly Lock _updateLock = new();
    private readonly TimeProvider _time;
    private ITimer? _cleanupTimer;

    public OriginalDstCluster(string name, TimeSpan connectTimeout, ulong lbSeed, OriginalDstSettings settings, TimeProvider time)
        : base(name, DiscoveryType.OriginalDst, connectTimeout, LbPolicy.ClusterProvided, lbSeed)
    {
        Settings = settings;
        _time = time;
        LoadBalancer = new OriginalDstLoadBalancer(this);
    }

    public OriginalDstSettings Settings { get; }

    public override Task InitializeAsync(CancellationToken cancellationToken)
    {
        // Nothing to wait for: hosts come with traffic.
        _cleanupTimer ??= _time.CreateTimer(static state => ((OriginalDstCluster)state!).Cleanup(), this, Settings.CleanupInterval, Settings.CleanupInterval);
        return Task.CompletedTask;
    }

    /// <summary>The host for <paramref name="destination"/>, created and added to the cluster on first use.</summary>
    internal Host GetOrAddHost(IPEndPoint destination)
    {
        if (_hosts.TryGetValue(destination, out var entry))
        {
            entry.MarkUsed();
            return entry.Host;
        }

        // Envoy names the host after the cluster and the address ("cluster10.0.0.1:80").
        var address = new IPEndPoint(destination.Address, destination.Port);
        var created = new Entry(new Host(address, Name + Network.SocketAddresses.Format(address)));
        entry = _hosts.GetOrAdd(address, created);
        entry.MarkUsed();
        if (ReferenceEquals(entry, created))
        {
            PublishHosts();
        }

        return entry.Host;
    }

    /// <summary>
    /// Envoy's cleanup: a host chosen since the last sweep stays (and is marked unused for the
    /// next one); an unused host stays while connections or requests still hold it; the rest go.
    /// </summary>
    internal void Cleanup()
    {
        var removed = false;
        foreach (var (address, entry) in _hosts)
        {
            if (entry.TakeUsed() || entry.Host.ActiveConnections > 0 || entry.Host.ActiveRequests > 0)
            {
                continue;
            }

            removed |= _hosts.TryRemove(new KeyValuePair<IPEndPoint, Entry>(address, entry));
        }

        if (removed)
        {
            PublishHosts();
        }
    }

    /// <summary>The hosts currently known (tests, admin).</summary>
    internal int HostCount => _hosts.Count;

    private void PublishHosts()
    {
        lock (_updateLock)
        {
            var hosts = new List<Host>(_hosts.Count);
            foreach (var entry in _hosts.Values)
            {
                hosts.Add(entry.Host);
            }

            PrioritySet.Update(hosts);
        }
    }

    public override ValueTask DisposeAsync()
    {
        _cleanupTimer?.Dispose();
        return base.DisposeAsync();
    }

    /// <summary>One destination's host and its "chosen since the last sweep" bit.</summary>
    private sealed class Entry(Host host)
    {
        private int _used;

        public Host Host { get; } = host;

        public void MarkUsed()
        {
            if (Volatile.Read(ref _used) == 0)
            {
                Volatile.Write(ref _used, 1);
            }
        }

        public bool TakeUsed() => Interlocked.Exchange(ref _used, 0) != 0;
    }
}
