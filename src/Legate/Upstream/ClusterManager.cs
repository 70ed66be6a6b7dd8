using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using Envoy.Config.Bootstrap.V3;
using Legate.Config;

namespace Legate.Upstream;

/// <summary>
/// Owns every cluster (Envoy's ClusterManager): builds the static ones from the bootstrap, looks
/// clusters up by name for the router and tcp_proxy, starts their DNS refresh and stops it on
/// dispose. The set of clusters is an immutable snapshot swapped as one reference, so lookups
/// never lock; CDS will add, replace and remove clusters through the same swap.
/// </summary>
internal sealed class ClusterManager : IAsyncDisposable
{
    private readonly Lock _writeLock = new();
    private volatile ClusterMap _clusters;
    private bool _disposed;
    private int _pauseDepth;
    private List<Change>? _batch;
    private TaskCompletionSource? _batchDone;
    private bool _flushQueued;
    private int _batchSeen;
    private const int MaxFlushYields = 16;
    private int _flushYields;

    private ClusterManager(ClusterMap clusters, ClusterFactoryContext context)
    {
        _clusters = clusters;
        Context = context;
        AttachAggregates(clusters);
    }

    /// <summary>Aggregate clusters look their listed clusters up here, by name, at pick time.</summary>
    private void AttachAggregates(ClusterMap map)
    {
        foreach (var cluster in map.Ordered)
        {
            if (cluster is AggregateCluster aggregate)
            {
                aggregate.Attach(this);
            }
        }
    }

    public ClusterFactoryContext Context { get; }

    /// <summary>How many times the cluster map was swapped (tests check that one CDS update builds it once).</summary>
    internal int MapBuilds { get; private set; }

    /// <summary>Every cluster, in the order they were added (static ones in config order).</summary>
    public ImmutableArray<Cluster> Clusters => _clusters.Ordered;

    /// <summary>
    /// Compiles <c>static_resources.clusters</c>. Problems go to <paramref name="errors"/> with
    /// their field paths; a cluster that cannot be built is left out.
    /// </summary>
    public static ClusterManager Compile(Bootstrap bootstrap, ConfigErrors errors, ClusterFactoryContext? context = null)
    {
        context ??= ClusterFactoryContext.Default;
        var clusters = new List<Cluster>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var configs = bootstrap.StaticResources?.Clusters;
        for (var i = 0; configs is not null && i < configs.Count; i++)
        {
            var path = FieldPath.Index("static_resources.clusters", i);
            if (!names.Add(configs[i].Name))
            {
                errors.Add(FieldPath.Field(path, "name"), $"duplicate cluster name \"{configs[i].Name}\"");
                continue;
            }

            if (ClusterFactory.Create(configs[i], path, errors, context) is { } cluster)
            {
                clusters.Add(cluster);
            }
        }

        if (context.LocalCluster is { } local)
        {
            // Envoy: the local cluster must be one of the static clusters.
            var localCluster = clusters.Find(c => c.Name == local.Name);
            if (localCluster is null)
            {
                errors.Add("cluster_manager.local_cluster_name", $"local cluster '{local.Name}' must be defined");
            }
            else
            {
                local.PrioritySet = localCluster.PrioritySet;
            }
        }

        return new ClusterManager(ClusterMap.Create(clusters), context);
    }

    /// <summary>The cluster named <paramref name="name"/>, or null (the router's 503 NC, "cluster not found").</summary>
    public Cluster? Find(string name) => _clusters.ByName.GetValueOrDefault(name);

    public bool TryGetCluster(string name, [NotNullWhen(true)] out Cluster? cluster) =>
        _clusters.ByName.TryGetValue(name, out cluster);

    /// <summary>Initializes every cluster at once (DNS clusters resolve their names) and waits for all of them.</summary>
    public Task InitializeAsync(CancellationToken cancellationToken)
    {
        var clusters = _clusters.Ordered;
        var tasks = new Task[clusters.Length];
        for (var i = 0; i < clusters.Length; i++)
        {
            tasks[i] = clusters[i].WarmAsync(cancellationToken);
        }

        return Task.WhenAll(tasks);
    }

