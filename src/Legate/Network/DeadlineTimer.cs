namespace Legate.Network;

/// <summary>
/// A one-shot deadline that is cheap to move: <see cref="Set"/> and <see cref="Clear"/> only write
/// a timestamp while the underlying timer is scheduled; the timer is re-armed only when it fires
/// early (the deadline moved later), when it was idle, or when the deadline moved earlier.
/// Connections and streams move deadlines several times per request, and a timer queue
/// operation each time (a global lock) would cost more than parsing the request.
/// </summary>
internal sealed class DeadlineTimer : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly ITimer _timer;
    private readonly TimeProvider _time;
    private readonly bool _systemClock;
    private readonly Action<object> _onExpired;
    private readonly object _state;
    private long _deadline;
    private int _scheduled;

    /// <summary>When the scheduled tick comes (timestamp); written under the lock.</summary>
    private long _scheduledFor;

    public DeadlineTimer(TimeProvider time, Action<object> onExpired, object state)
    {
        _time = time;
        _systemClock = ReferenceEquals(time, TimeProvider.System);
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

        // Moving a deadline needs "now" only roughly (the tick checks the real clock): the event's.
        var now = _systemClock ? EventClock.Timestamp : _time.GetTimestamp();
        var deadline = now + (long)(after.TotalSeconds * _time.TimestampFrequency);

        // Fast path: the timer is scheduled and the deadline does not move earlier, so the tick
        // will find the new deadline and re-arm for the rest. The exchange is a full fence: either
        // the tick sees the new deadline, or this sees the tick's "not scheduled" (Dekker-style).
        Interlocked.Exchange(ref _deadline, deadline);
        if (Volatile.Read(ref _scheduled) != 0 && deadline >= Volatile.Read(ref _scheduledFor))
        {
            return;
        }

        lock (_lock)
        {
            Interlocked.Exchange(ref _scheduled, 1);
            Schedule(Volatile.Read(ref _deadline));
        }
    }

    /// <summary>No deadline; a pending timer tick finds nothing to do.</summary>
    public void Clear() => Volatile.Write(ref _deadline, 0);

    public ValueTask DisposeAsync()
    {
        Clear();
        return _timer.DisposeAsync();
    }

    /// <summary>Arms the timer for <paramref name="deadline"/> (under the lock).</summary>
    private void Schedule(long deadline)
    {
        Volatile.Write(ref _scheduledFor, deadline);
        var remaining = Math.Max(0, deadline - _time.GetTimestamp());
        _timer.Change(TimeSpan.FromSeconds((double)remaining / _time.TimestampFrequency), Timeout.InfiniteTimeSpan);
    }

    private void OnTick()
    {
        var expired = false;
        lock (_lock)
        {
            while (true)
            {
                var deadline = Volatile.Read(ref _deadline);
                if (deadline == 0)
                {
                    Interlocked.Exchange(ref _scheduled, 0);

                    // A Set between the read and the store above took the fast path: take it over.
                    if (Volatile.Read(ref _deadline) == 0)
                    {
                        break;
                    }

                    Interlocked.Exchange(ref _scheduled, 1);
                    continue;
                }

                if (deadline - _time.GetTimestamp() > 0)
                {
                    Schedule(deadline);
                    break;
                }

                if (Interlocked.CompareExchange(ref _deadline, 0, deadline) != deadline)
                {
                    // Moved while we looked: look again.
                    continue;
                }

                Interlocked.Exchange(ref _scheduled, 0);
                if (Volatile.Read(ref _deadline) != 0)
                {
                    // Set again right after expiring: keep a timer for the new deadline too.
                    Interlocked.Exchange(ref _scheduled, 1);
                    Schedule(Volatile.Read(ref _deadline));
                }

                expired = true;
                break;
            }
        }

        if (expired)
        {
            _onExpired(_state);
        }
    }
}
