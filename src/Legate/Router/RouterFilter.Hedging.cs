using System.Diagnostics;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Router.Retry;
using Legate.Upstream;

namespace Legate.Router;

/// <summary>
/// Request hedging (<c>hedge_on_per_try_timeout</c>), kept apart from the router's hot path: the
/// per-try timeout of an HTTP/1.1 attempt parks it in <see cref="HedgedAttempts"/> instead of
/// cancelling it, and the first good response head of any attempt wins.
/// </summary>
internal sealed partial class RouterFilter
{
    /// <summary>
    /// Consumes the trusted request header <c>x-envoy-hedge-on-per-try-timeout</c>: <c>true</c> or
    /// <c>false</c> replaces the route's hedge policy, anything else leaves it (Envoy's finalHedgingParams).
    /// </summary>
    private static bool TakeHedgeOnPerTryTimeout(HttpHeaderMap headers, bool configured)
    {
        if (headers.GetUnknownValue("x-envoy-hedge-on-per-try-timeout") is not { } value)
        {
            return configured;
        }

        headers.RemoveUnknown("x-envoy-hedge-on-per-try-timeout");
        return value == "true" || (value != "false" && configured);
    }

    /// <summary>Hedging applies when some retry is possible and there is a per-try timeout to hedge on.</summary>
    private void StartHedging(HttpRequestHead headers)
    {
        if (_retry is { PerTryTimeout: var perTry } retry && perTry > TimeSpan.Zero)
        {
            _hedge = new HedgedAttempts(retry, headers.MethodKind);
        }
    }

