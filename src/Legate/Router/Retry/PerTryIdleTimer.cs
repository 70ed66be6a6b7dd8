using Legate.Network;

namespace Legate.Router.Retry;

/// <summary>
/// <c>retry_policy.per_try_idle_timeout</c> for one attempt (Envoy's per-try idle timer): armed
/// when the attempt has its upstream connection, pushed back by every upstream byte (response
/// head, body, trailers), and unlike per_try_timeout it keeps running while the response streams
/// downstream. When it fires the attempt is cancelled and counts as a per-try timeout (retriable,
/// 504 UT otherwise), with its own stat <c>upstream_rq_per_try_idle_timeout</c>.
/// </summary>
internal sealed class PerTryIdleTimer
{
    private readonly DeadlineTimer _timer;
    private readonly TimeSpan _timeout;
    private readonly Action<object> _onFired;
    private readonly object _state;
    private readonly Lock _lock = new();
    private int _fired;
    private bool _stopped;

    /// <param name="onFired">Cancels the attempt's pending upstream read; runs on a timer thread.</param>
    public PerTryIdleTimer(TimeProvider time, TimeSpan timeout, Action<object> onFired, object state)
    {
        _timeout = timeout;
        _onFired = onFired;
        _state = state;
        _timer = new DeadlineTimer(time, static s => ((PerTryIdleTimer)s).OnExpired(), this);
        _timer.Set(timeout);
    }

    /// <summary>True once the attempt went <c>per_try_idle_timeout</c> without an upstream byte.</summary>
    public bool Fired => Volatile.Read(ref _fired) != 0;

    /// <summary>Upstream bytes arrived: the attempt is making progress. Cheap (a timestamp write while scheduled).</summary>
    public void Touch()
    {
        if (!Fired)
        {
            _timer.Set(_timeout);
        }
    }

    /// <summary>
    /// The attempt ended: the timer never fires for it. Once this returns no callback runs any more
    /// (one in progress is waited for), so the connection can go back to the pool safely.
    /// </summary>
    public void Stop()
    {
        lock (_lock)
        {
            _stopped = true;
        }

        var disposed = _timer.DisposeAsync();
        if (!disposed.IsCompleted)
        {
            _ = disposed.AsTask();
        }
    }

    private void OnExpired()
    {
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            Volatile.Write(ref _fired, 1);
            _onFired(_state);
        }
    }
}
