using Legate.Http.Http1;

namespace Legate.Tracing;

/// <summary>
/// One unit of traced work (Envoy's <c>Tracing::Span</c>): the connection manager's span for a
/// request, or the router's child span for an upstream attempt. A span is used by one stream at a
/// time; <see cref="Finish"/> hands it to its tracer's reporter once.
/// </summary>
internal abstract class Span
{
    /// <summary>Renames the span (route decorators, <c>x-envoy-decorator-operation</c>).</summary>
    public abstract void SetOperation(string operation);

    public abstract void SetTag(string name, string value);

    /// <summary>Writes this span's context into an outgoing request (B3, W3C, … as the tracer speaks).</summary>
    public abstract void InjectContext(HttpHeaderMap headers);

    /// <summary>A child span (the router's egress span); it inherits the trace and the sampling decision.</summary>
    public abstract Span SpawnChild(TracingConfig config, string name, DateTimeOffset startTime);

    /// <summary>Overrides the sampling decision (Envoy: when the route decides the request is not traced).</summary>
    public abstract void SetSampled(bool sampled);

    /// <summary>Ends the span now and reports it if sampled.</summary>
    public abstract void Finish();

    /// <summary>The trace id in the tracer's text form (empty when the span is a no-op).</summary>
    public abstract string TraceId { get; }

    /// <summary>The span id in the tracer's text form (empty when the span is a no-op).</summary>
    public abstract string SpanId { get; }
}