    /// <summary>What is left of the route timeout (zero: no route timeout; at least 1 ms otherwise).</summary>
    private TimeSpan RouteTimeLeft()
    {
        if (_globalDeadline == long.MaxValue)
        {
            return TimeSpan.Zero;
        }

        var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _globalDeadline);
        return left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1);
    }

    /// <summary>From now on only the route timeout bounds this attempt (no per-try timeout).</summary>
    private void ArmRouteTimeout(Upstream.ConnectionPool.Http1UpstreamConnection upstream)
    {
        _attemptIsPerTry = false;
        var left = RouteTimeLeft();
        if (left > TimeSpan.Zero)
        {
            upstream.ArmTimeout(left);
        }
        else
        {
            upstream.DisarmTimeout();
        }
    }

    /// <summary>
    /// The HTTP/1.1 attempt's read was cancelled under hedging: a parked attempt won (adopt it), or
    /// the per-try timeout fired on a complete request before any response (Envoy's
    /// onSoftPerTryTimeout). Null: handle the cancellation as without hedging.
    /// </summary>
    private ValueTask<bool>? OnHedgedCancel()
    {
        if (_hedge!.TakeReady() is { } winner)
        {
            return AdoptAsync(winner);
        }

        if (_upstream!.TimedOut && _attemptIsPerTry && _requestComplete && !_stream.ResponseStarted)
        {
            return OnSoftPerTryTimeoutAsync();
        }

        // A per-try timeout before the request body is complete cancels the attempt as without
        // hedging (Envoy's per-try timer only starts once the request is complete).
        return null;
    }

    /// <summary>
    /// Envoy's onSoftPerTryTimeout: the timeout counts for outlier detection, not as
    /// <c>upstream_rq_per_try_timeout</c>; a retry (any retry left, whatever <c>retry_on</c> says)
    /// starts after the back-off while this attempt keeps waiting. Without retries left (URX) or
    /// budget (UO) the attempt simply goes on under the route timeout.
    /// </summary>
    private ValueTask<bool> OnSoftPerTryTimeoutAsync()
    {
        var stats = _cluster!.Info.Stats;
        var stream = _stream;
        stream.Info.UpstreamHost?.ReportResult(OutlierResult.LocalOriginTimeout);
        switch (_retry!.Decide(stats))
        {
            case RetryDecision.Retry:
                _backOff = _retry.NextBackOff(null, stats);
                ParkActive();
                return new ValueTask<bool>(true);
            case RetryDecision.LimitExceeded:
                stream.Info.SetResponseFlag(ResponseFlags.UpstreamRetryLimitExceeded);
                break;
            case RetryDecision.Overflow:
                stream.Info.SetResponseFlag(ResponseFlags.UpstreamOverflow);
                break;
        }

        ArmRouteTimeout(_upstream!);
        return ReceiveResponseAsync();
    }

    /// <summary>Hands the current attempt (connection, breaker slot, host counts) to the parked set without ending it.</summary>
    private void ParkActive()
    {
        var upstream = _upstream!;
        upstream.DisarmTimeout();
        _hedge!.ClearActive();
        var parked = new ParkedAttempt(_target ?? _cluster!, _stream.Info.UpstreamHost!, _pool!, upstream, _route!.Priority) { Log = ParkAttemptLog() };
        _done = true;
        _resetRegistration.Dispose();
        Interlocked.Exchange(ref _idleTimer, null)?.Stop();
        _upstream = null;
        _hedge.Park(parked);
    }

    /// <summary>
    /// A parked attempt won: the current attempt (if any) is reset, and the winner's response is read
    /// as the current attempt's, under what is left of the route timeout. It is never retried again.
    /// </summary>
    private ValueTask<bool> AdoptAsync(ParkedAttempt winner)
    {
        var stream = _stream;
        if (!_done)
        {
            (_target ?? _cluster)!.Info.Stats.UpstreamRqTxReset.Inc();
            Finish(reusable: false);
        }

        ResumeAttemptLog(winner.Log);
        var upstream = winner.Upstream;
        _target = winner.Target;
        _pool = winner.Pool;
        _upstream = upstream;
        stream.Info.UpstreamHost = winner.Host;
        stream.Info.UpstreamRemoteAddress = upstream.Address;
        stream.Info.UpstreamLocalAddress = upstream.LocalAddress;
        stream.Info.UpstreamTls = upstream.Tls;
        _done = false;
        _hedge!.ActiveRetried = true;
        _hedge.SetActive(upstream);
        _resetRegistration = stream.ResetToken.UnsafeRegister(static state => ((RouterFilter)state!).OnStreamResetSignal(), this);
        ArmRouteTimeout(upstream);
        if (stream.IsReset)
        {
            upstream.CancelPendingRead();
        }

        return ReceiveResponseAsync();
    }

    /// <summary>
    /// The current attempt's final response head under hedging: null to relay it (every parked
    /// attempt is reset first), else the attempt's result (true: retry).
    /// </summary>
    private async ValueTask<bool?> OnHedgedHeadAsync(HttpResponseHead head)
    {
        var hedge = _hedge!;
        if (hedge.TakeReady() is { } first)
        {
            // A parked attempt answered first.
            return await AdoptAsync(first).ConfigureAwait(false);
        }

        var retriable = _retry!.IsRetriable(head);
        if (ShouldRetryHeaders(head))
        {
            Finish(reusable: false);
            return true;
        }

        if (retriable && hedge.Count > 0)
        {
            // Retriable but not retried (no retries left, or already retried): others may still
            // answer, so this answer is dropped (Envoy's could_not_retry).
            _cluster!.Info.Stats.UpstreamRqTxReset.Inc();
            Finish(reusable: false);
            return await AwaitParkedAsync(ResponseFlags.UpstreamConnectionTermination, UpstreamResetReasons.ConnectionTermination, 503).ConfigureAwait(false);
        }

        if (!hedge.TryCommit())
        {
            return await AdoptAsync(hedge.TakeReady()!).ConfigureAwait(false);
        }

        // The response is chosen: the per-try timeout has nothing left to hedge.
        ArmRouteTimeout(_upstream!);
        return null;
    }

    /// <summary>
    /// The current attempt gave up (not retried) while parked attempts may still answer: the first
    /// to do so is adopted; when all of them fail, the request fails as the current attempt did;
    /// at the route timeout every one is reset (each counted in <c>upstream_rq_timeout</c>) and the answer is 504 UT.
    /// </summary>
    private async ValueTask<bool> AwaitParkedAsync(ResponseFlags flag, string resetReason, int status)
    {
        var hedge = _hedge!;
        var stream = _stream;
        ParkedAttempt? winner;
        try
        {
            winner = await hedge.WaitAsync(RouteTimeLeft(), _factory.Time, stream.ResetToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            hedge.DiscardAll(_cluster!.Info.Stats);
            if (!stream.IsReset && !stream.ResponseStarted)
            {
                await stream.SendLocalReplyAsync(504, "upstream request timeout", ResponseCodeDetails.UpstreamResponseTimeout, ResponseFlags.UpstreamRequestTimeout).ConfigureAwait(false);
            }

            return false;
        }
        catch (OperationCanceledException)
        {
            hedge.DiscardAll();
            return false;
        }

        if (winner is null)
        {
            await FailBeforeResponseAsync(flag, resetReason, status).ConfigureAwait(false);
            return false;
        }

        return await AdoptAsync(winner).ConfigureAwait(false);
    }
}
