using System.Diagnostics;
using Legate.Http.Http1;

namespace Legate.Tracing.Zipkin;

/// <summary>
/// A Zipkin span (Envoy's zipkin Span): ids, kind, timestamp and duration in microseconds, tags.
/// Written to one stream's thread at a time; handed to the reporter once, on <see cref="Finish"/>.
/// </summary>
internal sealed class ZipkinSpan : Span
{
    private readonly ZipkinTracer _tracer;
    private readonly long _startTicks;
    private int _finished;

    public ZipkinSpan(ZipkinTracer tracer, string name, ZipkinSpanKind kind, ulong traceIdHigh, ulong traceId, ulong id, ulong parentId, bool shared, bool sampled, DateTimeOffset startTime)
    {
        _tracer = tracer;
        Name = name;
        Kind = kind;
        TraceIdHigh = traceIdHigh;
        TraceIdLow = traceId;
        Id = id;
        ParentId = parentId;
        Shared = shared;
        Sampled = sampled;
        TimestampMicros = startTime.ToUnixTimeMilliseconds() * 1000 + (startTime.Ticks % TimeSpan.TicksPerMillisecond) / 10;
        _startTicks = Stopwatch.GetTimestamp();
    }

    public string Name { get; private set; }

    public ZipkinSpanKind Kind { get; }

    public ulong TraceIdHigh { get; }

    public ulong TraceIdLow { get; }

    public ulong Id { get; }

    /// <summary>0 when the span is a root.</summary>
    public ulong ParentId { get; }

    /// <summary>A server span that took the caller's span id (shared_span_context).</summary>
    public bool Shared { get; }

    public bool Sampled { get; private set; }

    public long TimestampMicros { get; }

    public long DurationMicros { get; private set; }

    /// <summary>Tags in the order first set (a later value replaces an earlier one).</summary>
    public Dictionary<string, string> Tags { get; } = new(StringComparer.Ordinal);

    public override string TraceId => B3Context.TraceHex(TraceIdHigh, TraceIdLow);

    public override string SpanId => B3Context.Hex(Id);

    public override void SetOperation(string operation) => Name = operation;

    public override void SetTag(string name, string value)
    {
        // As Envoy's zipkin span: empty names or values are not recorded.
        if (name.Length > 0 && value.Length > 0)
        {
            Tags[name] = value;
        }
    }

    public override void SetSampled(bool sampled) => Sampled = sampled;

    /// <summary>B3 multi headers: trace, span, parent (when there is one) and the sampling state.</summary>
    public override void InjectContext(HttpHeaderMap headers)
    {
        headers.Set(B3Context.TraceIdHeader, TraceId);
        headers.Set(B3Context.SpanIdHeader, SpanId);
        if (ParentId != 0)
        {
            headers.Set(B3Context.ParentSpanIdHeader, B3Context.Hex(ParentId));
        }
        else
        {
            headers.Remove(B3Context.ParentSpanIdHeader);
        }

        headers.Set(B3Context.SampledHeader, Sampled ? "1" : "0");
    }

    public override Span SpawnChild(TracingConfig config, string name, DateTimeOffset startTime) =>
        _tracer.StartChild(config, this, name, startTime);

    public override void Finish()
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
        {
            return;
        }

        DurationMicros = Math.Max(1, (long)(Stopwatch.GetElapsedTime(_startTicks).Ticks / 10));
        if (Sampled)
        {
            _tracer.Reporter.Report(this);
        }
    }
}
