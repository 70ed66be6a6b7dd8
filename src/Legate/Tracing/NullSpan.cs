using Legate.Http.Http1;

namespace Legate.Tracing;

/// <summary>A span that records nothing (Envoy's <c>NullSpan</c>): a tracer's answer to a context it cannot read.</summary>
internal sealed class NullSpan : Span
{
    public static readonly NullSpan Instance = new();

    public override string TraceId => string.Empty;

    public override string SpanId => string.Empty;

    public override void SetOperation(string operation)
    {
    }

    public override void SetTag(string name, string value)
    {
    }

    public override void InjectContext(HttpHeaderMap headers)
    {
    }

    public override Span SpawnChild(TracingConfig config, string name, DateTimeOffset startTime) => this;

    public override void SetSampled(bool sampled)
    {
    }

    public override void Finish()
    {
    }
}
