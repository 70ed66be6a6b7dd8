using System.Globalization;
using Envoy.Config.Core.V3;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Router.Matching;
using Legate.Upstream;

namespace Legate.Router.Retry;

/// <summary>
/// One request's retries (Envoy's RetryStateImpl): the conditions (route/virtual-host policy plus
/// the trusted x-envoy-retry-on / x-envoy-retry-grpc-on / x-envoy-max-retries /
/// x-envoy-retriable-* request headers), the attempts left, the jittered exponential back-off,
/// the retry slot of the cluster's circuit breaker and the hosts already tried (previous_hosts).
/// Created only when some retry is possible, so a request without retries pays nothing.
/// </summary>
internal sealed class RetryState : LoadBalancerContext
{
    private readonly RetryPolicy _policy;
    private readonly IRetryResources _resources;
    private readonly RoutingPriority _priority;
    private readonly Upstream.JitteredExponentialBackOffStrategy _backOff;
    private readonly HashSet<int> _statusCodes;
    private readonly string[] _retriableHeaderNames;
    private readonly List<Host> _previousHosts = new(2);
    private int _retriesRemaining;
    private bool _holdsSlot;
    private PreviousPriorities? _previousPriorities;

    private RetryState(RetryPolicy policy, RetryOn retryOn, int numRetries, TimeSpan perTryTimeout, HashSet<int> statusCodes, string[] retriableHeaderNames, IRetryResources resources, RoutingPriority priority, Func<long, long> random)
    {
        _policy = policy;
        RetryOn = retryOn;
        _retriesRemaining = numRetries;
        PerTryTimeout = perTryTimeout;
        _statusCodes = statusCodes;
        _retriableHeaderNames = retriableHeaderNames;
        _resources = resources;
        _priority = priority;
        _backOff = new Upstream.JitteredExponentialBackOffStrategy(policy.BaseInterval, policy.MaxInterval, random);
    }

    public RetryOn RetryOn { get; }

    /// <summary>The per-try timeout (policy or x-envoy-upstream-rq-per-try-timeout-ms); zero when none.</summary>
    public TimeSpan PerTryTimeout { get; }

    public TimeSpan PerTryIdleTimeout => _policy.PerTryIdleTimeout;

    /// <summary>Hosts tried so far (for previous_hosts).</summary>
    public IReadOnlyList<Host> PreviousHosts => _previousHosts;

    // As Envoy's router: host predicates and the retry priority apply to retries only (a first
    // attempt has no hosts tried yet).
    public override int HostSelectionRetryCount => _policy.HostPredicates is not null && _previousHosts.Count > 0 ? _policy.HostSelectionRetryMaxAttempts : 0;

    public override bool ShouldSelectAnotherHost(Host host) => _policy.HostPredicates is { } predicates && _previousHosts.Count > 0 && predicates.Rejects(host, _previousHosts);

    public override PriorityLoad DeterminePriorityLoad(PrioritySnapshot snapshot, PriorityLoad original)
    {
        if (_policy.PreviousPrioritiesUpdateFrequency == 0 || _previousHosts.Count == 0)
        {
            return original;
        }

        _previousPriorities ??= new PreviousPriorities(_policy.PreviousPrioritiesUpdateFrequency);
        return _previousPriorities.DetermineLoad(snapshot, original, _previousHosts);
    }

