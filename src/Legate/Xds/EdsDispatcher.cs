using Envoy.Config.Endpoint.V3;
using Legate.Config;
using Legate.Stats;
using Legate.Upstream;

namespace Legate.Xds;

/// <summary>
/// The EDS subscription of one source, shared by every EDS cluster it serves (Envoy's watch map):
/// asks for the service names that clusters watch, and hands each ClusterLoadAssignment to the
/// clusters watching it — only those: an update for one cluster rebuilds nothing else. Each
/// cluster counts its own <c>cluster.&lt;name&gt;.update_*</c>.
/// </summary>
internal sealed class EdsDispatcher : IXdsUpdateHandler
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, List<Watch>> _watches = new(StringComparer.Ordinal);
    private readonly StatsStore _stats;
    private readonly TimeProvider _time;
    private readonly Func<Legate.Upstream.ClusterManager?> _clusters;

    /// <param name="clusters">The cluster manager (null until attached), paused while a response is applied.</param>
    public EdsDispatcher(StatsStore stats, TimeProvider time, Func<Legate.Upstream.ClusterManager?>? clusters = null)
    {
        _stats = stats;
        _time = time;
        _clusters = clusters ?? (static () => null);
    }

    /// <summary>Set right after construction: the subscription this dispatcher serves.</summary>
    public XdsSubscription Subscription { get; set; } = null!;

    public IEdsWatch CreateWatch(string serviceName) => new Watch(this, serviceName);

    public ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken)
    {
        // Compile every assignment first: in state of the world one bad assignment rejects them all.
        // Each watching cluster compiles its own hosts (hosts carry per-cluster state: pools,
        // stats), keeping the Host objects of the endpoints the update did not change.
        var errors = new List<XdsResourceError>();
        var compiled = new List<Compiled>(update.Resources.Count + update.Removed.Count);
        foreach (var resource in update.Resources)
        {
            var watches = WatchesOf(resource.Name);
            if (resource.IsUnchanged)
            {
                // The assignment in force: its clusters keep their hosts (no rebuild; at scale a
                // state-of-the-world response repeats every assignment for one that changed).
                compiled.Add(new Compiled(watches, null, null));
                continue;
            }

            var assignment = (ClusterLoadAssignment)resource.Message;
            var configErrors = new ConfigErrors();
            var hosts = new List<Host>[watches.Count];
            var valid = true;
            if (watches.Count == 0)
            {
                // Nobody watches it (yet): checked all the same, for the ACK/NACK.
                valid = EdsCluster.HostsOf(assignment, configErrors) is not null;
            }

            for (var i = 0; valid && i < watches.Count; i++)
            {
                var compiledHosts = watches[i].Cluster is { } cluster ? cluster.HostsFor(assignment, configErrors) : EdsCluster.HostsOf(assignment, configErrors);
                valid = compiledHosts is not null;
                hosts[i] = compiledHosts!;
            }

            if (!valid)
            {
                errors.Add(new XdsResourceError(resource.Name, XdsResourceValidator.Describe(configErrors.Errors)));
                foreach (var watch in watches)
                {
                    watch.Stats.UpdateAttempt.Inc();
                    watch.Stats.UpdateRejected.Inc();
                }
            }
            else
            {
                compiled.Add(new Compiled(watches, assignment, hosts));
            }
        }

        foreach (var name in update.Removed)
        {
            var watches = WatchesOf(name);
            compiled.Add(new Compiled(watches, null, watches.Select(_ => new List<Host>()).ToArray()));
        }

        if (update.IsStateOfWorld && errors.Count > 0)
        {
            return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
        }

        var now = _time.GetUtcNow();

        // The clusters this response finishes warming publish themselves into the cluster map from
        // their own continuations: held while the response is applied, they share one map swap
        // (1,000 warming clusters otherwise swapped a 2,000-entry map up to ~270 times under load).
        var manager = _clusters();
        manager?.Pause();
        try
        {
            Apply(compiled, update.Version, now);
        }
        finally
        {
            manager?.Resume();
        }

        return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
    }

    private static void Apply(List<Compiled> compiled, string version, DateTimeOffset now)
    {
        foreach (var (watches, assignment, hosts) in compiled)
        {
            for (var i = 0; i < watches.Count; i++)
            {
                var watch = watches[i];
                watch.Stats.UpdateAttempt.Inc();
                if (hosts is not null)
                {
                    if (hosts[i].Count == 0)
                    {
                        watch.Stats.UpdateEmpty.Inc();
                    }

                    watch.Cluster?.Apply(assignment, hosts[i]);
                }

                watch.Stats.Accepted(version, now);
            }
        }
    }

    public void OnInitialFetchTimeout()
    {
        foreach (var watch in AllWatches())
        {
            watch.Stats.InitFetchTimeout.Inc();
            watch.Cluster?.EndWarming();
        }
    }

    private List<Watch> WatchesOf(string name)
    {
        lock (_lock)
        {
            return _watches.TryGetValue(name, out var list) ? list.ToList() : [];
        }
    }

    private Watch[] AllWatches()
    {
        lock (_lock)
        {
            return _watches.Values.SelectMany(l => l).ToArray();
        }
    }

    /// <summary>One assignment of an update, compiled for each cluster watching it (null hosts: unchanged, nothing to apply).</summary>
    private sealed record Compiled(List<Watch> Watches, ClusterLoadAssignment? Assignment, List<Host>[]? Hosts);

    private sealed class Watch(EdsDispatcher owner, string serviceName) : IEdsWatch
    {
        private ITimer? _timer;

        public EdsCluster? Cluster { get; private set; }

        public XdsStats Stats { get; private set; } = null!;

        public void Start(EdsCluster cluster)
        {
            Cluster = cluster;
            Stats = new XdsStats(owner._stats, $"cluster.{cluster.Name}.");
            bool first;
            lock (owner._lock)
            {
                if (!owner._watches.TryGetValue(serviceName, out var list))
                {
                    list = [];
                    owner._watches.Add(serviceName, list);
                }

                first = list.Count == 0;
                list.Add(this);
            }

            if (owner.Subscription.Resources.TryGetValue(serviceName, out var cached))
            {
                // Already known (another cluster watches it, or the cluster was updated): no wait.
                var assignment = (ClusterLoadAssignment)cached.Message;
                var hosts = EdsCluster.HostsOf(assignment, new ConfigErrors());
                if (hosts is not null)
                {
                    cluster.Apply(assignment, hosts);
                }
            }
            else if (owner.Subscription.Source.InitialFetchTimeout > TimeSpan.Zero)
            {
                // Envoy's EDS initial_fetch_timeout is per cluster: a cluster whose endpoints never
                // come stops warming (without hosts) instead of holding up its CDS update forever.
                _timer = owner._time.CreateTimer(static state =>
                {
                    var watch = (Watch)state!;
                    if (watch.Cluster is { IsWarm: false } warming)
                    {
                        watch.Stats.InitFetchTimeout.Inc();
                        warming.EndWarming();
                    }
                }, this, owner.Subscription.Source.InitialFetchTimeout, Timeout.InfiniteTimeSpan);
            }

            if (first)
            {
                owner.Subscription.AddName(serviceName);
            }
        }

        public void Dispose()
        {
            _timer?.Dispose();
            bool last;
            lock (owner._lock)
            {
                if (!owner._watches.TryGetValue(serviceName, out var list) || !list.Remove(this))
                {
                    return;
                }

                last = list.Count == 0;
                if (last)
                {
                    owner._watches.Remove(serviceName);
                }
            }

            if (last)
            {
                owner.Subscription.RemoveName(serviceName);
            }
        }
    }
}
