namespace Legate.Tracing;

/// <summary>Why a request is traced (Envoy's <c>Tracing::Reason</c>); packed into x-request-id's variant nibble.</summary>
internal enum TraceReason
{
    NotTraceable,
    HealthCheck,
    Sampling,
    ServiceForced,
    ClientForced,
}
