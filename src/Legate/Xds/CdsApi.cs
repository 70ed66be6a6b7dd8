using Legate.Config;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Upstream;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;

namespace Legate.Xds;

/// <summary>
/// Applies CDS (Envoy's CdsApiImpl + the cluster manager's dynamic side): a cluster absent from a
/// state-of-the-world response is removed; a new or changed one is compiled and warms (an EDS
/// cluster until its endpoints arrive) before it replaces the old one; an unchanged one is left
/// alone. Static clusters cannot be changed by CDS. Stats: <c>cluster_manager.cluster_added/
/// modified/removed</c>, <c>active_clusters</c>, <c>warming_clusters</c>.
/// </summary>
internal sealed class CdsApi : IXdsUpdateHandler
{
    private readonly XdsWarmingTable<DynamicCluster, Warming> _table = new();
    private readonly ClusterManager _clusters;
    private readonly HashSet<string> _static;
    private readonly Logger _log;
    private readonly StatsStore _stats;
    private readonly Counter _added;
    private readonly Counter _modified;
    private readonly Counter _removed;
    private readonly Gauge _activeGauge;
    private readonly Gauge _warmingGauge;

    public CdsApi(ClusterManager clusters, StatsStore stats, Logger log)
    {
        _clusters = clusters;
        _static = new HashSet<string>(clusters.Clusters.Select(c => c.Name), StringComparer.Ordinal);
        _log = log;
        _stats = stats;
        _added = stats.Counter("cluster_manager.cluster_added");
        _modified = stats.Counter("cluster_manager.cluster_modified");
        _removed = stats.Counter("cluster_manager.cluster_removed");
        _activeGauge = stats.Gauge("cluster_manager.active_clusters", ImportMode.NeverImport);
        _warmingGauge = stats.Gauge("cluster_manager.warming_clusters", ImportMode.NeverImport);
        _activeGauge.Set(clusters.Clusters.Length);
    }

    /// <summary>Completes when the clusters of the first update have warmed (server init waits on it).</summary>
    public Task FirstWarm => _table.FirstWarm;

    /// <summary>The dynamic clusters in force, for config_dump.</summary>
    public IReadOnlyList<DynamicCluster> Active => _table.Active;

    /// <summary>The clusters still warming, for config_dump.</summary>
    public IReadOnlyList<DynamicCluster> WarmingClusters => Array.ConvertAll(_table.Warming, w => w.Entry);

