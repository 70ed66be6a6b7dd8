namespace Legate.Stats;

/// <summary>
/// Every histogram sample recorded since the last stats flush, for the statsd sinks, which send each
/// sample (Envoy's <c>onHistogramComplete</c>) rather than a summary. Recording threads enqueue
/// without a lock or an allocation (a bounded ring with a sequence number per slot); the flusher,
/// the one reader, drains it. When the ring is full a sample is dropped and counted, so a burst
/// between two flushes can never grow memory.
/// </summary>
internal sealed class HistogramSampleQueue
{
    public const int DefaultCapacity = 1 << 16;

    private readonly Slot[] _slots;
    private readonly long _mask;
    private long _enqueuePosition;
    private long _dequeuePosition;
    private long _dropped;

    public HistogramSampleQueue(int capacity = DefaultCapacity)
    {
        if (capacity <= 0 || (capacity & (capacity - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), "must be a power of two");
        }

        _slots = new Slot[capacity];
        _mask = capacity - 1;
        for (var i = 0; i < capacity; i++)
        {
            _slots[i].Sequence = i;
        }
    }

    /// <summary>Adds a sample; any thread, lock- and allocation-free.</summary>
    public void Enqueue(Histogram histogram, long value)
    {
        var position = Volatile.Read(ref _enqueuePosition);
        while (true)
        {
            ref var slot = ref _slots[position & _mask];
            var gap = Volatile.Read(ref slot.Sequence) - position;
            if (gap == 0)
            {
                if (Interlocked.CompareExchange(ref _enqueuePosition, position + 1, position) == position)
                {
                    slot.Histogram = histogram;
                    slot.Value = value;
                    Volatile.Write(ref slot.Sequence, position + 1);
                    return;
                }

                position = Volatile.Read(ref _enqueuePosition);
            }
            else if (gap < 0)
            {
                // The reader has not freed this slot yet: full.
                Interlocked.Increment(ref _dropped);
                return;
            }
            else
            {
                position = Volatile.Read(ref _enqueuePosition);
            }
        }
    }

    /// <summary>Moves every complete sample into <paramref name="samples"/>; returns how many were dropped since the last drain. One reader at a time.</summary>
    public long Drain(List<(Histogram Histogram, long Value)> samples)
    {
        var position = _dequeuePosition;
        while (true)
        {
            ref var slot = ref _slots[position & _mask];
            if (Volatile.Read(ref slot.Sequence) != position + 1)
            {
                break;
            }

            samples.Add((slot.Histogram!, slot.Value));
            slot.Histogram = null;
            Volatile.Write(ref slot.Sequence, position + _slots.Length);
            position++;
        }

        _dequeuePosition = position;
        return Interlocked.Exchange(ref _dropped, 0);
    }

    private struct Slot
    {
        public long Sequence;
        public Histogram? Histogram;
        public long Value;
    }
}
