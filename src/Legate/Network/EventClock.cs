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
    // One thread-local read per timestamp: the runtime reaches [ThreadStatic] fields through
    // __tls_get_addr here (~15 timestamps per request), so the event thread's cache is an object
    // that the loop also holds directly, and other threads have none.
    [ThreadStatic]
    private static Cache? t_cache;

    private static Anchor s_anchor = new(Stopwatch.GetTimestamp(), DateTime.UtcNow.Ticks);

    /// <summary>Now, as a <see cref="Stopwatch"/> timestamp.</summary>
    public static long Timestamp
    {
        get
        {
            var cache = t_cache;
            if (cache is null)
            {
                return Stopwatch.GetTimestamp();
            }

            var cached = cache.Timestamp;
            if (cached == 0)
            {
                cache.Timestamp = cached = Stopwatch.GetTimestamp();
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

    /// <summary>
    /// Marks the calling thread as a socket-engine thread; its loop keeps the returned cache and
    /// calls <see cref="Cache.NextEvent"/> before each event.
    /// </summary>
    internal static Cache EnterEventThread() => t_cache = new Cache();

    /// <summary>An event thread's timestamp of the event being handled (0: not read yet).</summary>
    internal sealed class Cache
    {
        internal long Timestamp;

        /// <summary>A new event is about to be handled: the next <see cref="EventClock.Timestamp"/> reads the clock.</summary>
        public void NextEvent() => Timestamp = 0;
    }

    private sealed record Anchor(long Timestamp, long UtcTicks);
}
