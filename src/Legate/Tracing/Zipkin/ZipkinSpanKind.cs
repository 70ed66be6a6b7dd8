namespace Legate.Tracing.Zipkin;

/// <summary>Zipkin v2's span kind (Envoy starts spans as SERVER_RECV or CLIENT_SEND).</summary>
internal enum ZipkinSpanKind
{
    Server,
    Client,
}
