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
    private readonly Random _random;
    private long _nextMs;

    public JitteredExponentialBackOffStrategy(TimeSpan baseInterval, TimeSpan maxInterval, Random random)
    {
        _baseMs = Math.Max(1, (long)baseInterval.TotalMilliseconds);
        _maxMs = Math.Max(_baseMs, (long)maxInterval.TotalMilliseconds);
        _random = random;
        _nextMs = _baseMs;
    }

    public TimeSpan NextBackOff()
    {
        var interval = _nextMs;
        _nextMs = interval < _maxMs / 2 ? interval * 2 : _maxMs;
        return TimeSpan.FromMilliseconds(_random.NextInt64(interval));
    }

    public void Reset() => _nextMs = _baseMs;
}
