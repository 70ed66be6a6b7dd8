namespace Legate.Tracing.OpenTelemetry;

/// <summary>OTLP's <c>Span.SpanKind</c> values Envoy uses.</summary>
internal enum OtelSpanKind
{
    Server = 2,
    Client = 3,
}
