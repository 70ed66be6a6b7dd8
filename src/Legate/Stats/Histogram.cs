namespace Legate.Stats;

/// <summary>The unit of a histogram's samples (Envoy's <c>Histogram::Unit</c>).</summary>
internal enum HistogramUnit
{
    Null,
    Unspecified,
    Bytes,
    Microseconds,
    Milliseconds,
    Percent,
}

/// <summary>
/// A distribution of samples (Envoy's <c>Stats::Histogram</c>), kept as counts per Envoy default bucket
/// plus an exact count, sum, min and max. Recording is a few <see cref="Interlocked"/> operations:
/// lock- and allocation-free. Quantiles are estimated from the buckets (see <see cref="Quantile"/>).
/// </summary>
internal sealed class Histogram : IStat
{
    /// <summary>Envoy's default <c>histogram_bucket_settings</c> upper bounds.</summary>
    public static readonly double[] DefaultBuckets =
    [
        0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
    ];

    /// <summary>The quantiles Envoy prints, in percent.</summary>
    public static readonly double[] SupportedQuantiles = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100];

    // One count per bucket, then the overflow (above the last bound, Prometheus' le="+Inf" only).
    private readonly long[] _buckets;
    private readonly double[] _bounds;
    private long _sum;

    // All-zero counts for the default buckets, shared by every histogram's interval half until it
    // has samples: most histograms (those of idle clusters) never do. Never written.
    private static readonly long[] DefaultZeros = new long[DefaultBuckets.Length + 1];

    // The interval half (Envoy's interval histogram): the bucket counts at the last flush, and the
    // counts recorded between the two last flushes. Only the flush touches them: recording stays
    // a few atomic adds. Both are replaced, never written in place.
    private long[] _atLastFlush;
    private volatile long[] _interval;
    private long _min = long.MaxValue;
    private long _max = long.MinValue;
    private volatile bool _used;

    internal Histogram(StatName name, HistogramUnit unit, double[]? bounds = null)
    {
        Name = name;
        Unit = unit;
        _bounds = bounds ?? DefaultBuckets;
        _buckets = new long[_bounds.Length + 1];
        _atLastFlush = _bounds == DefaultBuckets ? DefaultZeros : new long[_buckets.Length];
        _interval = _atLastFlush;
    }

    /// <summary>The bucket upper bounds (Envoy's default, or <c>histogram_bucket_settings</c>).</summary>
    public IReadOnlyList<double> Bounds => _bounds;

    /// <summary>
    /// Ends an interval (the stats flush): the samples recorded since the previous flush become
    /// the interval half read by <see cref="IntervalQuantile"/> and <see cref="IntervalBucketCounts"/>.
    /// Called by one flusher at a time.
    /// </summary>
    public void FlushInterval()
    {
        if (!_used)
        {
            // Never recorded: both halves are still all zeros, and stay so without new arrays.
            return;
        }

        var current = BucketCounts();
        var interval = new long[current.Length];
        for (var i = 0; i < current.Length; i++)
        {
            interval[i] = current[i] - _atLastFlush[i];
        }

        _atLastFlush = current;
        _interval = interval;
    }

    /// <summary>Counts per bucket recorded in the last completed interval.</summary>
    public long[] IntervalBucketCounts() => (long[])_interval.Clone();

    /// <summary>Samples in the last completed interval.</summary>
    public long IntervalCount
    {
        get
        {
            long count = 0;
            foreach (var c in _interval)
            {
                count += c;
            }

            return count;
        }
    }

    /// <summary>The quantile of the last completed interval, or NaN when it had no samples (Envoy prints <c>nan</c>).</summary>
    /// <remarks>Every interval sample lies within the all-time min and max, so the estimate is clamped to them too.</remarks>
    public double IntervalQuantile(double percent) =>
        Estimate(_interval, percent, Volatile.Read(ref _min), Volatile.Read(ref _max), clamp: true);

    public StatName Name { get; }

    public HistogramUnit Unit { get; }

    public bool Used => _used;

    public long Sum => Volatile.Read(ref _sum);

    public long Count
    {
        get
        {
            long count = 0;
            foreach (var bucket in _buckets)
            {
                count += bucket;
            }

            return count;
        }
    }

    /// <summary>Where samples also go when a statsd sink sends each one (null otherwise: no cost).</summary>
    internal HistogramSampleQueue? Samples { get; set; }

    /// <summary>Records one sample, as Envoy's <c>recordValue(uint64)</c>.</summary>
    public void Record(long value)
    {
        if (value < 0)
        {
            value = 0;
        }

        Samples?.Enqueue(this, value);

        Interlocked.Increment(ref _buckets[BucketIndex(value)]);
        Interlocked.Add(ref _sum, value);
        UpdateMin(value);
        UpdateMax(value);
        if (!_used)
        {
            _used = true;
        }
    }

    /// <summary>Counts per bucket (non-cumulative), last being the overflow above the last bound.</summary>
    public long[] BucketCounts()
    {
        var counts = new long[_buckets.Length];
        for (var i = 0; i < counts.Length; i++)
        {
            counts[i] = Volatile.Read(ref _buckets[i]);
        }

        return counts;
    }

    /// <summary>
    /// Estimates the <paramref name="percent"/> quantile, or NaN with no samples. Approximate: the rank
    /// is located in its bucket and linearly interpolated between the bucket's bounds, then clamped to
    /// the exact min and max (so P0 and P100 are exact). Envoy's circllhist is finer-grained; both
    /// are estimates, so values can differ from Envoy's in the fractional digits.
    /// </summary>
    public double Quantile(double percent) =>
        Estimate(BucketCounts(), percent, Volatile.Read(ref _min), Volatile.Read(ref _max), clamp: true);

    private double Estimate(long[] counts, double percent, double min, double max, bool clamp)
    {
        long total = 0;
        foreach (var c in counts)
        {
            total += c;
        }

        if (total == 0)
        {
            return double.NaN;
        }

        var rank = percent / 100 * total;
        long below = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            if (counts[i] > 0 && below + counts[i] >= rank)
            {
                var lower = i == 0 ? 0 : _bounds[i - 1];
                var upper = i < _bounds.Length ? _bounds[i] : Math.Max(max, lower);
                var estimate = lower + ((upper - lower) * (rank - below) / counts[i]);
                return clamp ? Math.Clamp(estimate, min, max) : estimate;
            }

            below += counts[i];
        }

        return max;
    }

    private int BucketIndex(long value)
    {
        // Prometheus semantics: a sample falls in the first bucket whose bound it does not exceed.
        var bounds = _bounds;
        for (var i = 0; i < bounds.Length; i++)
        {
            if (value <= bounds[i])
            {
                return i;
            }
        }

        return bounds.Length;
    }

    private void UpdateMin(long value)
    {
        var current = Volatile.Read(ref _min);
        while (value < current)
        {
            var seen = Interlocked.CompareExchange(ref _min, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private void UpdateMax(long value)
    {
        var current = Volatile.Read(ref _max);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref _max, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }
}
