using Legate.AccessLog;
using Legate.Http;
using Legate.Http.Formatter;
using Legate.Http.Http1;
using Legate.Network;
using Legate.Upstream;
using Legate.Upstream.ConnectionPool;

namespace Legate.Router;

/// <summary>
/// The router's <c>upstream_log</c> (Envoy's upstream access logs): one entry per upstream attempt
/// when it ends (<c>%ACCESS_LOG_TYPE%</c> UpstreamEnd), and with
/// <c>upstream_log_options.flush_upstream_log_on_upstream_stream</c> one more when the attempt
/// has its upstream connection (UpstreamPoolReady), and with <c>upstream_log_flush_interval</c>
/// UpstreamPeriodic entries while it runs. An entry sees the attempt as Envoy's upstream
/// stream info does: its own start time and duration, the upstream's response code (0 without a
/// response), headers and trailers, the flags of its own failure, the request as sent upstream.
/// Nothing here runs when no upstream log is configured.
/// </summary>
internal sealed partial class RouterFilter
{
    private long _attemptStart;
    private ResponseFlags _flagsBeforeAttempt;
    private ResponseFlags _attemptFlags;
    private string? _attemptDetails;
    private HttpResponseHead? _attemptResponse;
    private ITimer? _attemptLogTimer;

    // An adopted (hedged) attempt logs its own attempt number, not the request's count; 0: the request's.
    private int _attemptCountOverride;

    /// <summary>For TryRecycle: nothing of this stream's attempts reaches the next stream's log.</summary>
    private void ResetUpstreamLogState()
    {
        _attemptStart = 0;
        _flagsBeforeAttempt = ResponseFlags.None;
        _attemptFlags = ResponseFlags.None;
        _attemptDetails = null;
        _attemptResponse = null;
        _attemptCountOverride = 0;
        StopAttemptLogTimer();
    }

    private void StopAttemptLogTimer() => Interlocked.Exchange(ref _attemptLogTimer, null)?.Dispose();

    /// <summary>An attempt starts (its host is chosen).</summary>
    internal void BeginUpstreamLogAttempt()
    {
        if (_factory.UpstreamLogs.Length == 0)
        {
            return;
        }

        _attemptStart = EventClock.Timestamp;
        _flagsBeforeAttempt = _stream.Info.ResponseFlags;
        _attemptFlags = ResponseFlags.None;
        _attemptDetails = null;
        _attemptResponse = null;
        _attemptCountOverride = 0;
        if (_factory.UpstreamLogFlushInterval > TimeSpan.Zero)
        {
            // UpstreamPeriodic entries until the attempt ends (a previous attempt's timer is gone by now).
            var interval = _factory.UpstreamLogFlushInterval;
            StopAttemptLogTimer();
            _attemptLogTimer = _factory.Time.CreateTimer(static state => ((RouterFilter)state!).LogPeriodic(), this, interval, interval);
        }
    }

    /// <summary>The attempt failed with <paramref name="flag"/> (before <see cref="LogUpstreamAttempt"/>, which reads it).</summary>
    internal void NoteAttemptFailure(ResponseFlags flag, string resetReason)
    {
        if (_factory.UpstreamLogs.Length > 0)
        {
            _attemptFlags |= flag;
            _attemptDetails ??= ResponseCodeDetails.UpstreamResetBeforeResponseStarted(resetReason);
        }
    }

    /// <summary>The attempt has its upstream connection: the UpstreamPoolReady entry, when asked for.</summary>
    internal void LogUpstreamPoolReady()
    {
        if (_factory.FlushUpstreamLogOnUpstreamStream)
        {
            Log(null, null, "UpstreamPoolReady");
        }
    }

    /// <summary>The attempt ended: its UpstreamEnd entry.</summary>
    internal void LogUpstreamAttempt(HttpResponseHead? response, HttpHeaderMap? trailers)
    {
        if (_factory.UpstreamLogs.Length > 0)
        {
            StopAttemptLogTimer();
            Log(response, trailers, "UpstreamEnd");
        }
    }

    /// <summary>
    /// A hedged attempt is parked (its per-try timeout fired, a retry starts beside it): what its
    /// UpstreamEnd entry needs, kept with it; null without upstream logs. Its periodic entries stop.
    /// </summary>
    internal ParkedAttemptLog? ParkAttemptLog()
    {
        if (_factory.UpstreamLogs.Length == 0)
        {
            return null;
        }

        StopAttemptLogTimer();
        return new ParkedAttemptLog(this, _attemptStart, _flagsBeforeAttempt, _attemptFlags, _attemptDetails, _attemptCountOverride > 0 ? _attemptCountOverride : _stream.Info.AttemptCount);
    }

    /// <summary>A parked attempt won and becomes the current one again: its entry goes on from where it was.</summary>
    internal void ResumeAttemptLog(ParkedAttemptLog? log)
    {
        if (log is null)
        {
            return;
        }

        _attemptStart = log.Start;
        _flagsBeforeAttempt = log.FlagsBefore;
        _attemptFlags = log.Flags;
        _attemptDetails = log.Details;
        _attemptResponse = null;
        _attemptCountOverride = log.AttemptCount;
    }

    /// <summary>A parked attempt lost (reset, or ended by the upstream): its UpstreamEnd entry, with its own host and attempt number.</summary>
    internal void LogParkedAttempt(ParkedAttemptLog log, Host host, Http1UpstreamConnection upstream, int responseCode, ResponseFlags flags, string? details)
    {
        var stream = _stream;
        var info = stream.Info.ForUpstreamAttempt(log.Start, responseCode, log.Flags | flags, details ?? log.Details);
        info.UpstreamHost = host;
        info.UpstreamRemoteAddress = upstream.Address;
        info.UpstreamLocalAddress = upstream.LocalAddress;
        info.UpstreamTls = upstream.Tls;
        info.AttemptCount = log.AttemptCount;
        AccessLogInstance.LogAll(_factory.UpstreamLogs, new FormatterContext(info, stream.RequestHeaders, null, null) { AccessLogType = "UpstreamEnd" });
    }

    /// <summary>The attempt's UpstreamPeriodic entry (with its response head once there is one).</summary>
    private void LogPeriodic() => Log(_attemptResponse, null, "UpstreamPeriodic");

    private void Log(HttpResponseHead? response, HttpHeaderMap? trailers, string type)
    {
        var stream = _stream;
        var flags = _attemptFlags | (stream.Info.ResponseFlags & ~_flagsBeforeAttempt);
        var details = response is not null ? ResponseCodeDetails.ViaUpstream : _attemptDetails;
        var info = stream.Info.ForUpstreamAttempt(_attemptStart, response?.StatusCode ?? 0, flags, details);
        if (_attemptCountOverride > 0)
        {
            info.AttemptCount = _attemptCountOverride;
        }

        AccessLogInstance.LogAll(_factory.UpstreamLogs, new FormatterContext(info, stream.RequestHeaders, response, trailers) { AccessLogType = type });
    }
}

/// <summary>The upstream-log state of a parked (hedged) attempt: what its own UpstreamEnd entry is made of.</summary>
internal sealed record ParkedAttemptLog(RouterFilter Owner, long Start, ResponseFlags FlagsBefore, ResponseFlags Flags, string? Details, int AttemptCount);
