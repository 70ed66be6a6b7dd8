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

    private ClusterManager(ClusterMap clusters, ClusterFactoryContext context)
    {
        _clusters = clusters;
        Context = context;
    }

    public ClusterFactoryContext Context { get; }

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
    /// Requests already holding the old cluster keep using it.
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

        Cluster? replaced = null;
        var managerDisposed = false;
        lock (_writeLock)
        {
            if (_disposed)
            {
                managerDisposed = true;
            }
            else
            {
                var current = _clusters;
                current.ByName.TryGetValue(cluster.Name, out replaced);
                _clusters = ClusterMap.Create(current.Ordered.Where(c => c.Name != cluster.Name).Append(cluster));
            }
        }

        if (managerDisposed)
        {
            // Disposed while the new cluster warmed: it was never visible, stop it.
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw new ObjectDisposedException(nameof(ClusterManager));
        }

        if (replaced is not null)
        {
            await replaced.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Removes a cluster (CDS); false when there is none by that name.</summary>
    public async Task<bool> RemoveClusterAsync(string name)
    {
        Cluster? removed;
        lock (_writeLock)
        {
            var current = _clusters;
            if (_disposed || !current.ByName.TryGetValue(name, out removed))
            {
                return false;
            }

            _clusters = ClusterMap.Create(current.Ordered.Where(c => c.Name != name));
        }

        await removed.DisposeAsync().ConfigureAwait(false);
        return true;
    }

    /// <summary>Stops every cluster's refresh; lookups keep answering for requests still in flight.</summary>
    public async ValueTask DisposeAsync()
    {
        ImmutableArray<Cluster> clusters;
        lock (_writeLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            clusters = _clusters.Ordered;
        }

        foreach (var cluster in clusters)
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
        }
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
