namespace Legate.Network.Epoll;

/// <summary>
/// Decides when an <see cref="EpollLoop"/> waits a moment before its next <c>epoll_wait</c> so
/// that events gather into one batch. Only under load: when the loop has been busy for most of
/// its recent time and the last batch was small, a short sleep lets the next requests and
/// responses arrive together. The peers gain from it: every event that arrives while the loop
/// sleeps in <c>epoll_wait</c> costs the sender a wake-up of the loop, and whatever the loop
/// then forwards one message at a time wakes the next process one message at a time. On this
/// project's benchmark (one core each for the proxy and for the load generator plus upstream)
/// the upstream went to sleep half as often and spent about 1 µs less per request
/// (docs/performance.md, "Coalescing events under load"). A lightly loaded loop never waits, so
/// it adds no latency there; under load a request can wait at most the pause.
/// </summary>
/// <remarks>
/// Not thread-safe: one instance per loop, used by the loop's thread only. The pause is a sleep,
/// not a spin, so the CPU the proxy reports is the CPU it used.
/// </remarks>
internal struct EventCoalescing
{
    /// <summary>The share of recent time the loop must have spent on events (not waiting) before it pauses.</summary>
    public const int BusyPercent = 85;

    /// <summary>A batch this large or larger is big already: the loop polls again at once.</summary>
    public const int SmallBatch = 16;

    /// <summary>The environment variable that sets the pause in microseconds (0 turns coalescing off).</summary>
    public const string PauseVariable = "LEGATE_EPOLL_COALESCE_US";

    /// <summary>The pause when <see cref="PauseVariable"/> is not set.</summary>
    public const int DefaultPauseMicroseconds = 10;

    // Moving averages of the time per batch spent on events and spent waiting for them (in
    // epoll_wait or pausing), in Stopwatch ticks, each batch weighing 1/256: a loop under load
    // runs a few thousand batches a second, so this looks back some tens of milliseconds, long
    // enough that one quiet moment does not turn coalescing off and on (a 1/16 weight did).
    private const int Shift = 8;

    private long _busy;
    private long _idle;

    public EventCoalescing(int pauseMicroseconds)
    {
        PauseMicroseconds = Math.Max(0, pauseMicroseconds);
    }

    /// <summary>The pause in microseconds; 0 when coalescing is off.</summary>
    public int PauseMicroseconds { get; }

    /// <summary>The loop's recent busy share in percent (for tests and diagnostics).</summary>
    public readonly int BusyShare => _busy + _idle == 0 ? 0 : (int)(_busy * 100 / (_busy + _idle));

    /// <summary>
    /// The pause <paramref name="value"/> (the environment variable's) asks for:
    /// <see cref="DefaultPauseMicroseconds"/> when unset, else 0 to 1000 µs. Anything else is
    /// an error that names the variable (the caller warns and keeps the default: a socket engine
    /// must not fail to start over a tuning knob).
    /// </summary>
    public static int ParsePause(string? value, out string? error)
    {
        error = null;
        if (value is null)
        {
            return DefaultPauseMicroseconds;
        }

        if (int.TryParse(value.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var microseconds) && microseconds <= 1000)
        {
            return microseconds;
        }

        error = $"{PauseVariable}='{value}' is not a pause in microseconds from 0 (off) to 1000; using {DefaultPauseMicroseconds}";
        return DefaultPauseMicroseconds;
    }

    /// <summary>Records one batch: the ticks spent waiting before it and the ticks spent running it.</summary>
    public void Record(long idleTicks, long busyTicks)
    {
        _idle += (idleTicks - _idle) >> Shift;
        _busy += (busyTicks - _busy) >> Shift;
    }

    /// <summary>Whether to pause before the next wait, after a batch of <paramref name="lastBatch"/> events.</summary>
    public readonly bool ShouldPause(int lastBatch) =>
        PauseMicroseconds > 0
        && lastBatch is > 0 and < SmallBatch
        && _busy > 0
        && _busy * 100 >= BusyPercent * (_busy + _idle);
}