    /// <summary>
    /// The retry state for a request, or null when nothing can be retried. Reads (and removes, as
    /// Envoy does before the request goes upstream) the x-envoy retry headers; the connection
    /// manager has already stripped them from untrusted (external) requests.
    /// </summary>
    public static RetryState? Create(RetryPolicy? policy, HttpRequestHead head, Cluster cluster, RoutingPriority priority, TimeSpan perTryOverride, Func<long, long>? random = null)
    {
        var headers = head.Headers;
        var retryOn = policy?.RetryOn ?? RetryOn.None;
        var numRetries = policy?.NumRetries ?? 1;
        if (TakeHeader(headers, "x-envoy-retry-on") is { } httpOn)
        {
            retryOn |= RetryOnParser.Parse(httpOn, grpc: false);
        }

        if (TakeHeader(headers, "x-envoy-retry-grpc-on") is { } grpcOn)
        {
            retryOn |= RetryOnParser.Parse(grpcOn, grpc: true);
        }

        if (TakeHeader(headers, "x-envoy-max-retries") is { } max && uint.TryParse(max, NumberStyles.None, CultureInfo.InvariantCulture, out var maxRetries))
        {
            numRetries = (int)Math.Min(maxRetries, int.MaxValue);
        }

        // Consumed whether or not the request can be retried (Envoy never forwards them).
        var codes = TakeHeader(headers, "x-envoy-retriable-status-codes");
        var names = TakeHeader(headers, "x-envoy-retriable-header-names");
        if (retryOn == RetryOn.None || numRetries == 0)
        {
            return null;
        }

        var statusCodes = new HashSet<int>(policy?.RetriableStatusCodes ?? []);
        if (codes is not null)
        {
            foreach (var range in codes.AsSpan().Split(','))
            {
                if (int.TryParse(codes.AsSpan()[range].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var code))
                {
                    statusCodes.Add(code);
                }
            }
        }

        var headerNames = names is not null
            ? names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(n => n.ToLowerInvariant()).ToArray()
            : [];

        // retriable_request_headers: only a request matching one of them may be retried at all.
        var policyOrEmpty = policy ?? RetryPolicy.Empty;
        if (policyOrEmpty.RetriableRequestHeaders.Length > 0)
        {
            var input = new RouteMatchInput(head.Method, head.Path, string.Empty, headers.Lookup);
            if (!policyOrEmpty.RetriableRequestHeaders.Any(m => m.Matches(input)))
            {
                return null;
            }
        }

        var perTry = perTryOverride > TimeSpan.Zero ? perTryOverride : policyOrEmpty.PerTryTimeout;
        return new RetryState(policyOrEmpty, retryOn, numRetries, perTry, statusCodes, headerNames, RetryResources.For(cluster), priority, random ?? Random.Shared.NextInt64);
    }

    /// <summary>Records the host an attempt goes to (previous_hosts).</summary>
    public void OnHostChosen(Host host) => _previousHosts.Add(host);

    /// <summary>Envoy's wouldRetryFromHeaders: is this upstream response head a retriable one?</summary>
    public bool IsRetriable(HttpResponseHead head)
    {
        var headers = head.Headers;

        // Envoy never retries a response the upstream marked as overloaded.
        if (headers.Contains("x-envoy-overloaded"))
        {
            return false;
        }

        var status = head.StatusCode;
        if ((RetryOn & RetryOn.EnvoyRateLimited) != 0 && headers.Contains("x-envoy-ratelimited"))
        {
            return true;
        }

        if ((RetryOn & RetryOn.FiveXx) != 0 && status >= 500)
        {
            return true;
        }

        if ((RetryOn & RetryOn.GatewayError) != 0 && status is 502 or 503 or 504)
        {
            return true;
        }

        if ((RetryOn & RetryOn.Retriable4xx) != 0 && status == 409)
        {
            return true;
        }

        if ((RetryOn & RetryOn.RetriableStatusCodes) != 0 && _statusCodes.Contains(status))
        {
            return true;
        }

        if ((RetryOn & RetryOn.RetriableHeaders) != 0)
        {
            var input = new RouteMatchInput(string.Empty, string.Empty, string.Empty, headers.Lookup);
            foreach (var matcher in _policy.RetriableHeaders)
            {
                if (matcher.Matches(input))
                {
                    return true;
                }
            }

            foreach (var name in _retriableHeaderNames)
            {
                if (headers.Contains(name))
                {
                    return true;
                }
            }
        }

        const RetryOn grpcAny = RetryOn.GrpcCancelled | RetryOn.GrpcDeadlineExceeded | RetryOn.GrpcInternal | RetryOn.GrpcResourceExhausted | RetryOn.GrpcUnavailable;
        if ((RetryOn & grpcAny) != 0 && headers.GetValue("grpc-status") is { } grpcStatus
            && int.TryParse(grpcStatus, NumberStyles.None, CultureInfo.InvariantCulture, out var code))
        {
            var flag = code switch
            {
                1 => RetryOn.GrpcCancelled,
                4 => RetryOn.GrpcDeadlineExceeded,
                8 => RetryOn.GrpcResourceExhausted,
                13 => RetryOn.GrpcInternal,
                14 => RetryOn.GrpcUnavailable,
                _ => RetryOn.None,
            };
            return (RetryOn & flag) != 0;
        }

        return false;
    }

