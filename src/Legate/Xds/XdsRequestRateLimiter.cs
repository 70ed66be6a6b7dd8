using Envoy.Config.Core.V3;

namespace Legate.Xds;

/// <summary>
/// The token bucket of an ApiConfigSource's <c>rate_limit_settings</c> (Envoy's TokenBucketImpl
/// on the xDS stream): it starts full with <c>max_tokens</c> (default 100) and refills at
/// <c>fill_rate</c> tokens a second (default 10). Each discovery request takes a token; a request
/// that finds none waits in the stream's queue until <see cref="NextTokenAvailable"/> — requests
/// are delayed, never dropped. One bucket per gRPC stream, kept across reconnects as Envoy's.
/// </summary>
internal sealed class XdsRequestRateLimiter
{
    public const uint DefaultMaxTokens = 100;
    public const double DefaultFillRate = 10;

    /// <summary>A timer armed for <see cref="NextTokenAvailable"/> fires on a whole tick: a token short by rounding counts as there.</summary>
    private const double Tolerance = 1e-6;

    private readonly TimeProvider _time;
    private readonly double _maxTokens;
    private readonly double _fillRate;
    private double _tokens;
    private long _refilledAt;

    public XdsRequestRateLimiter(RateLimitSettings settings, TimeProvider time)
    {
        _time = time;
        _maxTokens = settings.MaxTokens ?? DefaultMaxTokens;
        _fillRate = settings.FillRate ?? DefaultFillRate;
        _tokens = _maxTokens;
        _refilledAt = time.GetTimestamp();
    }

    /// <summary>Takes one token when there is one. Callers serialise (the stream's send lock).</summary>
    public bool TryConsume()
    {
        Refill();
        if (_tokens < 1 - Tolerance)
        {
            return false;
        }

        _tokens = Math.Max(0, _tokens - 1);
        return true;
    }

    /// <summary>How long until a token is there (zero when one is).</summary>
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
