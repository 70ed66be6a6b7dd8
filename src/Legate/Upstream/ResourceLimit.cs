using Legate.Stats;

namespace Legate.Upstream;

/// <summary>
/// One circuit breaker of a cluster (Envoy's Resource): a count of what is in use and the most
/// that may be. <see cref="TryAcquire"/> either takes a slot or says the breaker is open; it never
/// waits and never locks (one compare-and-swap). The <c>*_open</c> gauge is 1 while the count is at
/// the limit; the <c>remaining_*</c> gauge, when tracked, is what is left.
/// </summary>
internal sealed class ResourceLimit
{
    private readonly long _max;
    private readonly Func<long>? _dynamicMax;
    private readonly Gauge _open;
    private readonly Gauge? _remaining;
    private long _count;

    /// <param name="max">The limit.</param>
    /// <param name="open">The <c>circuit_breakers.&lt;priority&gt;.*_open</c> gauge.</param>
    /// <param name="remaining">The <c>remaining_*</c> gauge with <c>track_remaining</c>, else null.</param>
    /// <param name="dynamicMax">A limit computed on each check (the retry budget) instead of <paramref name="max"/>.</param>
    public ResourceLimit(long max, Gauge open, Gauge? remaining, Func<long>? dynamicMax = null)
    {
        _max = max;
        _open = open;
        _remaining = remaining;
        _dynamicMax = dynamicMax;
        Publish();
    }

    public long Max => _dynamicMax?.Invoke() ?? _max;

    public long Count => Volatile.Read(ref _count);

    /// <summary>True when one more may be created (Envoy's canCreate).</summary>
    public bool CanCreate => Count < Max;

    /// <summary>Takes a slot, or returns false when the breaker is open.</summary>
    public bool TryAcquire()
    {
        var max = Max;
        var count = Volatile.Read(ref _count);
        while (true)
        {
            if (count >= max)
            {
                Publish();
                return false;
            }

            var seen = Interlocked.CompareExchange(ref _count, count + 1, count);
            if (seen == count)
            {
                Publish();
                return true;
            }

            count = seen;
        }
    }

    public void Release()
    {
        Interlocked.Decrement(ref _count);
        Publish();
    }

    /// <summary>
    /// Sets the gauges from the count as it is now, again if it moved meanwhile: concurrent
    /// acquires and releases may publish in any order, and the last one to finish must not leave a
    /// stale value behind (a request done long ago showing the breaker still full).
    /// </summary>
    private void Publish()
    {
        while (true)
        {
            var count = Volatile.Read(ref _count);
            var max = Max;
            _open.Set(count >= max ? 1 : 0);
            _remaining?.Set(Math.Max(0, max - count));
            if (Volatile.Read(ref _count) == count)
            {
                return;
            }
        }
    }
}
