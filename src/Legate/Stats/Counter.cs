namespace Legate.Stats;

/// <summary>
/// A monotonically increasing count (Envoy's <c>Stats::Counter</c>). Increments go to one of a few
/// stripes picked by the current processor, each stripe's cell on a cache line that other cores do
/// not write (<see cref="CounterCells"/>), so cores rarely contend on one line; reads sum the cells.
/// No locks and no allocation on the update path.
/// </summary>
internal sealed class Counter : IStat
{
    // The cells live in a chunk shared with other counters: this counter's cell of stripe s is
    // _cells[_slot + s * CounterCells.StripeStride].
    private readonly long[] _cells;
    private readonly int _slot;
    private volatile bool _used;

    internal Counter(StatName name, CounterCells cells)
    {
        Name = name;
        (_cells, _slot) = cells.Allocate();
    }

    public StatName Name { get; }

    /// <summary>True once the counter was ever incremented (what <c>?usedonly</c> shows); a reset keeps it.</summary>
    public bool Used => _used;

    public long Value
    {
        get
        {
            long sum = 0;
            for (var stripe = 0; stripe < CounterCells.Stripes; stripe++)
            {
                sum += Volatile.Read(ref _cells[_slot + (stripe * CounterCells.StripeStride)]);
            }

            return sum;
        }
    }

    public void Inc() => Add(1);

    public void Add(long amount)
    {
        // A thread can migrate between reading the processor id and the add, so the add must still be atomic.
        var cell = _slot + ((Thread.GetCurrentProcessorId() & CounterCells.StripeMask) * CounterCells.StripeStride);
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
        for (var stripe = 0; stripe < CounterCells.Stripes; stripe++)
        {
            Interlocked.Exchange(ref _cells[_slot + (stripe * CounterCells.StripeStride)], 0);
        }
    }
}
