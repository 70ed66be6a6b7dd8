using Legate.Http;
using Legate.Http.Http1;
using Legate.Upstream;
using Legate.Upstream.ConnectionPool;

namespace Legate.Router.Retry;

/// <summary>
/// Request hedging (<c>hedge_policy.hedge_on_per_try_timeout</c>, or the trusted request header
/// <c>x-envoy-hedge-on-per-try-timeout</c>) for one request, as Envoy's router: an attempt that
/// hits its per-try timeout is parked here instead of being cancelled, and a retry starts next to
/// it. The first good response head of any of them wins; the others are reset.
/// </summary>
/// <remarks>
/// <para>
/// The router keeps driving one attempt at a time (the "active" one, on its own async path); the
/// parked ones are watched here, each by a small loop that reads its connection until a whole
/// response head is there and leaves the bytes unconsumed, so that the router can adopt the
/// connection and read the response as it reads any other. A parked attempt whose head is
/// retriable (a 5xx under <c>retry_on: 5xx</c>, …) is dropped while another attempt may still
/// answer, as Envoy discards a "bad" response of an already-retried request; the last one left is
/// kept, so the client gets its answer.
/// </para>
/// <para>
/// When a parked attempt wins, the active attempt's pending read is cancelled to hand over. The
/// active connection is registered here (<see cref="SetActive"/> / <see cref="ClearActive"/>), the
/// winner is decided under the lock, and the router commits its own head under the same lock
/// (<see cref="TryCommit"/>), which fails once a winner is set: so the connection the late cancel
/// reaches is one the router will close, never one back in its pool. Connections are closed and
/// the woken read is cancelled outside the lock, as their continuations may run inline.
/// </para>
/// </remarks>
internal sealed class HedgedAttempts
{
    private readonly Lock _lock = new();
    private readonly List<ParkedAttempt> _parked = new(2);
    private readonly RetryState _retry;
    private readonly HttpMethodKind _method;
    private ParkedAttempt? _ready;
    private Http1UpstreamConnection? _active;
    private TaskCompletionSource? _changed;

    // False while the router waits for the parked attempts only (its own attempt gave up): the
    // last parked attempt is then kept whatever its answer.
    private bool _activeOutstanding = true;

    public HedgedAttempts(RetryState retry, HttpMethodKind method)
    {
        _retry = retry;
        _method = method;
    }

    /// <summary>True while the router's current attempt is an adopted (already retried) one: it is never retried again.</summary>
    public bool ActiveRetried { get; set; }

