using Legate.Network;
using Legate.Upstream;

namespace Legate.Stats;

/// <summary>
/// Envoy's <c>cluster_manager.*</c> and <c>listener_manager.*</c> stats for what exists today:
/// static clusters and listeners, counted as added when the server is built; the gauges are read
/// from the managers when the stats are read. The xDS-driven counters (modified, removed, warming)
/// stay 0 until xDS exists, so dashboards find every name.
/// </summary>
internal sealed class ManagerStats
{
    public ManagerStats(StatsStore store, ClusterManager clusters, ListenerManager listeners, uint concurrency)
    {
        store.Counter("cluster_manager.cluster_added").Add(clusters.Clusters.Length);
        store.Counter("cluster_manager.cluster_modified");
        store.Counter("cluster_manager.cluster_removed");
        store.Counter("cluster_manager.cluster_updated");
        store.Counter("cluster_manager.cluster_updated_via_merge");
        store.Counter("cluster_manager.update_merge_cancelled");
        store.Counter("cluster_manager.update_out_of_merge_window");
        var activeClusters = store.Gauge("cluster_manager.active_clusters", ImportMode.NeverImport);
        store.Gauge("cluster_manager.warming_clusters", ImportMode.NeverImport);

        store.Counter("listener_manager.listener_added").Add(listeners.Listeners.Count);
        store.Counter("listener_manager.listener_modified");
        store.Counter("listener_manager.listener_removed");
        store.Counter("listener_manager.listener_stopped");
        store.Counter("listener_manager.listener_create_failure");
        ListenerCreateSuccess = store.Counter("listener_manager.listener_create_success");
        var active = store.Gauge("listener_manager.total_listeners_active", ImportMode.NeverImport);
        store.Gauge("listener_manager.total_listeners_warming", ImportMode.NeverImport);
        store.Gauge("listener_manager.total_listeners_draining", ImportMode.NeverImport);
        WorkersStarted = store.Gauge("listener_manager.workers_started", ImportMode.NeverImport);
        Concurrency = concurrency;
        store.OnRefresh(() =>
        {
            activeClusters.Set(clusters.Clusters.Length);
            active.Set(listeners.Listeners.Count(l => l.BoundEndpoint is not null));
        });
    }

    /// <summary>Envoy counts one success per listener per worker.</summary>
    public Counter ListenerCreateSuccess { get; }

    public Gauge WorkersStarted { get; }

    public uint Concurrency { get; }

    /// <summary>The listeners are bound and serving: the worker-side stats move.</summary>
    public void OnWorkersStarted(int listenerCount)
    {
        ListenerCreateSuccess.Add(listenerCount * (long)Concurrency);
        WorkersStarted.Set(1);
    }
}
