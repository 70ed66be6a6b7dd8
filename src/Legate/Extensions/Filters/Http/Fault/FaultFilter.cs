using System.Globalization;
using Legate.Extensions.Filters.Http.Common;
using Legate.Http;
using Legate.Http.Http1;

namespace Legate.Extensions.Filters.Http.Fault;

/// <summary>
/// Envoy's fault injection filter (<c>envoy.filters.http.fault</c>): on a request the fault
/// applies to (upstream cluster, downstream node, header matchers) it may first delay the request
/// (response flag DI), then abort it with a local reply "fault filter abort" (flag FI, details
/// <c>fault_filter_abort</c>). A request carrying a fault counts in the <c>active_faults</c> gauge
/// until it ends; past <c>max_active_faults</c> no fault is injected and <c>faults_overflow</c> counts.
/// A drawn <c>response_rate_limit</c> paces the response body to its KiB/s
/// (<see cref="StreamRateLimiter"/>; <c>response_rl_injected</c>); it is set up first, as Envoy's,
/// so a delayed or aborted request's reply is paced too.
/// </summary>
internal sealed class FaultFilter : HttpFilter
{
    private const string AbortBody = "fault filter abort";
    private const string AbortDetails = "fault_filter_abort";


    private readonly FaultFilterFactory _factory;
    private FaultSettings _settings = null!;
    private string? _downstreamCluster;
    private FaultRuntime _runtime;
    private bool _faultActive;
    private StreamRateLimiter? _responseLimiter;

    public FaultFilter(FaultFilterFactory factory) => _factory = factory;

