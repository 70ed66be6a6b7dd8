using System.Collections.Frozen;
using Envoy.Extensions.Filters.Common.Fault.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Legate.Config;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Router.Matching;
using Legate.Runtime;

namespace Legate.Extensions.Filters.Http.Fault;

/// <summary>
/// A compiled <c>envoy.extensions.filters.http.fault.v3.HTTPFault</c> (Envoy's FaultSettings): the
/// filter-level config, or a route's <c>typed_per_filter_config</c>, which replaces it whole on
/// that route. Immutable; shared by every stream.
/// </summary>
internal sealed class FaultSettings
{
    private FaultSettings()
    {
    }

    /// <summary>Fixed delay; null for header_delay (x-envoy-fault-delay-request) or no delay.</summary>
    public TimeSpan? FixedDelay { get; private init; }

    public bool HasDelay { get; private init; }

    public bool HeaderDelay { get; private init; }

    public FaultPercentage DelayPercentage { get; private init; }

    public bool HasAbort { get; private init; }

    /// <summary>abort.http_status, or null.</summary>
    public int? AbortHttpStatus { get; private init; }

    /// <summary>abort.grpc_status, or null.</summary>
    public int? AbortGrpcStatus { get; private init; }

    /// <summary>abort.header_abort: the status comes from x-envoy-fault-abort-request / -grpc-request.</summary>
    public bool HeaderAbort { get; private init; }

    public FaultPercentage AbortPercentage { get; private init; }

    /// <summary>Only requests routed to this cluster get faults; empty = any.</summary>
    public string UpstreamCluster { get; private init; } = string.Empty;

    /// <summary>Only requests from these x-envoy-downstream-service-node values; empty = any.</summary>
    public FrozenSet<string> DownstreamNodes { get; private init; } = FrozenSet<string>.Empty;

    /// <summary>Every matcher must match.</summary>
    public CompiledHeaderMatcher[] Headers { get; private init; } = [];

    /// <summary>null = no limit.</summary>
    public uint? MaxActiveFaults { get; private init; }

    /// <summary>response_rate_limit is configured (Envoy keeps such a request an active fault until it ends).</summary>
    public bool HasResponseRateLimit { get; private init; }

    /// <summary>response_rate_limit.fixed_limit.limit_kbps; null for header_limit (x-envoy-throttle-response-bandwidth).</summary>
    public ulong? ResponseRateLimitKbps { get; private init; }

    public FaultPercentage ResponseRateLimitPercentage { get; private init; }

    public bool DisableDownstreamClusterStats { get; private init; }

    /// <summary>
    /// <c>filter_metadata</c>: merged into the request's dynamic metadata under the filter's name when
    /// a delay or an abort is injected (null: none configured).
    /// </summary>
    public Google.Protobuf.WellKnownTypes.Struct? FilterMetadata { get; private init; }

    // The runtime keys that override the config per request (the *_runtime fields, else Envoy's
    // fault.http.* defaults). A request with x-envoy-downstream-service-cluster uses the keys of
    // that cluster (fault.http.<cluster>.*) instead, as Envoy's filter.
    public required string DelayPercentRuntime { get; init; }

    public required string DelayDurationRuntime { get; init; }

    public required string AbortPercentRuntime { get; init; }

    public required string AbortHttpStatusRuntime { get; init; }

    public required string AbortGrpcStatusRuntime { get; init; }

    public required string MaxActiveFaultsRuntime { get; init; }

    public required string ResponseRateLimitPercentRuntime { get; init; }

