namespace Legate.Network;

/// <summary>
/// A one-shot deadline that is cheap to move: <see cref="Set"/> and <see cref="Clear"/> only write
/// a timestamp; the underlying timer is re-armed only when it fires early (the deadline moved
/// later) or was idle. Connections set and clear deadlines once or twice per request, and a timer
/// queue operation each time would cost more than the request's parsing.
/// </summary>
internal sealed class DeadlineTimer : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly ITimer _timer;
    private readonly TimeProvider _time;
    private readonly Action<object> _onExpired;
    private readonly object _state;
    private long _deadline;
    private bool _scheduled;

    public DeadlineTimer(TimeProvider time, Action<object> onExpired, object state)
    {
        _time = time;
        _onExpired = onExpired;
        _state = state;
        _timer = time.CreateTimer(static s => ((DeadlineTimer)s!).OnTick(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Expire <paramref name="after"/> from now (replacing any earlier deadline); zero or negative clears.</summary>
    public void Set(TimeSpan after)
    {
        if (after <= TimeSpan.Zero)
        {
            Clear();
            return;
        }

        var deadline = _time.GetTimestamp() + (long)(after.TotalSeconds * _time.TimestampFrequency);
        lock (_lock)
        {
            var earlier = _scheduled && deadline < Volatile.Read(ref _deadline);
            Volatile.Write(ref _deadline, deadline);
            if (!_scheduled || earlier)
            {
                _scheduled = true;
                _timer.Change(after, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>No deadline; a pending timer tick finds nothing to do.</summary>
    public void Clear() => Volatile.Write(ref _deadline, 0);

    public ValueTask DisposeAsync()
    {
        Clear();
        return _timer.DisposeAsync();
    }

    private void OnTick()
    {
        lock (_lock)
        {
            var deadline = Volatile.Read(ref _deadline);
            if (deadline == 0)
            {
                _scheduled = false;
                return;
            }

            var remaining = deadline - _time.GetTimestamp();
            if (remaining > 0)
            {
                _timer.Change(TimeSpan.FromSeconds((double)remaining / _time.TimestampFrequency), Timeout.InfiniteTimeSpan);
                return;
            }

            _scheduled = false;
            Volatile.Write(ref _deadline, 0);
        }

        _onExpired(_state);
    }
}