    public override async ValueTask<FilterHeadersStatus> DecodeHeadersAsync(HttpStream stream, HttpRequestHead headers, bool endStream)
    {
        // Route-level HTTPFault replaces the filter-level one; FilterConfig{disabled} turns the filter off.
        var perRoute = stream.Route?.PerFilterConfig(_factory.Name);
        if (perRoute is DisabledFilterConfig)
        {
            return FilterHeadersStatus.Continue;
        }

        _settings = perRoute as FaultSettings ?? _factory.Settings;
        if (!_settings.AppliesTo(stream))
        {
            return FilterHeadersStatus.Continue;
        }

        var map = headers.Headers;
        var cluster = map.IndexOf(FaultHeaders.DownstreamServiceCluster.AsSpan());
        string? clusterName = null;
        if (cluster >= 0)
        {
            // The runtime keys of the cluster apply whenever the header is there (even empty, as
            // Envoy's); the per-cluster stats only for a non-empty name.
            clusterName = map.GetValue(cluster);
            if (!_settings.DisableDownstreamClusterStats && clusterName.Length > 0)
            {
                _downstreamCluster = clusterName;
            }
        }

        _runtime = new FaultRuntime(_factory.Runtime?.Snapshot, clusterName);
        if (_settings.HasResponseRateLimit && _settings.ResponseRateLimitFor(map, NextRandom(), _runtime) is { } kbps && TryIncActiveFaults())
        {
            _factory.Stats.ResponseRlInjected.Inc();
            _responseLimiter = new StreamRateLimiter(stream, this, kbps, stream.Config.BufferLimitBytes, _factory.Time);
        }

        if (_settings.DelayFor(map, NextRandom(), _runtime) is { } delay && TryIncActiveFaults())
        {
            RecordDelay();
            stream.Info.SetResponseFlag(ResponseFlags.DelayInjected);
            EmitFilterMetadata(stream);
            try
            {
                await Task.Delay(delay, _factory.Time, stream.ResetToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The stream was reset while delayed: nothing more to do.
                return FilterHeadersStatus.StopIteration;
            }

            // A delay may be followed by an abort (drawn after the delay, as Envoy does).
            var (http, grpc) = _settings.AbortFor(map, NextRandom(), _runtime);
            if (http is { } status)
            {
                await AbortAsync(stream, status, grpc).ConfigureAwait(false);
                return FilterHeadersStatus.StopIteration;
            }

            // The delay is over and nothing else is injected: no longer an active fault, unless a
            // response rate limit is configured (Envoy keeps the fault then, drawn or not).
            if (!_settings.HasResponseRateLimit)
            {
                ReleaseActiveFault();
            }

            return FilterHeadersStatus.Continue;
        }

        var abort = _settings.AbortFor(map, NextRandom(), _runtime);
        if (abort.Http is { } abortStatus && TryIncActiveFaults())
        {
            await AbortAsync(stream, abortStatus, abort.Grpc).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        return FilterHeadersStatus.Continue;
    }

    public override ValueTask<FilterDataStatus> EncodeDataAsync(HttpStream stream, BodyBuffer data, bool endStream)
    {
        if (_responseLimiter is not { } limiter)
        {
            return ValueTask.FromResult(FilterDataStatus.Continue);
        }

        limiter.Write(data.Data, endStream);
        return ValueTask.FromResult(FilterDataStatus.StopIterationNoBuffer);
    }

    public override ValueTask<FilterTrailersStatus> EncodeTrailersAsync(HttpStream stream, HttpHeaderMap trailers) =>
        ValueTask.FromResult(_responseLimiter?.OnTrailers(trailers) == true ? FilterTrailersStatus.StopIteration : FilterTrailersStatus.Continue);

    public override void OnDestroy()
    {
        _responseLimiter = null;
        ReleaseActiveFault();
    }

    private static ulong NextRandom() => (ulong)Random.Shared.NextInt64();

    /// <summary><c>filter_metadata</c>: a delay or abort was injected, the request's dynamic metadata says so under the filter's name.</summary>
    private void EmitFilterMetadata(HttpStream stream)
    {
        if (_settings.FilterMetadata is { } metadata)
        {
            stream.Info.MergeDynamicMetadata(_factory.Name, metadata);
        }
    }

    private async ValueTask AbortAsync(HttpStream stream, int status, int? grpcStatus)
    {
        EmitFilterMetadata(stream);
        _factory.Stats.AbortsInjected.Inc();
        if (_downstreamCluster is not null)
        {
            _factory.Stats.IncDownstreamAborts(_downstreamCluster);
        }

        if (grpcStatus is { } grpc)
        {
            await stream.SendLocalReplyAsync(status, AbortBody, AbortDetails, ResponseFlags.FaultInjected, grpc).ConfigureAwait(false);
            return;
        }

        await stream.SendLocalReplyAsync(status, AbortBody, AbortDetails, ResponseFlags.FaultInjected).ConfigureAwait(false);
    }

    private void RecordDelay()
    {
        _factory.Stats.DelaysInjected.Inc();
        if (_downstreamCluster is not null)
        {
            _factory.Stats.IncDownstreamDelays(_downstreamCluster);
        }
    }

    /// <summary>Charges this request one active fault (at most one per request); false on overflow.</summary>
    private bool TryIncActiveFaults()
    {
        if (_faultActive)
        {
            return true;
        }

        var stats = _factory.Stats;

        // A fuzzy limit (no compare-and-swap), like Envoy's and like circuit breakers; the runtime
        // key overrides the configured limit.
        var max = _settings.MaxActiveFaults is { } configured ? configured : ulong.MaxValue;
        if (_runtime.Snapshot is { } snapshot)
        {
            max = snapshot.GetInteger(_settings.MaxActiveFaultsRuntime, max);
        }

        if ((ulong)Math.Max(stats.ActiveFaults.Value, 0) >= max)
        {
            stats.FaultsOverflow.Inc();
            return false;
        }

        stats.ActiveFaults.Inc();
        _faultActive = true;
        return true;
    }

    private void ReleaseActiveFault()
    {
        if (_faultActive)
        {
            _faultActive = false;
            _factory.Stats.ActiveFaults.Dec();
        }
    }
}
