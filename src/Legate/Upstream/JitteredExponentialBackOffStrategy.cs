namespace Legate.Upstream;

/// <summary>
/// Envoy's jittered exponential back-off ("full jitter"): the n-th wait is uniform in
/// [0, base × 2^(n-1)), the interval doubling until it reaches max_interval and staying there.
/// Not thread-safe: each DNS target owns one.
/// </summary>
internal sealed class JitteredExponentialBackOffStrategy : IBackOffStrategy
{
    private readonly long _baseMs;
    private readonly long _maxMs;
    private readonly Func<long, long> _nextRandom;
    private long _nextMs;

    /// <param name="nextRandom">A random number in [0, argument).</param>
    public JitteredExponentialBackOffStrategy(TimeSpan baseInterval, TimeSpan maxInterval, Func<long, long> nextRandom)
    {
        _baseMs = Math.Max(1, (long)baseInterval.TotalMilliseconds);
        _maxMs = Math.Max(_baseMs, (long)maxInterval.TotalMilliseconds);
        _nextRandom = nextRandom;
        _nextMs = _baseMs;
    }

    public TimeSpan NextBackOff()
    {
        var interval = _nextMs;
        _nextMs = interval < _maxMs / 2 ? interval * 2 : _maxMs;
        return TimeSpan.FromMilliseconds(_nextRandom(interval));
    }

    public void Reset() => _nextMs = _baseMs;
}
