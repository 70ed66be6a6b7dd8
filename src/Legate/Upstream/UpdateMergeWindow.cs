using Legate.Stats;

namespace Legate.Upstream;

/// <summary>
/// Envoy's <c>common_lb_config.update_merge_window</c> for one cluster: when the hosts change only
/// in health, weight or metadata (no host added, removed or moved to another priority) within the
/// window after the last update the load balancers saw, the change waits for the window's timer,
/// which then delivers everything that changed meanwhile as one update. The window is leading-edge:
/// the first change after a quiet window goes out at once. An update that adds or removes hosts is
/// never held and takes any held change with it. Stats as Envoy's cluster manager:
/// <c>cluster_manager.cluster_updated</c> (delivered at once), <c>cluster_updated_via_merge</c>
/// (delivered by the timer), <c>update_merge_cancelled</c> (a held change delivered early by a later
/// update), <c>update_out_of_merge_window</c> (a mergeable change that came after a quiet window).
/// </summary>
/// <remarks>
/// Active from the end of the cluster's warming, as Envoy registers its callback when the cluster
/// is initialized (so the first health-check round never waits). Envoy keeps one window per
/// priority; Legate publishes every priority as one snapshot, so the window is per cluster.
/// All members but the timer callback are called under the <see cref="PrioritySet"/>'s write lock.
/// </remarks>
internal sealed class UpdateMergeWindow : IDisposable
{
    /// <summary>Envoy's default window (1 s); 0 disables merging.</summary>
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromSeconds(1);

    private readonly long _windowMs;
    private readonly TimeProvider _time;
    private readonly Counter _updated;
    private readonly Counter _updatedViaMerge;
    private readonly Counter _cancelled;
    private readonly Counter _outOfWindow;
    private ITimer? _timer;
    private long _lastDelivered;
    private bool _delivered;
    private bool _armed;
    private bool _disposed;

    public UpdateMergeWindow(TimeSpan window, TimeProvider time, StatsStore stats)
    {
        _windowMs = Math.Max(0, (long)window.TotalMilliseconds);
        _time = time;
        _updated = stats.Counter("cluster_manager.cluster_updated");
        _updatedViaMerge = stats.Counter("cluster_manager.cluster_updated_via_merge");
        _cancelled = stats.Counter("cluster_manager.update_merge_cancelled");
        _outOfWindow = stats.Counter("cluster_manager.update_out_of_merge_window");
    }

    public TimeSpan Window => TimeSpan.FromMilliseconds(_windowMs);

    /// <summary>Called by the timer (off the lock): the priority set delivers what it held.</summary>
    internal Action? Flush { get; set; }

    /// <summary>
    /// Envoy's scheduleUpdate: true when the update is held for the timer; false when it must be
    /// delivered now (counted in <c>cluster_updated</c>), which cancels a held one.
    /// </summary>
    public bool Hold(bool mergeable)
    {
        if (_windowMs > 0 && !_disposed)
        {
            var now = _time.GetTimestamp();
            // Whole milliseconds, compared as Envoy does (delta_ms > timeout); never delivered = out of the window.
            var outOfWindow = !_delivered || (long)_time.GetElapsedTime(_lastDelivered, now).TotalMilliseconds > _windowMs;
            if (mergeable && !outOfWindow)
            {
                if (!_armed)
                {
                    _armed = true;
                    _timer ??= _time.CreateTimer(static state => ((UpdateMergeWindow)state!).Flush?.Invoke(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                    _timer.Change(TimeSpan.FromMilliseconds(_windowMs), Timeout.InfiniteTimeSpan);
                }

                return true;
            }

            if (mergeable)
            {
                _outOfWindow.Inc();
            }

            if (_armed)
            {
                _armed = false;
                _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                _cancelled.Inc();
            }

            _lastDelivered = now;
            _delivered = true;
        }

        _updated.Inc();
        return false;
    }

    /// <summary>
    /// The timer fired: true when a held update is still due (not cancelled meanwhile), counted in
    /// <c>cluster_updated_via_merge</c>; the window starts again from now.
    /// </summary>
    public bool TakeHeld()
    {
        if (!_armed || _disposed)
        {
            return false;
        }

        _armed = false;
        _lastDelivered = _time.GetTimestamp();
        _delivered = true;
        _updatedViaMerge.Inc();
        return true;
    }

    public void Dispose()
    {
        _disposed = true;
        _armed = false;
        _timer?.Dispose();
    }
}
