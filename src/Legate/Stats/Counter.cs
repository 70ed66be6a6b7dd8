namespace Legate.Stats;

/// <summary>
/// A monotonically increasing count (Envoy's <c>Stats::Counter</c>). Increments go to one of a few
/// cache-line-padded cells picked by the current processor, so cores rarely contend on one line;
/// reads sum the cells. No locks and no allocation on the update path.
/// </summary>
internal sealed class Counter : IStat
{
    // 8 longs = 64 bytes: each stripe lives alone on its cache line.
    private const int Padding = 8;
    private static readonly int StripeMask = StripeCount() - 1;

    private readonly long[] _cells = new long[(StripeMask + 1) * Padding];
    private volatile bool _used;

    internal Counter(StatName name) => Name = name;

    public StatName Name { get; }

    /// <summary>True once the counter was ever incremented (what <c>?usedonly</c> shows); a reset keeps it.</summary>
    public bool Used => _used;

    public long Value
    {
        get
        {
            long sum = 0;
            for (var i = 0; i < _cells.Length; i += Padding)
            {
                sum += Volatile.Read(ref _cells[i]);
            }

            return sum;
        }
    }

    public void Inc() => Add(1);

    public void Add(long amount)
    {
        // A thread can migrate between reading the processor id and the add, so the add must still be atomic.
        var cell = (Thread.GetCurrentProcessorId() & StripeMask) * Padding;
        Interlocked.Add(ref _cells[cell], amount);
        if (!_used)
        {
            // Only the first update writes the flag, so it does not bounce a shared cache line.
            _used = true;
        }
    }

    /// <summary><c>/reset_counters</c>. Increments racing with the reset may land either side of it.</summary>
    public void Reset()
    {
        for (var i = 0; i < _cells.Length; i += Padding)
        {
            Interlocked.Exchange(ref _cells[i], 0);
        }
    }

    private static int StripeCount()
    {
        // A power of two, at most 16: enough to spread contention, small enough to keep many counters cheap.
        var count = 1;
        while (count < Environment.ProcessorCount && count < 16)
        {
            count <<= 1;
        }

        return count;
    }
}
