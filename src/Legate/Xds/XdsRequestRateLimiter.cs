using Envoy.Config.Core.V3;
using Legate.Common;

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

    private readonly TokenBucket _bucket;

    public XdsRequestRateLimiter(RateLimitSettings settings, TimeProvider time) =>
        _bucket = new TokenBucket(settings.MaxTokens ?? DefaultMaxTokens, settings.FillRate ?? DefaultFillRate, time);

    /// <summary>Takes one token when there is one. Callers serialise (the stream's send lock).</summary>
    public bool TryConsume() => _bucket.Consume(1, allowPartial: false) == 1;

    /// <summary>How long until a token is there (zero when one is).</summary>
    public TimeSpan NextTokenAvailable() => _bucket.NextTokenAvailable();
}
