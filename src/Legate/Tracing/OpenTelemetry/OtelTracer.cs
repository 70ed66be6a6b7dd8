using Legate.Http.Http1;

namespace Legate.Tracing.OpenTelemetry;

/// <summary>
/// <c>envoy.tracers.opentelemetry</c> (Envoy's OpenTelemetry Driver and Tracer): continues a W3C
/// trace context (the span becomes a child of the caller's span and keeps its sampled flag and
/// tracestate) or starts a trace with the local decision; a traceparent that cannot be read gives a
/// no-op span, as Envoy. The connection manager's span is named by the operation (<c>ingress</c>,
/// <c>egress host</c>) and is SERVER, or CLIENT on egress without spawned upstream spans; upstream
/// spans are CLIENT.
/// </summary>
internal sealed class OtelTracer : Tracer
{
    public OtelTracer(CollectorReporter<OtelSpan> reporter) => Reporter = reporter;

    public CollectorReporter<OtelSpan> Reporter { get; }

    /// <summary>
    /// <c>sampler: envoy.tracers.opentelemetry.samplers.always_on</c>: the sampler decides instead of
    /// the connection manager's decision and the caller's flag, and it always samples.
    /// </summary>
    public bool AlwaysOn { get; init; }

    public override Span StartSpan(TracingConfig config, HttpHeaderMap requestHeaders, string operationName, DateTimeOffset startTime, bool traced)
    {
        var kind = config.SpawnUpstreamSpan || config.Operation == OperationName.Ingress ? OtelSpanKind.Server : OtelSpanKind.Client;
        if (!TraceParent.IsPresent(requestHeaders))
        {
            return new OtelSpan(this, operationName, kind, NewId(), NewId(), NewId(), 0, traced || AlwaysOn, string.Empty, startTime);
        }

        if (!TraceParent.TryExtract(requestHeaders, out var context, out _))
        {
            return NullSpan.Instance;
        }

        return new OtelSpan(this, operationName, kind, context.TraceIdHigh, context.TraceIdLow, NewId(), context.SpanId, context.Sampled || AlwaysOn, context.TraceState, startTime);
    }

    internal static ulong NewId()
    {
        ulong id;
        do
        {
            id = (ulong)Random.Shared.NextInt64() ^ ((ulong)Random.Shared.Next() << 63);
        }
        while (id == 0);

        return id;
    }

    public override ValueTask FlushAsync() => Reporter.FlushAsync();
}