    /// <summary>Compiles <paramref name="config"/>; null when it has errors (added to <paramref name="errors"/>).</summary>
    public static FaultSettings? Compile(HTTPFault config, string path, ConfigErrors errors)
    {
        var errorCount = errors.Errors.Count;
        TimeSpan? fixedDelay = null;
        var headerDelay = false;
        if (config.Delay is { } delay)
        {
            var delayPath = FieldPath.Field(path, "delay");
            switch (delay.FaultDelaySecifierCase)
            {
                case FaultDelay.FaultDelaySecifierOneofCase.FixedDelay:
                    fixedDelay = delay.FixedDelay.ToTimeSpan();
                    if (fixedDelay <= TimeSpan.Zero)
                    {
                        errors.Add(FieldPath.Field(delayPath, "fixed_delay"), "must be greater than 0s");
                    }

                    break;
                case FaultDelay.FaultDelaySecifierOneofCase.HeaderDelay:
                    headerDelay = true;
                    break;
                default:
                    errors.Add(delayPath, "one of fixed_delay or header_delay is required");
                    break;
            }

            WarnIfNeverInjected(delay.Percentage, delayPath, "delay", errors);
        }

        int? httpStatus = null;
        int? grpcStatus = null;
        var headerAbort = false;
        if (config.Abort is { } abort)
        {
            var abortPath = FieldPath.Field(path, "abort");
            switch (abort.ErrorTypeCase)
            {
                case FaultAbort.ErrorTypeOneofCase.HttpStatus:
                    if (abort.HttpStatus is < 200 or >= 600)
                    {
                        errors.Add(FieldPath.Field(abortPath, "http_status"), $"must be in [200, 600), got {abort.HttpStatus}");
                    }

                    httpStatus = (int)abort.HttpStatus;
                    break;
                case FaultAbort.ErrorTypeOneofCase.GrpcStatus:
                    grpcStatus = (int)Math.Min(abort.GrpcStatus, int.MaxValue);
                    break;
                case FaultAbort.ErrorTypeOneofCase.HeaderAbort:
                    headerAbort = true;
                    break;
                default:
                    errors.Add(abortPath, "one of http_status, grpc_status or header_abort is required");
                    break;
            }

            WarnIfNeverInjected(abort.Percentage, abortPath, "abort", errors);
        }

        ulong? rateLimitKbps = null;
        if (config.ResponseRateLimit is { } rateLimit)
        {
            var rateLimitPath = FieldPath.Field(path, "response_rate_limit");
            switch (rateLimit.LimitTypeCase)
            {
                case FaultRateLimit.LimitTypeOneofCase.FixedLimit:
                    rateLimitKbps = rateLimit.FixedLimit.LimitKbps;
                    break;
                case FaultRateLimit.LimitTypeOneofCase.HeaderLimit:
                    break;
                default:
                    errors.Add(rateLimitPath, "one of fixed_limit or header_limit is required");
                    break;
            }

            WarnIfNeverInjected(rateLimit.Percentage, rateLimitPath, "response rate limit", errors);
        }

        var matchers = new List<CompiledHeaderMatcher>();
        var headersPath = FieldPath.Field(path, "headers");
        for (var i = 0; i < config.Headers.Count; i++)
        {
            if (CompiledHeaderMatcher.Create(config.Headers[i], errors, FieldPath.Index(headersPath, i)) is { } matcher)
            {
                matchers.Add(matcher);
            }
        }

        if (errors.Errors.Count > errorCount)
        {
            return null;
        }

        return new FaultSettings
        {
            HasDelay = config.Delay is not null,
            FixedDelay = fixedDelay,
            HeaderDelay = headerDelay,
            DelayPercentage = FaultPercentage.From(config.Delay?.Percentage),
            HasAbort = config.Abort is not null,
            AbortHttpStatus = httpStatus,
            AbortGrpcStatus = grpcStatus,
            HeaderAbort = headerAbort,
            AbortPercentage = FaultPercentage.From(config.Abort?.Percentage),
            UpstreamCluster = config.UpstreamCluster,
            DownstreamNodes = config.DownstreamNodes.ToFrozenSet(StringComparer.Ordinal),
            Headers = matchers.ToArray(),
            MaxActiveFaults = config.MaxActiveFaults,
            HasResponseRateLimit = config.ResponseRateLimit is not null,
            ResponseRateLimitKbps = rateLimitKbps,
            ResponseRateLimitPercentage = FaultPercentage.From(config.ResponseRateLimit?.Percentage),
            DisableDownstreamClusterStats = config.DisableDownstreamClusterStats,
            FilterMetadata = config.FilterMetadata is { Fields.Count: > 0 } metadata ? metadata : null,
            DelayPercentRuntime = OrDefault(config.DelayPercentRuntime, "fault.http.delay.fixed_delay_percent"),
            DelayDurationRuntime = OrDefault(config.DelayDurationRuntime, "fault.http.delay.fixed_duration_ms"),
            AbortPercentRuntime = OrDefault(config.AbortPercentRuntime, "fault.http.abort.abort_percent"),
            AbortHttpStatusRuntime = OrDefault(config.AbortHttpStatusRuntime, "fault.http.abort.http_status"),
            AbortGrpcStatusRuntime = OrDefault(config.AbortGrpcStatusRuntime, "fault.http.abort.grpc_status"),
            MaxActiveFaultsRuntime = OrDefault(config.MaxActiveFaultsRuntime, "fault.http.max_active_faults"),
            ResponseRateLimitPercentRuntime = OrDefault(config.ResponseRateLimitPercentRuntime, "fault.http.rate_limit.response_percent"),
        };

        static string OrDefault(string key, string defaultKey) => key.Length > 0 ? key : defaultKey;
    }

