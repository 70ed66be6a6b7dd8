namespace Legate.Http;

/// <summary>
/// Envoy's response flags (<c>%RESPONSE_FLAGS%</c>): why a stream ended the way it did. The bit
/// order is Envoy's enum order, which is also the order the short names are printed in.
/// </summary>
[Flags]
internal enum ResponseFlags : long
{
    None = 0,
    FailedLocalHealthCheck = 1L << 0,
    NoHealthyUpstream = 1L << 1,
    UpstreamRequestTimeout = 1L << 2,
    LocalReset = 1L << 3,
    UpstreamRemoteReset = 1L << 4,
    UpstreamConnectionFailure = 1L << 5,
    UpstreamConnectionTermination = 1L << 6,
    UpstreamOverflow = 1L << 7,
    NoRouteFound = 1L << 8,
    DelayInjected = 1L << 9,
    FaultInjected = 1L << 10,
    RateLimited = 1L << 11,
    UnauthorizedExternalService = 1L << 12,
    RateLimitServiceError = 1L << 13,
    DownstreamConnectionTermination = 1L << 14,
    UpstreamRetryLimitExceeded = 1L << 15,
    StreamIdleTimeout = 1L << 16,
    InvalidEnvoyRequestHeaders = 1L << 17,
    DownstreamProtocolError = 1L << 18,
    UpstreamMaxStreamDurationReached = 1L << 19,
    ResponseFromCacheFilter = 1L << 20,
    NoFilterConfigFound = 1L << 21,
    DurationTimeout = 1L << 22,
    UpstreamProtocolError = 1L << 23,
    NoClusterFound = 1L << 24,
    OverloadManagerTerminated = 1L << 25,
    DnsResolutionFailed = 1L << 26,
    DropOverload = 1L << 27,
    DownstreamRemoteReset = 1L << 28,
    UnconditionalDropOverload = 1L << 29,
}
