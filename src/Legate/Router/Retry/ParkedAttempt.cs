using Envoy.Config.Core.V3;
using Legate.Http;
using Legate.Upstream;
using Legate.Upstream.ConnectionPool;

namespace Legate.Router.Retry;

/// <summary>
/// An HTTP/1.1 attempt that hit its per-try timeout under <c>hedge_on_per_try_timeout</c>: it is
/// not cancelled but left running next to the attempts after it, holding its connection, its
/// circuit-breaker slot and its host's active-request count until it wins (the router adopts it)
/// or loses (<see cref="Discard"/>). Owned by <see cref="HedgedAttempts"/>.
/// </summary>
internal sealed class ParkedAttempt
{
    public ParkedAttempt(Cluster target, Host host, Http1ConnectionPool pool, Http1UpstreamConnection upstream, RoutingPriority priority)
    {
        Target = target;
        Host = host;
        Pool = pool;
        Upstream = upstream;
        Priority = priority;
    }

    /// <summary>The cluster the attempt went to (for an aggregate cluster, the listed cluster the host came from).</summary>
    public Cluster Target { get; }

    public Host Host { get; }

    public Http1ConnectionPool Pool { get; }

    public Http1UpstreamConnection Upstream { get; }

    public RoutingPriority Priority { get; }

    /// <summary>With upstream logs: the attempt's entry state (its UpstreamEnd is written when it loses).</summary>
    public ParkedAttemptLog? Log { get; init; }

    /// <summary>Set (under the owner's lock) once the attempt lost: its watcher stops and nothing else touches it.</summary>
    public bool Discarded { get; private set; }

    /// <summary>Marks the attempt lost (under the owner's lock); <see cref="Release"/> follows outside it.</summary>
    public void MarkDiscarded() => Discarded = true;

    /// <summary>
    /// Resets the attempt (Envoy resets the losing upstream requests): closes its connection, gives
    /// back its circuit-breaker slot and active-request counts as the router's Finish does. A
    /// reset (<paramref name="reset"/>: the attempt lost) counts <c>upstream_rq_tx_reset</c>, an
    /// attempt the upstream ended counts <c>upstream_rq_rx_reset</c>. Called once, after
    /// <see cref="MarkDiscarded"/>, outside the owner's lock (closing a connection may hand its slot
    /// to another request's continuation).
    /// </summary>
    public void Release(bool reset, int responseCode = 0)
    {
        Upstream.DisarmTimeout();
        Upstream.CancelPendingRead();
        Target.Info.CircuitBreakers.For(Priority).Requests.Release();
        Target.Info.Stats.UpstreamRqActive.Dec();
        (reset ? Target.Info.Stats.UpstreamRqTxReset : Target.Info.Stats.UpstreamRqRxReset).Inc();
        Host.RequestFinished();
        if (Log is { } log)
        {
            // Before the connection goes: the entry reads its addresses. A reset loser has no flag of
            // its own; one the upstream ended was a connection termination.
            log.Owner.LogParkedAttempt(log, Host, Upstream, responseCode,
                reset ? ResponseFlags.None : ResponseFlags.UpstreamConnectionTermination,
                reset ? null : Legate.Http.ResponseCodeDetails.UpstreamResetBeforeResponseStarted(UpstreamResetReasons.ConnectionTermination));
        }

        Pool.Release(Upstream, reusable: false);
    }
}
