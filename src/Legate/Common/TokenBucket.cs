namespace Legate.Common;

/// <summary>
/// Envoy's TokenBucketImpl: holds up to <c>maxTokens</c>, refills continuously at
/// <c>fillRate</c> tokens a second (measured on a <see cref="TimeProvider"/>, so tests can drive
/// it). Not thread-safe: callers serialise.
/// </summary>
internal sealed class TokenBucket
{
    /// <summary>A timer armed for <see cref="NextTokenAvailable"/> fires on a whole tick: a token short by rounding counts as there.</summary>
    private const double Tolerance = 1e-6;

    private readonly TimeProvider _time;
    private readonly double _maxTokens;
    private readonly double _fillRate;
    private double _tokens;
    private long _refilledAt;

    /// <param name="initialTokens">Tokens at the start; null: full.</param>
    public TokenBucket(double maxTokens, double fillRate, TimeProvider time, double? initialTokens = null)
    {
        _time = time;
        _maxTokens = maxTokens;
        _fillRate = fillRate;
        _tokens = Math.Min(initialTokens ?? maxTokens, maxTokens);
        _refilledAt = time.GetTimestamp();
    }

    /// <summary>
    /// Takes <paramref name="tokens"/>; with <paramref name="allowPartial"/> as many whole tokens
    /// as there are, up to that. Returns how many were taken (0 or <paramref name="tokens"/> without it).
    /// </summary>
    public long Consume(long tokens, bool allowPartial)
    {
        Refill();
        var whole = (long)Math.Floor(_tokens + Tolerance);
        var taken = allowPartial ? Math.Min(whole, tokens) : whole >= tokens ? tokens : 0;
        _tokens = Math.Max(0, _tokens - taken);
        return taken;
    }

    /// <summary>How long until a whole token is there (zero when one is).</summary>
    public TimeSpan NextTokenAvailable()
    {
        Refill();
        return _tokens >= 1 - Tolerance ? TimeSpan.Zero : TimeSpan.FromSeconds((1 - _tokens) / _fillRate);
    }

    private void Refill()
    {
        var now = _time.GetTimestamp();
        var elapsed = (double)(now - _refilledAt) / _time.TimestampFrequency;
        _refilledAt = now;
        if (elapsed > 0)
        {
            _tokens = Math.Min(_maxTokens, _tokens + (elapsed * _fillRate));
        }
    }
}
