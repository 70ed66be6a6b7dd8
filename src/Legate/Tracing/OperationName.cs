namespace Legate.Tracing;

/// <summary>
/// Which side of the traffic the connection manager is on (Envoy's <c>Tracing::OperationName</c>):
/// taken from the listener's <c>traffic_direction</c> (OUTBOUND is egress, anything else ingress).
/// It names the downstream span and decides its kind when no upstream span is spawned.
/// </summary>
internal enum OperationName
{
    Ingress,
    Egress,
}