    /// <summary>
    /// Adds a cluster or replaces the one with the same name (CDS). The new cluster is initialized
    /// (warmed) before it becomes visible, as Envoy does; the one it replaces is then disposed.
    /// Requests already holding the old cluster keep using it. Clusters that become ready
    /// together are published by one swap of the map (see <see cref="Publish"/>).
    /// </summary>
    public async Task AddOrUpdateClusterAsync(Cluster cluster, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            await cluster.WarmAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var change = new Change(cluster.Name, cluster);
        await Publish(change).ConfigureAwait(false);
        if (!change.Applied)
        {
            // Disposed while the new cluster warmed: it was never visible, stop it.
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw new ObjectDisposedException(nameof(ClusterManager));
        }

        if (change.Replaced is { } replaced)
        {
            await replaced.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Removes a cluster (CDS); false when there is none by that name.</summary>
    public async Task<bool> RemoveClusterAsync(string name)
    {
        var change = new Change(name, null);
        await Publish(change).ConfigureAwait(false);
        if (change.Replaced is not { } removed)
        {
            return false;
        }

        await removed.DisposeAsync().ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Holds changes of the map until <see cref="Resume"/> (CDS applies one update in between):
    /// the clusters of the update that are ready by then become visible in one swap, the map
    /// being built once rather than once per cluster (quadratic for 1,000 clusters).
    /// </summary>
    public void Pause()
    {
        lock (_writeLock)
        {
            _pauseDepth++;
        }
    }

    /// <summary>Ends a <see cref="Pause"/>; the last one publishes the changes held meanwhile.</summary>
    public void Resume()
    {
        lock (_writeLock)
        {
            if (--_pauseDepth > 0 || _batch is null || _flushQueued)
            {
                return;
            }
        }

        Flush(mayYield: false);
    }

    /// <summary>
    /// Queues one change; the task completes once it is applied. Changes arriving close together
    /// (1,000 EDS clusters warming from one EDS response, each on its own continuation) share one
    /// swap: the first change of a batch queues the flush to the thread pool and the changes
    /// queued before it runs join the batch. While paused nothing is flushed.
    /// </summary>
    private Task Publish(Change change)
    {
        lock (_writeLock)
        {
            if (_batch is null)
            {
                _batch = new List<Change>();
                _batchDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            _batch.Add(change);
            if (_pauseDepth == 0 && !_flushQueued)
            {
                _flushQueued = true;
                _batchSeen = _batch.Count;
                _flushYields = 0;
                ThreadPool.UnsafeQueueUserWorkItem(static self => self.Flush(mayYield: true), this, preferLocal: false);
            }

            return _batchDone!.Task;
        }
    }

    /// <summary>
    /// Applies the queued changes in order and swaps the map once. While the batch still grows
    /// between two runs (warm clusters' continuations, queued to the thread pool by one EDS
    /// response, still arriving) the flush goes back to the end of the queue, a bounded number of
    /// times: under CPU load one Delta EDS response otherwise published its 1,000 clusters in
    /// ~170 swaps of a 2,000-entry map.
    /// </summary>
    private void Flush(bool mayYield)
    {
        TaskCompletionSource done;
        lock (_writeLock)
        {
            if (mayYield && _batch is { } growing && growing.Count != _batchSeen && _flushYields < MaxFlushYields && !_disposed)
            {
                _batchSeen = growing.Count;
                _flushYields++;
                ThreadPool.UnsafeQueueUserWorkItem(static self => self.Flush(mayYield: true), this, preferLocal: false);
                return;
            }

            _flushQueued = false;
            if (_batch is not { } batch)
            {
                return;
            }

            done = _batchDone!;
            _batch = null;
            _batchDone = null;
            if (!_disposed)
            {
                Apply(batch);
            }
        }

        done.TrySetResult();
    }

    /// <summary>Builds the next map from the current one and <paramref name="batch"/> (under the write lock).</summary>
    private void Apply(List<Change> batch)
    {
        var current = _clusters;
        var byName = new Dictionary<string, Cluster>(current.ByName, StringComparer.Ordinal);
        var appended = new List<Cluster>();
        foreach (var change in batch)
        {
            byName.TryGetValue(change.Name, out var previous);
            change.Replaced = previous;
            if (previous is not null)
            {
                appended.Remove(previous);
            }

            if (change.Cluster is { } cluster)
            {
                byName[change.Name] = cluster;
                appended.Add(cluster);
                change.Applied = true;
            }
            else
            {
                byName.Remove(change.Name);
            }
        }

        // Kept clusters keep their place; added and replaced ones go to the end, in order.
        var ordered = ImmutableArray.CreateBuilder<Cluster>(byName.Count);
        foreach (var cluster in current.Ordered)
        {
            if (byName.TryGetValue(cluster.Name, out var now) && ReferenceEquals(now, cluster))
            {
                ordered.Add(cluster);
            }
        }

        ordered.AddRange(appended);
        var map = new ClusterMap(byName.ToFrozenDictionary(StringComparer.Ordinal), ordered.MoveToImmutable());
        AttachAggregates(map);
        _clusters = map;
        MapBuilds++;
    }

    /// <summary>Stops every cluster's refresh; lookups keep answering for requests still in flight.</summary>
    public async ValueTask DisposeAsync()
    {
        ImmutableArray<Cluster> clusters;
        TaskCompletionSource? pending;
        lock (_writeLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            clusters = _clusters.Ordered;
            pending = _batchDone;
            _batch = null;
            _batchDone = null;
        }

        // Changes still queued (paused) are dropped: their callers see they were not applied.
        pending?.TrySetResult();

        foreach (var cluster in clusters)
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One queued change: add or replace (<see cref="Cluster"/> set) or remove (null).</summary>
    private sealed class Change(string name, Cluster? cluster)
    {
        public string Name { get; } = name;

        public Cluster? Cluster { get; } = cluster;

        /// <summary>Set by the flush: the cluster of that name it replaced or removed.</summary>
        public Cluster? Replaced { get; set; }

        /// <summary>Set by the flush: the added or replacing cluster is visible.</summary>
        public bool Applied { get; set; }
    }

    /// <summary>One immutable view of the clusters: by name for lookups, in order for listing.</summary>
    private sealed class ClusterMap(FrozenDictionary<string, Cluster> byName, ImmutableArray<Cluster> ordered)
    {
        public FrozenDictionary<string, Cluster> ByName { get; } = byName;

        public ImmutableArray<Cluster> Ordered { get; } = ordered;

        public static ClusterMap Create(IEnumerable<Cluster> clusters)
        {
            var ordered = clusters.ToImmutableArray();
            return new ClusterMap(ordered.ToFrozenDictionary(c => c.Name, StringComparer.Ordinal), ordered);
        }
    }
}
