using System.Diagnostics;

namespace Legate.Network;

/// <summary>
/// Timestamps for the per-request bookkeeping (stream times, router start, deadlines), read once
/// per event on a socket-engine thread instead of at every call: a proxied HTTP/1.1 request takes
/// about fifteen timestamps, almost all within the one callback of its client or its upstream
/// becoming readable, and the clock read was 1.5% of the proxy's CPU (perf, bench/proxy-bench.sh).
/// nginx caches its time per event-loop turn for the same reason; here the cache lives only for
/// one event, so a value is never older than the callback that reads it (microseconds), and
/// any other thread reads the real clock. Only for recording times: code that waits for a
/// time to pass must read <see cref="Stopwatch.GetTimestamp"/> itself.
/// </summary>
internal static class EventClock
{
    [ThreadStatic]
    private static bool t_onEventThread;

    [ThreadStatic]
    private static long t_cached;

    private static Anchor s_anchor = new(Stopwatch.GetTimestamp(), DateTime.UtcNow.Ticks);

    /// <summary>Now, as a <see cref="Stopwatch"/> timestamp.</summary>
    public static long Timestamp
    {
        get
        {
            if (!t_onEventThread)
            {
                return Stopwatch.GetTimestamp();
            }

            var cached = t_cached;
            if (cached == 0)
            {
                t_cached = cached = Stopwatch.GetTimestamp();
            }

            return cached;
        }
    }

    /// <summary>
    /// The wall-clock time of <paramref name="timestamp"/>, from an anchor pair of clock readings
    /// renewed every second (so a wall-clock step shows within a second, as a date header would).
    /// </summary>
    public static DateTimeOffset UtcAt(long timestamp)
    {
        var anchor = Volatile.Read(ref s_anchor);
        if (timestamp - anchor.Timestamp > Stopwatch.Frequency)
        {
            anchor = new Anchor(Stopwatch.GetTimestamp(), DateTime.UtcNow.Ticks);
            Volatile.Write(ref s_anchor, anchor);
        }

        var ticks = anchor.UtcTicks + (long)((timestamp - anchor.Timestamp) * ((double)TimeSpan.TicksPerSecond / Stopwatch.Frequency));
        return new DateTimeOffset(ticks, TimeSpan.Zero);
    }

    /// <summary>Marks the calling thread as a socket-engine thread (its loop calls <see cref="NextEvent"/>).</summary>
    internal static void EnterEventThread() => t_onEventThread = true;

    /// <summary>A new event is about to be handled: the next <see cref="Timestamp"/> reads the clock.</summary>
    internal static void NextEvent() => t_cached = 0;

    private sealed record Anchor(long Timestamp, long UtcTicks);
}