    public ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken)
    {
        var errors = new List<XdsResourceError>();
        var built = new List<(DynamicCluster Entry, Cluster Cluster, bool IsNew)>();
        foreach (var resource in update.Resources)
        {
            var config = (ClusterConfig)resource.Message;
            if (_static.Contains(resource.Name))
            {
                errors.Add(new XdsResourceError(resource.Name, $"cluster '{resource.Name}' is a static cluster and cannot be added or updated by CDS"));
                continue;
            }

            if (_table.IsUnchanged(resource.Name, config))
            {
                // Same content: nothing is rebuilt, pools and hosts stay.
                continue;
            }

            var configErrors = new ConfigErrors();
            Cluster? cluster;
            using (var holds = SubscriptionHolds.Begin())
            {
                cluster = ClusterFactory.Create(config, "", configErrors, _clusters.Context);
                if (cluster is null || configErrors.HasErrors)
                {
                    // The SDS secrets its TLS contexts had already asked for are given back.
                    holds.ReleaseAll();
                    errors.Add(new XdsResourceError(resource.Name, XdsResourceValidator.Describe(configErrors.Errors)));
                    continue;
                }
            }

            foreach (var warning in configErrors.Warnings)
            {
                _log.Warn($"cds: cluster '{resource.Name}': {warning}");
            }

            built.Add((new DynamicCluster(resource.Name, config, resource.Version, resource.LastUpdated), cluster, _table.IsNew(resource.Name)));
        }

        foreach (var name in update.Removed)
        {
            if (_static.Contains(name))
            {
                errors.Add(new XdsResourceError(name, $"cluster '{name}' is a static cluster and cannot be removed by CDS"));
            }
        }

        if (update.IsStateOfWorld && errors.Count > 0)
        {
            foreach (var (_, cluster, _) in built)
            {
                cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }

            return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
        }

        var warms = new List<Task>(built.Count);
        // Clusters ready within this update (and the removals) reach the cluster map in one swap.
        _clusters.Pause();
        try
        {
            foreach (var (entry, cluster, isNew) in built)
            {
                (isNew ? _added : _modified).Inc();
                warms.Add(Warm(entry, cluster));
            }

            foreach (var name in update.Removed)
            {
                if (!_static.Contains(name))
                {
                    Remove(name);
                }
            }
        }
        finally
        {
            _clusters.Resume();
        }

        DropStatsOf(update.Removed);

        // An unchanged cluster keeps the version and last_updated it was built with: Envoy blocks
        // the update of a cluster whose content hash did not change.
        _table.OnWarms(warms);
        UpdateGauges();
        return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
    }

    public void OnInitialFetchTimeout() => _table.OnInitialFetchTimeout();

    private Task Warm(DynamicCluster entry, Cluster cluster)
    {
        // Superseding a version still warming cancels it: that one never becomes visible.
        var warming = new Warming(entry, cluster);
        _table.StartWarming(warming);

        _log.Debug($"cds: cluster '{entry.Name}' warming");
        return WarmAsync(warming);
    }

    private async Task WarmAsync(Warming warming)
    {
        try
        {
            await _clusters.AddOrUpdateClusterAsync(warming.Cluster, warming.Cancel.Token).ConfigureAwait(false);
            lock (_table.Gate)
            {
                _table.EndWarming(warming);
                _table.Activate(warming.Entry);
            }

            _log.Info($"cds: add/update cluster '{warming.Entry.Name}'");
        }
        catch (OperationCanceledException)
        {
            // Replaced or removed while warming.
        }
        catch (ObjectDisposedException)
        {
            // The server is shutting down.
        }
        catch (Exception ex)
        {
            _log.Warn($"cds: cluster '{warming.Entry.Name}' failed to warm: {ex.Message}");
            lock (_table.Gate)
            {
                _table.DropWarming(warming.Entry.Name);
            }
        }
        finally
        {
            warming.Cancel.Dispose();
            UpdateGauges();
        }
    }

    private void Remove(string name)
    {
        lock (_table.Gate)
        {
            _table.Remove(name);
        }

        _removed.Inc();
        _log.Info($"cds: removing cluster '{name}'");
        _ = _clusters.RemoveClusterAsync(name);
    }

    /// <summary>
    /// Envoy frees a removed cluster's <c>cluster.NAME.*</c> stats with its stats scope: they leave
    /// <c>/stats</c>, and a cluster added again by that name counts from zero. The clusters that
    /// stay (static, in force, warming, among them this update's) keep theirs, a cluster
    /// <c>a.b</c> included when <c>a</c> goes. Done before the next update can build a cluster of
    /// the same name (updates are applied one at a time).
    /// </summary>
    private void DropStatsOf(IReadOnlyList<string> removed)
    {
        var gone = new HashSet<string>(removed.Where(n => !_static.Contains(n)), StringComparer.Ordinal);
        if (gone.Count == 0)
        {
            return;
        }

        var live = new HashSet<string>(_static, StringComparer.Ordinal);
        live.UnionWith(_table.Active.Select(c => c.Name));
        live.UnionWith(_table.Warming.Select(w => w.Entry.Name));
        gone.ExceptWith(live);
        var dropped = _stats.RemoveScopes("cluster.", gone, live);
        _log.Debug($"cds: dropped {dropped} stats of {gone.Count} removed cluster(s)");
    }

    private void UpdateGauges()
    {
        var (warming, active) = _table.Counts;
        _warmingGauge.Set(warming);
        _activeGauge.Set(_static.Count + active);
    }

    /// <summary>A dynamic cluster as config_dump shows it.</summary>
    internal sealed class DynamicCluster(string name, ClusterConfig config, string version, DateTimeOffset lastUpdated) : IXdsDynamicEntry
    {
        public string Name { get; } = name;

        public ClusterConfig Config { get; } = config;

        Google.Protobuf.IMessage IXdsDynamicEntry.Message => Config;

        public string Version { get; } = version;

        public DateTimeOffset LastUpdated { get; } = lastUpdated;
    }

    private sealed class Warming(DynamicCluster entry, Cluster cluster) : IXdsWarming<DynamicCluster>
    {
        public DynamicCluster Entry { get; } = entry;

        public Cluster Cluster { get; } = cluster;

        public CancellationTokenSource Cancel { get; } = new();
    }
}