    /// <summary>Envoy's wouldRetryFromReset: is an attempt that failed this way retriable?</summary>
    public bool IsRetriable(AttemptFailure failure) => failure switch
    {
        AttemptFailure.ConnectFailure => (RetryOn & (RetryOn.ConnectFailure | RetryOn.FiveXx | RetryOn.GatewayError | RetryOn.Reset | RetryOn.ResetBeforeRequest)) != 0,
        AttemptFailure.RefusedStream => (RetryOn & (RetryOn.RefusedStream | RetryOn.FiveXx | RetryOn.GatewayError | RetryOn.Reset)) != 0,
        _ => (RetryOn & (RetryOn.FiveXx | RetryOn.GatewayError | RetryOn.Reset)) != 0,
    };

    /// <summary>
    /// Decides on a retriable outcome: retry (taking one of the attempts left and a retry slot of the
    /// cluster), or say why not. <paramref name="stats"/> gets Envoy's retry counters.
    /// </summary>
    public RetryDecision Decide(ClusterStats stats)
    {
        // As Envoy's shouldRetry: the slot of the previous retry is held until its outcome is known.
        ReleaseSlot();
        if (_retriesRemaining <= 0)
        {
            stats.UpstreamRqRetryLimitExceeded.Inc();
            return RetryDecision.LimitExceeded;
        }

        if (!_resources.TryAcquireRetry(_priority))
        {
            stats.UpstreamRqRetryOverflow.Inc();
            return RetryDecision.Overflow;
        }

        _holdsSlot = true;
        _retriesRemaining--;
        stats.UpstreamRqRetry.Inc();
        return RetryDecision.Retry;
    }

    /// <summary>The wait before the next attempt: a rate-limited response's reset header when configured, else the jittered exponential back-off.</summary>
    public TimeSpan NextBackOff(HttpResponseHead? retriedResponse, ClusterStats stats)
    {
        if (retriedResponse is not null && _policy.RateLimitedResetHeaders.Length > 0 && RateLimitedBackOff(retriedResponse.Headers) is { } rateLimited)
        {
            stats.UpstreamRqRetryBackoffRatelimited.Inc();
            return rateLimited;
        }

        stats.UpstreamRqRetryBackoffExponential.Inc();
        return _backOff.NextBackOff();
    }

    private TimeSpan? RateLimitedBackOff(HttpHeaderMap headers)
    {
        foreach (var (name, unix) in _policy.RateLimitedResetHeaders)
        {
            if (headers.GetValue(name) is not { } value || !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                continue;
            }

            var wait = unix ? DateTimeOffset.FromUnixTimeSeconds(number) - DateTimeOffset.UtcNow : TimeSpan.FromSeconds(number);
            if (wait > TimeSpan.Zero && wait <= _policy.RateLimitedMaxInterval)
            {
                // Envoy's JitteredLowerBoundBackOffStrategy: uniform in [interval, 1.5 × interval), so
                // clients told the same reset time do not all come back at once.
                var half = (long)wait.TotalMilliseconds / 2;
                return half > 0 ? wait + TimeSpan.FromMilliseconds(Random.Shared.NextInt64(half)) : wait;
            }
        }

        return null;
    }

    /// <summary>
    /// The retried attempt's outcome is known (or the request ends): the circuit breaker's retry
    /// slot goes back. As Envoy, a retry holds its slot through its back-off and its attempt, so
    /// <c>max_retries</c> bounds the retries in flight, not only those waiting to start.
    /// </summary>
    public void ReleaseSlot()
    {
        if (_holdsSlot)
        {
            _holdsSlot = false;
            _resources.ReleaseRetry(_priority);
        }
    }

    private static string? TakeHeader(HttpHeaderMap headers, string name)
    {
        // The x-envoy-retry-* names are not known headers: most requests skip the look-up.
        var value = headers.GetUnknownValue(name);
        if (value is not null)
        {
            headers.RemoveUnknown(name);
        }

        return value;
    }
}

/// <summary>How an upstream attempt failed before its response head (for <see cref="RetryState.IsRetriable(AttemptFailure)"/>).</summary>
internal enum AttemptFailure
{
    /// <summary>Connection failure or connect timeout (UF).</summary>
    ConnectFailure,

    /// <summary>The upstream reset the stream or closed the connection (UR / UC), or answered garbage (UPE).</summary>
    Reset,

    /// <summary>HTTP/2 REFUSED_STREAM.</summary>
    RefusedStream,

    /// <summary>The per-try timeout fired (a local reset, UT).</summary>
    PerTryTimeout,

    /// <summary>per_try_idle_timeout fired: no upstream byte for that long (a local reset, UT).</summary>
    PerTryIdleTimeout,
}
