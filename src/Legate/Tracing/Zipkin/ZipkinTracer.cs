using Legate.Http.Http1;

namespace Legate.Tracing.Zipkin;

/// <summary>
/// <c>envoy.tracers.zipkin</c> (Envoy's zipkin Driver and Tracer): continues a B3 context or starts
/// a trace. The connection manager's span is named after the request's host (the route decorator
/// renames it); it is a SERVER span for ingress or when upstream spans are spawned, else a CLIENT
/// span for egress. With <c>shared_span_context</c> (default true) a SERVER span takes the caller's
/// span id; a CLIENT span (or no sharing) is a new child of it. A context that cannot be read gives
/// a no-op span, as Envoy.
/// </summary>
internal sealed class ZipkinTracer : Tracer
{
    private readonly bool _traceId128Bit;
    private readonly bool _sharedSpanContext;
    private readonly bool _splitSpansForRequest;

    public ZipkinTracer(CollectorReporter<ZipkinSpan> reporter, string serviceName, bool traceId128Bit, bool sharedSpanContext, bool splitSpansForRequest)
    {
        Reporter = reporter;
        ServiceName = serviceName;
        _traceId128Bit = traceId128Bit;
        _sharedSpanContext = sharedSpanContext;
        _splitSpansForRequest = splitSpansForRequest;
    }

    public CollectorReporter<ZipkinSpan> Reporter { get; }

    /// <summary>The node's cluster: every span's localEndpoint.serviceName.</summary>
    public string ServiceName { get; }

    public override Span StartSpan(TracingConfig config, HttpHeaderMap requestHeaders, string operationName, DateTimeOffset startTime, bool traced)
    {
        var propagated = B3Context.ExtractSampled(requestHeaders);
        var sampled = propagated ?? traced;
        var name = requestHeaders.GetValue("host") ?? string.Empty;
        if (!B3Context.TryExtract(requestHeaders, sampled, out var context, out var error))
        {
            if (error is not null)
            {
                return NullSpan.Instance;
            }

            // A new trace: this span is its root.
            var id = NewId();
            return new ZipkinSpan(this, name, KindOf(config, upstream: false), _traceId128Bit ? NewId() : 0, id, id, 0, shared: false, sampled, startTime);
        }

        return Continue(config, name, context, upstream: false, startTime);
    }

    /// <summary>The router's span for an upstream attempt, a child of <paramref name="parent"/>.</summary>
    public Span StartChild(TracingConfig config, ZipkinSpan parent, string name, DateTimeOffset startTime) =>
        Continue(config, name, new B3Context(parent.TraceIdHigh, parent.TraceIdLow, parent.Id, parent.ParentId, parent.Sampled), upstream: true, startTime);

    private ZipkinSpan Continue(TracingConfig config, string name, B3Context previous, bool upstream, DateTimeOffset startTime)
    {
        var kind = KindOf(config, upstream);
        if (kind == ZipkinSpanKind.Server && _sharedSpanContext)
        {
            // One span shared with the caller's client span: same id and parent.
            return new ZipkinSpan(this, name, kind, previous.TraceIdHigh, previous.TraceId, previous.SpanId, previous.ParentId, shared: true, previous.Sampled, startTime);
        }

        return new ZipkinSpan(this, name, kind, previous.TraceIdHigh, previous.TraceId, NewId(), previous.SpanId, shared: false, previous.Sampled, startTime);
    }

    /// <summary>
    /// Envoy's rule: an upstream span is a CLIENT span; when Envoy is its own hop (spawned upstream
    /// spans) the downstream span is SERVER, otherwise the traffic direction decides (egress: CLIENT).
    /// </summary>
    private ZipkinSpanKind KindOf(TracingConfig config, bool upstream)
    {
        if (upstream)
        {
            return ZipkinSpanKind.Client;
        }

        if (_splitSpansForRequest || config.SpawnUpstreamSpan)
        {
            return ZipkinSpanKind.Server;
        }

        return config.Operation == OperationName.Egress ? ZipkinSpanKind.Client : ZipkinSpanKind.Server;
    }

    private static ulong NewId()
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