    /// <summary>Attempts parked and not yet discarded or adopted.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _parked.Count;
            }
        }
    }

    /// <summary>Parks an attempt whose per-try timeout fired (its timer already disarmed) and starts watching it.</summary>
    public void Park(ParkedAttempt attempt)
    {
        lock (_lock)
        {
            _parked.Add(attempt);
        }

        _ = WatchAsync(attempt);
    }

    /// <summary>A new attempt (not an adopted one) has its connection.</summary>
    public void OnAttemptStarted(Http1UpstreamConnection upstream)
    {
        ActiveRetried = false;
        SetActive(upstream);
    }

    /// <summary>The router's current attempt has its connection: a parked attempt that wins from now on cancels its read.</summary>
    public void SetActive(Http1UpstreamConnection upstream)
    {
        lock (_lock)
        {
            _active = upstream;
            _activeOutstanding = true;
            if (_ready is not null)
            {
                upstream.CancelPendingRead();
            }
        }
    }

    /// <summary>The router's current attempt ended (before its connection goes back to the pool).</summary>
    public void ClearActive()
    {
        lock (_lock)
        {
            _active = null;
        }
    }

    /// <summary>A parked attempt won: it leaves the set (the router adopts it). Null when none has.</summary>
    public ParkedAttempt? TakeReady()
    {
        lock (_lock)
        {
            if (_ready is not { } ready)
            {
                return null;
            }

            _ready = null;
            _parked.Remove(ready);
            return ready;
        }
    }

    /// <summary>
    /// The router's current attempt has a response head it is about to relay: unless a parked
    /// attempt won first (false: adopt that one instead), every parked attempt is reset and no
    /// other attempt can interrupt the response any more.
    /// </summary>
    public bool TryCommit()
    {
        ParkedAttempt[] lost;
        lock (_lock)
        {
            if (_ready is not null)
            {
                return false;
            }

            _active = null;
            lost = TakeAllLocked();
        }

        Release(lost, null);
        return true;
    }

    /// <summary>Resets every parked attempt; with <paramref name="timedOut"/>, each counts as an <c>upstream_rq_timeout</c> (Envoy's route timeout resets every attempt in flight).</summary>
    public void DiscardAll(ClusterStats? timedOut = null)
    {
        ParkedAttempt[] lost;
        lock (_lock)
        {
            _active = null;
            lost = TakeAllLocked();
        }

        Release(lost, timedOut);
    }

    /// <summary>
    /// Waits the retry back-off, returning early when a parked attempt wins or ends (the router then
    /// adopts the winner instead of sending the retry).
    /// </summary>
    public async Task DelayAsync(TimeSpan wait, TimeProvider time, CancellationToken cancellationToken)
    {
        Task changed;
        lock (_lock)
        {
            if (_ready is not null)
            {
                return;
            }

            changed = (_changed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }

        await Task.WhenAny(Task.Delay(wait, time, cancellationToken), changed).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// The router's own attempt gave up while others are parked (Envoy waits for the requests still
    /// awaiting headers): the first parked attempt to answer, or null when all of them failed.
    /// Throws <see cref="TimeoutException"/> when <paramref name="timeout"/> (what is left of the
    /// route timeout; zero: none) passes first.
    /// </summary>
    public async Task<ParkedAttempt?> WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                _activeOutstanding = false;
                if (_ready is { } ready)
                {
                    _ready = null;
                    _parked.Remove(ready);
                    return ready;
                }

                if (_parked.Count == 0)
                {
                    return null;
                }

                changed = (_changed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }

            await (timeout > TimeSpan.Zero ? changed.WaitAsync(timeout, time, cancellationToken) : changed.WaitAsync(cancellationToken)).ConfigureAwait(false);
        }
    }

    private ParkedAttempt[] TakeAllLocked()
    {
        _ready = null;
        if (_parked.Count == 0)
        {
            return [];
        }

        var all = _parked.ToArray();
        foreach (var attempt in all)
        {
            attempt.MarkDiscarded();
        }

        _parked.Clear();
        SignalLocked();
        return all;
    }

    private static void Release(ParkedAttempt[] lost, ClusterStats? timedOut)
    {
        foreach (var attempt in lost)
        {
            timedOut?.UpstreamRqTimeout.Inc();
            attempt.Release(reset: true);
        }
    }

    private void SignalLocked()
    {
        var changed = _changed;
        _changed = null;
        changed?.TrySetResult();
    }

    /// <summary>Reads a parked attempt's connection until a whole response head (or the end) is there, consuming nothing.</summary>
    private async Task WatchAsync(ParkedAttempt attempt)
    {
        var upstream = attempt.Upstream;
        var input = upstream.Input;
        var parser = upstream.Parser;
        var head = upstream.ResponseHead;
        parser.Reset();
        try
        {
            while (true)
            {
                var result = await input.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                if (attempt.Discarded)
                {
                    return;
                }

                if (result.IsCanceled)
                {
                    input.AdvanceTo(buffer.Start);
                    continue;
                }

                var status = parser.ParseHead(buffer, head, _method, requestWasUpgrade: false, out _, out _);
                if (status == Http1ParseStatus.Complete)
                {
                    // Leave the head for the router's own read of the response (it parses it again).
                    input.AdvanceTo(buffer.Start);
                    OnHead(attempt, head);
                    return;
                }

                if (status == Http1ParseStatus.Error || result.IsCompleted)
                {
                    input.AdvanceTo(buffer.Start);
                    OnFailed(attempt);
                    return;
                }

                input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (Exception)
        {
            // The connection broke (or was closed by Discard): the attempt failed.
            OnFailed(attempt);
        }
    }

    private void OnHead(ParkedAttempt attempt, HttpResponseHead head)
    {
        Http1UpstreamConnection? wake = null;
        var won = false;
        lock (_lock)
        {
            if (attempt.Discarded)
            {
                return;
            }

            var retriable = !head.IsInformational && _retry.IsRetriable(head);
            var othersOutstanding = _activeOutstanding || _parked.Count > 1;
            if (_ready is not null || (retriable && othersOutstanding))
            {
                // Another attempt won, or this answer would have been retried and others may still
                // answer: this one is dropped (its status still counts for outlier detection).
                if (retriable)
                {
                    attempt.Host.ReportHttpCode(head.StatusCode);
                    attempt.Host.CheckImmediateHealthCheckFail(head.Headers);
                }

                _parked.Remove(attempt);
                attempt.MarkDiscarded();
                SignalLocked();
            }
            else
            {
                _ready = attempt;
                wake = _active;
                won = true;
                SignalLocked();
            }
        }

        if (won)
        {
            // Outside the lock (the woken read may continue inline): with a winner set, the router can
            // no longer commit that attempt, so its connection is only ever closed, never pooled, after this.
            wake?.CancelPendingRead();
            return;
        }

        attempt.Release(reset: true, head.StatusCode);
    }

    private void OnFailed(ParkedAttempt attempt)
    {
        lock (_lock)
        {
            if (attempt.Discarded)
            {
                return;
            }

            _parked.Remove(attempt);
            attempt.MarkDiscarded();
            SignalLocked();
        }

        attempt.Host.ReportResult(OutlierResult.LocalOriginConnectFailed);
        attempt.Release(reset: false);
    }
}
