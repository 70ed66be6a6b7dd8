using Legate.Http.Http1;

namespace Legate.Tracing;

/// <summary>
/// The HCM's <c>tracing</c> sampling decision (Envoy's <c>mutateTracingRequestHeader</c>), packed
/// into the x-request-id as Envoy's UUID request id extension does: the character at index 14 (the
/// UUID version, <c>4</c>) becomes <c>9</c> sampled, <c>a</c> forced, <c>b</c> client-forced.
/// Order: an id already marked keeps its reason; else <c>x-client-trace-id</c> (client_sampling),
/// else <c>x-envoy-force-trace</c>, else random_sampling on the id's value; overall_sampling may
/// then veto. Percentages are per 10 000, matched against the id's first 8 hex digits mod 10 000;
/// the runtime keys <c>tracing.client_enabled</c>, <c>tracing.random_sampling</c> and
/// <c>tracing.global_enabled</c> override them as in Envoy.
/// </summary>
internal sealed class TracingDecision
{
    public const int TraceBytePosition = 14;

    private const uint PerTenThousandDenominator = 10_000;

    private readonly uint _client;
    private readonly uint _random;
    private readonly uint _overall;
    private readonly Runtime.RuntimeLoader? _runtime;

    private readonly bool _packTraceReason;
    private readonly bool _useRequestIdForSampling;

    /// <param name="requestId">The HCM's <c>request_id_extension</c> (UuidRequestIdConfig): <c>pack_trace_reason</c> and <c>use_request_id_for_trace_sampling</c>, both true by default.</param>
    public TracingDecision(Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Types.Tracing config, Runtime.RuntimeLoader? runtime,
        Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig? requestId = null)
    {
        _packTraceReason = requestId?.PackTraceReason ?? true;
        _useRequestIdForSampling = requestId?.UseRequestIdForTraceSampling ?? true;
        // Envoy's defaults are 100% for all three.
        _client = PerTenThousand(config.ClientSampling);
        _random = PerTenThousand(config.RandomSampling);
        _overall = PerTenThousand(config.OverallSampling);
        _runtime = runtime;
    }

    /// <summary>
    /// Decides and packs the reason into the request's x-request-id; returns it. A route's
    /// <c>tracing</c> (<paramref name="route"/>) replaces the three percentages, as in Envoy.
    /// </summary>
    public TraceReason Apply(HttpHeaderMap headers, RouteTracing? route = null)
    {
        if (!_useRequestIdForSampling)
        {
            // Envoy's mutateTracingRequestHeader: without the request id the decision is the
            // tracer's own sampling; the x-request-id is left as it is.
            return TraceReason.Sampling;
        }

        var client = route?.ClientSampling ?? (_client, PerTenThousandDenominator);
        var random = route?.RandomSampling ?? (_random, PerTenThousandDenominator);
        var overall = route?.OverallSampling ?? (_overall, PerTenThousandDenominator);
        var index = headers.IndexOf(KnownHeader.XRequestId);
        if (index < 0)
        {
            return TraceReason.NotTraceable;
        }

        var id = headers.GetValueBytes(index);
        if (id.Length != 36 || !TryFirstHexDigits(id, out var value))
        {
            return TraceReason.NotTraceable;
        }

        var result = value % 10_000;
        // Without pack_trace_reason a reason packed by someone else is not read, and none is written.
        var reason = _packTraceReason ? ReasonOf(id[TraceBytePosition]) : TraceReason.NotTraceable;
        if (reason == TraceReason.NotTraceable)
        {
            if (headers.Contains("x-client-trace-id") && Enabled("tracing.client_enabled", client, (ulong)Random.Shared.NextInt64(1_000_000)))
            {
                reason = TraceReason.ClientForced;
            }
            else if (headers.Contains("x-envoy-force-trace"))
            {
                reason = TraceReason.ServiceForced;
            }
            else if (Enabled("tracing.random_sampling", random, result))
            {
                reason = TraceReason.Sampling;
            }
        }

        if (!Enabled("tracing.global_enabled", overall, result))
        {
            reason = TraceReason.NotTraceable;
        }

        if (!_packTraceReason)
        {
            return reason;
        }

        Span<byte> updated = stackalloc byte[36];
        id.CopyTo(updated);
        updated[TraceBytePosition] = reason switch
        {
            TraceReason.Sampling => (byte)'9',
            TraceReason.ServiceForced => (byte)'a',
            TraceReason.ClientForced => (byte)'b',
            _ => (byte)'4',
        };
        if (updated[TraceBytePosition] != id[TraceBytePosition])
        {
            headers.SetValueAt(index, updated);
        }

        return reason;
    }

    /// <summary>The reason an x-request-id carries (index 14).</summary>
    public static TraceReason ReasonOf(byte marker) => marker switch
    {
        (byte)'9' => TraceReason.Sampling,
        (byte)'a' => TraceReason.ServiceForced,
        (byte)'b' => TraceReason.ClientForced,
        _ => TraceReason.NotTraceable,
    };

    /// <summary>The first 8 hex digits of a UUID as a number (Envoy's UUID extension <c>toInteger</c>).</summary>
    public static bool TryFirstHexDigits(ReadOnlySpan<byte> id, out ulong value)
    {
        value = 0;
        if (id.Length < 8)
        {
            return false;
        }

        for (var i = 0; i < 8; i++)
        {
            var b = id[i];
            var d = b is >= (byte)'0' and <= (byte)'9' ? b - '0' : b is >= (byte)'a' and <= (byte)'f' ? b - 'a' + 10 : b is >= (byte)'A' and <= (byte)'F' ? b - 'A' + 10 : -1;
            if (d < 0)
            {
                return false;
            }

            value = (value << 4) | (uint)d;
        }

        return true;
    }

    private bool Enabled(string key, (uint Numerator, uint Denominator) fraction, ulong sample) =>
        _runtime is { } runtime ? runtime.Snapshot.FeatureEnabled(key, fraction.Numerator, fraction.Denominator, sample) : sample % fraction.Denominator < fraction.Numerator;

    private static uint PerTenThousand(Envoy.Type.V3.Percent? percent) =>
        percent is null ? 10_000u : (uint)Math.Clamp(Math.Round(percent.Value * 100), 0, 10_000);
}
