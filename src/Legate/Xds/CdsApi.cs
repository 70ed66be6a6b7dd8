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
    private readonly Lock _lock = new();
    private readonly Dictionary<string, DynamicCluster> _active = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Warming> _warming = new(StringComparer.Ordinal);
    private readonly ClusterManager _clusters;
    private readonly HashSet<string> _static;
    private readonly Logger _log;
    private readonly TaskCompletionSource _firstWarm = new(TaskCreationOptions.RunContinuationsAsynchronously);
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
        _added = stats.Counter("cluster_manager.cluster_added");
        _modified = stats.Counter("cluster_manager.cluster_modified");
        _removed = stats.Counter("cluster_manager.cluster_removed");
        _activeGauge = stats.Gauge("cluster_manager.active_clusters", ImportMode.NeverImport);
        _warmingGauge = stats.Gauge("cluster_manager.warming_clusters", ImportMode.NeverImport);
        _activeGauge.Set(clusters.Clusters.Length);
    }

    /// <summary>Completes when the clusters of the first update have warmed (server init waits on it).</summary>
    public Task FirstWarm => _firstWarm.Task;

    /// <summary>The dynamic clusters in force, for config_dump.</summary>
    public IReadOnlyList<DynamicCluster> Active
    {
        get
        {
            lock (_lock)
            {
                return _active.Values.ToArray();
            }
        }
    }

    /// <summary>The clusters still warming, for config_dump.</summary>
    public IReadOnlyList<DynamicCluster> WarmingClusters
    {
        get
        {
            lock (_lock)
            {
                return _warming.Values.Select(w => w.Entry).ToArray();
            }
        }
    }

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

            lock (_lock)
            {
                var current = _warming.TryGetValue(resource.Name, out var warming) ? warming.Entry : _active.GetValueOrDefault(resource.Name);
                if (current is not null && current.Config.Equals(config))
                {
                    // Same content: nothing is rebuilt, pools and hosts stay.
                    continue;
                }
            }

            var configErrors = new ConfigErrors();
            var cluster = ClusterFactory.Create(config, "", configErrors, _clusters.Context);
            if (cluster is null || configErrors.HasErrors)
            {
                errors.Add(new XdsResourceError(resource.Name, XdsResourceValidator.Describe(configErrors.Errors)));
                continue;
            }

            foreach (var warning in configErrors.Warnings)
            {
                _log.Warn($"cds: cluster '{resource.Name}': {warning}");
            }

            bool isNew;
            lock (_lock)
            {
                isNew = !_active.ContainsKey(resource.Name) && !_warming.ContainsKey(resource.Name);
            }

            built.Add((new DynamicCluster(resource.Name, config, resource.Version, resource.LastUpdated), cluster, isNew));
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

        // Versions of unchanged clusters follow the response.
        lock (_lock)
        {
            foreach (var resource in update.Resources)
            {
                if (_active.TryGetValue(resource.Name, out var entry) && entry.Config.Equals(resource.Message))
                {
                    entry.Version = resource.Version;
                }
            }
        }

        if (!_firstWarm.Task.IsCompleted)
        {
            Task.WhenAll(warms).ContinueWith(_ => _firstWarm.TrySetResult(), TaskScheduler.Default);
        }

        UpdateGauges();
        return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
    }

    public void OnInitialFetchTimeout() => _firstWarm.TrySetResult();

    private Task Warm(DynamicCluster entry, Cluster cluster)
    {
        var warming = new Warming(entry, cluster);
        lock (_lock)
        {
            if (_warming.Remove(entry.Name, out var previous))
            {
                // Superseded while still warming: that one never becomes visible.
                previous.Cancel.Cancel();
            }

            _warming[entry.Name] = warming;
        }

        _log.Debug($"cds: cluster '{entry.Name}' warming");
        return WarmAsync(warming);
    }

    private async Task WarmAsync(Warming warming)
    {
        try
        {
            await _clusters.AddOrUpdateClusterAsync(warming.Cluster, warming.Cancel.Token).ConfigureAwait(false);
            lock (_lock)
            {
                if (_warming.TryGetValue(warming.Entry.Name, out var current) && ReferenceEquals(current, warming))
                {
                    _warming.Remove(warming.Entry.Name);
                }

                _active[warming.Entry.Name] = warming.Entry;
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
            lock (_lock)
            {
                _warming.Remove(warming.Entry.Name);
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
        lock (_lock)
        {
            if (_warming.Remove(name, out var warming))
            {
                warming.Cancel.Cancel();
            }

            _active.Remove(name);
        }

        _removed.Inc();
        _log.Info($"cds: removing cluster '{name}'");
        _ = _clusters.RemoveClusterAsync(name);
    }

    private void UpdateGauges()
    {
        lock (_lock)
        {
            _warmingGauge.Set(_warming.Count);
            _activeGauge.Set(_static.Count + _active.Count);
        }
    }

    /// <summary>A dynamic cluster as config_dump shows it.</summary>
    internal sealed class DynamicCluster(string name, ClusterConfig config, string version, DateTimeOffset lastUpdated)
    {
        public string Name { get; } = name;

        public ClusterConfig Config { get; } = config;

        public string Version { get; set; } = version;

        public DateTimeOffset LastUpdated { get; } = lastUpdated;
    }

    private sealed class Warming(DynamicCluster entry, Cluster cluster)
    {
        public DynamicCluster Entry { get; } = entry;

        public Cluster Cluster { get; } = cluster;

        public CancellationTokenSource Cancel { get; } = new();
    }
}
