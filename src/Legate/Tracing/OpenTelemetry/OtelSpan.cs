using System.Diagnostics;
using Legate.Http.Http1;

namespace Legate.Tracing.OpenTelemetry;

/// <summary>An OpenTelemetry span: W3C ids, kind, start/end in Unix nanoseconds, string attributes.</summary>
internal sealed class OtelSpan : Span
{
    private readonly OtelTracer _tracer;
    private readonly long _startTicks;
    private int _finished;

    public OtelSpan(OtelTracer tracer, string name, OtelSpanKind kind, ulong traceIdHigh, ulong traceIdLow, ulong id, ulong parentId, bool sampled, string traceState, DateTimeOffset startTime)
    {
        _tracer = tracer;
        Name = name;
        Kind = kind;
        TraceIdHigh = traceIdHigh;
        TraceIdLow = traceIdLow;
        Id = id;
        ParentId = parentId;
        Sampled = sampled;
        TraceState = traceState;
        StartUnixNanos = (startTime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
        _startTicks = Stopwatch.GetTimestamp();
    }

    public string Name { get; private set; }

    public OtelSpanKind Kind { get; }

    public ulong TraceIdHigh { get; }

    public ulong TraceIdLow { get; }

    public ulong Id { get; }

    /// <summary>0 for a root span.</summary>
    public ulong ParentId { get; }

    public bool Sampled { get; private set; }

    public string TraceState { get; }

    public long StartUnixNanos { get; }

    public long EndUnixNanos { get; private set; }

    public Dictionary<string, string> Attributes { get; } = new(StringComparer.Ordinal);

    public override string TraceId => TraceParent.Hex(TraceIdHigh) + TraceParent.Hex(TraceIdLow);

    public override string SpanId => TraceParent.Hex(Id);

    public override void SetOperation(string operation) => Name = operation;

    /// <summary>OTLP <c>Status.code</c>: 0 unset, 2 error (set from the <c>http.status_code</c> and <c>grpc.status_code</c> tags).</summary>
    public int StatusCode { get; private set; }

    /// <summary>OTLP <c>Status.message</c>: the <c>grpc.message</c> of a failed gRPC call, else empty.</summary>
    public string StatusMessage { get; private set; } = string.Empty;

    /// <summary>
    /// Records the attribute. Like Envoy (from 1.31), <c>http.status_code</c> also sets the span's
    /// status by OpenTelemetry's HTTP conventions: ERROR for 5xx, and for 4xx on CLIENT spans only.
    /// </summary>
    public override void SetTag(string name, string value)
    {
        if (name.Length == 0)
        {
            return;
        }

        if (name == Tags.HttpStatusCode && int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var status)
            && (status >= 500 || status >= 400 && Kind == OtelSpanKind.Client))
        {
            StatusCode = OtelStatusCodeError;
        }

        // A gRPC status other than OK is an error (OpenTelemetry's gRPC convention); its grpc.message
        // (set right after it) becomes the status message.
        if (name == Tags.GrpcStatusCode && value != "0")
        {
            StatusCode = OtelStatusCodeError;
            _grpcFailed = true;
        }
        else if (name == Tags.GrpcMessage && _grpcFailed)
        {
            StatusMessage = value;
        }

        Attributes[name] = value;
    }

    private const int OtelStatusCodeError = 2;

    private bool _grpcFailed;

    public override void SetSampled(bool sampled) => Sampled = sampled;

    public override void InjectContext(HttpHeaderMap headers) => TraceParent.Inject(headers, TraceIdHigh, TraceIdLow, Id, Sampled, TraceState);

    public override Span SpawnChild(TracingConfig config, string name, DateTimeOffset startTime) =>
        new OtelSpan(_tracer, name, OtelSpanKind.Client, TraceIdHigh, TraceIdLow, OtelTracer.NewId(), Id, Sampled, TraceState, startTime);

    public override void Finish()
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
        {
            return;
        }

        EndUnixNanos = StartUnixNanos + Math.Max(1, Stopwatch.GetElapsedTime(_startTicks).Ticks * 100);
        if (Sampled)
        {
            _tracer.Reporter.Report(this);
        }
    }
}
