namespace Legate.Upstream;

/// <summary>
/// What outlier detection knows about one host (Envoy's DetectorHostMonitor): consecutive error
/// counters fed by the router on any thread (atomic increments), success-rate counters swapped out
/// at each interval, and the ejection history the detector keeps under its lock.
/// </summary>
internal sealed class HostOutlierMonitor
{
    private readonly OutlierDetector _detector;
    private int _consecutive5xx;
    private int _consecutiveGatewayFailure;
    private int _consecutiveLocalOriginFailure;
    private long _externalTotal;
    private long _externalSuccess;
    private long _localTotal;
    private long _localSuccess;

    public HostOutlierMonitor(OutlierDetector detector, Host host)
    {
        _detector = detector;
        Host = host;
    }

    public Host Host { get; }

    /// <summary>Times ejected so far (the detector's lock).</summary>
    public int NumEjections { get; set; }

    /// <summary>The ejection-time multiplier: up by one per ejection, down by one per healthy interval.</summary>
    public int EjectTimeBackoff { get; set; }

    public DateTimeOffset? LastEjectionTime { get; set; }

    /// <summary>How long the current ejection lasts (base × backoff, capped, plus jitter).</summary>
    public TimeSpan EjectionDuration { get; set; }

    /// <summary>The external-origin success rate of the last interval (percent), or -1 when it was not computed (as Envoy's admin shows).</summary>
    public double SuccessRate { get; set; } = -1;

    /// <summary>The local-origin success rate of the last interval, or -1.</summary>
    public double LocalOriginSuccessRate { get; set; } = -1;

    /// <summary>An HTTP status from the upstream.</summary>
    public void PutHttpResponseCode(int code)
    {
        Interlocked.Increment(ref _externalTotal);
        if (code is >= 500 and < 600)
        {
            var config = _detector.Config;
            if (code is 502 or 503 or 504)
            {
                if (Interlocked.Increment(ref _consecutiveGatewayFailure) == config.ConsecutiveGatewayFailure)
                {
                    _detector.OnConsecutiveError(this, OutlierDetector.EjectionType.ConsecutiveGatewayFailure);
                }
            }
            else
            {
                Volatile.Write(ref _consecutiveGatewayFailure, 0);
            }

            if (Interlocked.Increment(ref _consecutive5xx) == config.Consecutive5xx)
            {
                _detector.OnConsecutiveError(this, OutlierDetector.EjectionType.Consecutive5xx);
            }
        }
        else
        {
            Interlocked.Increment(ref _externalSuccess);
            Volatile.Write(ref _consecutive5xx, 0);
            Volatile.Write(ref _consecutiveGatewayFailure, 0);
        }
    }

    /// <summary>A local-origin event (connect, reset, timeout).</summary>
    public void PutResult(OutlierResult result)
    {
        if (!_detector.Config.SplitExternalLocalOriginErrors)
        {
            // Not split: failures count as the HTTP errors they become; a connect success is not an answer.
            switch (result)
            {
                case OutlierResult.LocalOriginConnectFailed:
                    PutHttpResponseCode(503);
                    break;
                case OutlierResult.LocalOriginTimeout:
                    PutHttpResponseCode(504);
                    break;
            }

            return;
        }

        Interlocked.Increment(ref _localTotal);
        if (result == OutlierResult.LocalOriginConnectSuccess)
        {
            Interlocked.Increment(ref _localSuccess);
            Volatile.Write(ref _consecutiveLocalOriginFailure, 0);
        }
        else if (Interlocked.Increment(ref _consecutiveLocalOriginFailure) == _detector.Config.ConsecutiveLocalOriginFailure)
        {
            _detector.OnConsecutiveError(this, OutlierDetector.EjectionType.ConsecutiveLocalOriginFailure);
        }
    }

    internal void ResetConsecutive(OutlierDetector.EjectionType type)
    {
        switch (type)
        {
            case OutlierDetector.EjectionType.Consecutive5xx:
                Volatile.Write(ref _consecutive5xx, 0);
                break;
            case OutlierDetector.EjectionType.ConsecutiveGatewayFailure:
                Volatile.Write(ref _consecutiveGatewayFailure, 0);
                break;
            case OutlierDetector.EjectionType.ConsecutiveLocalOriginFailure:
                Volatile.Write(ref _consecutiveLocalOriginFailure, 0);
                break;
        }
    }

    /// <summary>The interval's (total, success) counts for external and local origin; the counters restart.</summary>
    internal (long Total, long Success, long LocalTotal, long LocalSuccess) TakeCounts() =>
        (Interlocked.Exchange(ref _externalTotal, 0), Interlocked.Exchange(ref _externalSuccess, 0),
         Interlocked.Exchange(ref _localTotal, 0), Interlocked.Exchange(ref _localSuccess, 0));
}
