namespace Legate.Stats;

/// <summary>
/// Where counters keep their striped cells: many counters share one array, laid out by stripe
/// (one region per stripe, a slot per counter in each region), instead of each counter owning an
/// array of cache-line-padded cells. A core updates only its own stripe's region, so cores still
/// never write the same cache line, while a counter costs one long per stripe (16 bytes on two
/// cores) instead of a cache line per stripe (128 bytes on two cores, 1 KB on sixteen): with the
/// ~100 stats of each of thousands of CDS clusters, the padded cells were most of their memory.
/// Slots are handed out once, when a counter is created (under a lock; never on the update path),
/// and never reused: a counter dropped from the store (a removed cluster's, see
/// <see cref="StatsStore.RemoveScopes"/>) may still be updated by code holding it, so its slot is
/// left to it (16 bytes a counter on two cores).
/// </summary>
internal sealed class CounterCells
{
    /// <summary>Stripes: a power of two, at most 16, at least the processor count when it can.</summary>
    public static readonly int Stripes = StripeCount();

    /// <summary>Picks a stripe from the processor id.</summary>
    public static readonly int StripeMask = Stripes - 1;

    /// <summary>Distance in longs between a slot's cells in two stripes: a power of two (a shift).</summary>
    public const int StripeStride = 512;

    // The last cache line (8 longs) of each region stays empty, so two regions never share a line
    // whatever the array's alignment. 16 stripes x 512 longs = 64 KB: below the large object heap.
    private const int SlotsPerChunk = StripeStride - 8;

    private readonly Lock _lock = new();
    private long[] _chunk = [];
    private int _next = SlotsPerChunk;

    /// <summary>A fresh slot: its cells are <c>chunk[slot + stripe * StripeStride]</c> for each stripe.</summary>
    public (long[] Chunk, int Slot) Allocate()
    {
        lock (_lock)
        {
            if (_next == SlotsPerChunk)
            {
                _chunk = new long[Stripes * StripeStride];
                _next = 0;
            }

            return (_chunk, _next++);
        }
    }

    private static int StripeCount()
    {
        // Enough to spread contention, few enough to keep many counters cheap.
        var count = 1;
        while (count < Environment.ProcessorCount && count < 16)
        {
            count <<= 1;
        }

        return count;
    }
}