    /// <summary>Whether the request is one this fault applies to (upstream cluster, downstream node, headers).</summary>
    public bool AppliesTo(HttpStream stream)
    {
        if (UpstreamCluster.Length > 0 && !string.Equals(stream.Route?.ClusterName, UpstreamCluster, StringComparison.Ordinal))
        {
            return false;
        }

        var head = stream.RequestHeaders;
        if (DownstreamNodes.Count > 0)
        {
            var i = head.Headers.IndexOf(FaultHeaders.DownstreamServiceNode.AsSpan());
            if (i < 0 || !DownstreamNodes.Contains(head.Headers.GetValue(i)))
            {
                return false;
            }
        }

        if (Headers.Length > 0)
        {
            var input = new RouteMatchInput(head.Method, head.Path, System.Text.Encoding.Latin1.GetString(head.Authority), head.Headers.Lookup);
            foreach (var matcher in Headers)
            {
                if (!matcher.Matches(input))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>
    /// The delay for this request, or null (not drawn, header missing or invalid, or 0ms). The
    /// runtime's percentage and duration keys override the config's (see <see cref="FaultRuntime"/>).
    /// </summary>
    public TimeSpan? DelayFor(HttpHeaderMap headers, ulong randomValue, FaultRuntime runtime = default)
    {
        if (!HasDelay)
        {
            return null;
        }

        var percentage = HeaderDelay ? DelayPercentage.WithHeader(headers, FaultHeaders.DelayRequestPercentage) : DelayPercentage;
        if (!runtime.IsEnabled(DelayPercentRuntime, "delay.fixed_delay_percent", percentage, randomValue))
        {
            return null;
        }

        ulong ms;
        if (HeaderDelay)
        {
            var i = headers.IndexOf(FaultHeaders.DelayRequest.AsSpan());
            if (i < 0 || !FaultHeaders.TryParseUnsigned(headers.GetValueBytes(i), out ms))
            {
                return null;
            }
        }
        else
        {
            ms = (ulong)FixedDelay!.Value.TotalMilliseconds;
        }

        if (runtime.Snapshot is { } snapshot)
        {
            ms = snapshot.GetInteger(DelayDurationRuntime, ms);
            if (runtime.DownstreamCluster is not null)
            {
                ms = snapshot.GetInteger(runtime.Key(DelayDurationRuntime, "delay.fixed_duration_ms"), ms);
            }
        }

        // Envoy delays only for a duration of at least 1ms.
        return ms >= 1 ? TimeSpan.FromMilliseconds(Math.Min(ms, (ulong)int.MaxValue)) : null;
    }

    /// <summary>
    /// The abort for this request: (HTTP status, gRPC status) or (null, null). A gRPC abort answers
    /// HTTP 200 with the gRPC status, as in Envoy. The runtime's percentage and status keys override
    /// the config's (see <see cref="FaultRuntime"/>).
    /// </summary>
    public (int? Http, int? Grpc) AbortFor(HttpHeaderMap headers, ulong randomValue, FaultRuntime runtime = default)
    {
        if (!HasAbort)
        {
            return (null, null);
        }

        var percentage = HeaderAbort ? AbortPercentage.WithHeader(headers, FaultHeaders.AbortRequestPercentage) : AbortPercentage;
        if (!runtime.IsEnabled(AbortPercentRuntime, "abort.abort_percent", percentage, randomValue))
        {
            return (null, null);
        }

        int? http = AbortHttpStatus;
        int? grpc = AbortGrpcStatus;
        if (HeaderAbort)
        {
            http = grpc = null;
            var i = headers.IndexOf(FaultHeaders.AbortRequest.AsSpan());
            if (i >= 0 && FaultHeaders.TryParseUnsigned(headers.GetValueBytes(i), out var headerHttp) && headerHttp is >= 200 and < 600)
            {
                http = (int)headerHttp;
            }
            else
            {
                var g = headers.IndexOf(FaultHeaders.AbortGrpcRequest.AsSpan());
                if (g >= 0 && FaultHeaders.TryParseUnsigned(headers.GetValueBytes(g), out var headerGrpc))
                {
                    grpc = (int)Math.Min(headerGrpc, int.MaxValue);
                }
            }
        }

        if (http is { } status)
        {
            return (runtime.Status(AbortHttpStatusRuntime, "abort.http_status", status, static value => value is >= 200 and < 600), null);
        }

        if (grpc is { } grpcStatus)
        {
            return (200, runtime.Status(AbortGrpcStatusRuntime, "abort.grpc_status", grpcStatus, static value => value <= int.MaxValue));
        }

        return (null, null);
    }

    /// <summary>
    /// The response rate limit for this request in KiB/s, or null (not configured, not drawn, or
    /// header_limit without a positive x-envoy-throttle-response-bandwidth). As Envoy's, the
    /// runtime's percentage key has no per-downstream-cluster variant.
    /// </summary>
    public ulong? ResponseRateLimitFor(HttpHeaderMap headers, ulong randomValue, FaultRuntime runtime = default)
    {
        if (!HasResponseRateLimit)
        {
            return null;
        }

        var header = ResponseRateLimitKbps is null;
        var percentage = header ? ResponseRateLimitPercentage.WithHeader(headers, FaultHeaders.ThrottleResponseBandwidthPercentage) : ResponseRateLimitPercentage;
        if (!(runtime with { DownstreamCluster = null }).IsEnabled(ResponseRateLimitPercentRuntime, "rate_limit.response_percent", percentage, randomValue))
        {
            return null;
        }

        if (!header)
        {
            return ResponseRateLimitKbps;
        }

        var i = headers.IndexOf(FaultHeaders.ThrottleResponseBandwidth.AsSpan());
        return i >= 0 && FaultHeaders.TryParseUnsigned(headers.GetValueBytes(i), out var kbps) && kbps > 0 ? kbps : null;
    }

    private static void WarnIfNeverInjected(Envoy.Type.V3.FractionalPercent? percent, string path, string what, ConfigErrors errors)
    {
        if (percent is null || percent.Numerator == 0)
        {
            // Envoy reads an absent percentage as 0%: a common surprise, so say it.
            errors.Warn(FieldPath.Field(path, "percentage"), $"the {what} percentage is 0 (absent or numerator 0): this {what} is never injected");
        }
    }
}

/// <summary>
/// What the runtime says about one request's faults (Envoy's fault filter reads it on every
/// request): a percentage key, when set, replaces the configured percentage; a duration or status
/// key replaces the configured value. When the request names its downstream cluster
/// (x-envoy-downstream-service-cluster), the percentages are read from that cluster's keys only
/// (<c>fault.http.&lt;cluster&gt;.delay.fixed_delay_percent</c>, <c>….abort.abort_percent</c>), the
/// duration from its key over the global one, and the statuses from its keys over the configured
/// status — Envoy's order, including that a global status key is ignored then. Default: no
/// runtime, the config alone.
/// </summary>
internal readonly record struct FaultRuntime(RuntimeSnapshot? Snapshot, string? DownstreamCluster)
{
    /// <summary>The cluster's key when the request names one, else <paramref name="globalKey"/>.</summary>
    public string Key(string globalKey, string suffix) =>
        DownstreamCluster is null ? globalKey : "fault.http." + DownstreamCluster + "." + suffix;

    public bool IsEnabled(string globalKey, string suffix, FaultPercentage percentage, ulong randomValue) =>
        Snapshot is { } snapshot
            ? snapshot.FeatureEnabled(Key(globalKey, suffix), percentage.Numerator, percentage.Denominator, randomValue)
            : percentage.IsEnabled(randomValue);

    /// <summary>
    /// The status from the runtime. A value <paramref name="valid"/> rejects (an HTTP status outside
    /// [200, 600)) keeps the configured one: Envoy would send it as is.
    /// </summary>
    public int Status(string globalKey, string suffix, int configured, Func<ulong, bool> valid)
    {
        if (Snapshot is not { } snapshot)
        {
            return configured;
        }

        var value = snapshot.GetInteger(Key(globalKey, suffix), (ulong)configured);
        return valid(value) ? (int)value : configured;
    }
}
