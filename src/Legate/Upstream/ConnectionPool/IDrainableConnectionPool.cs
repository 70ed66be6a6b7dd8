namespace Legate.Upstream.ConnectionPool;

/// <summary>A pool whose existing connections can be drained (Envoy's drainConnections).</summary>
internal interface IDrainableConnectionPool
{
    /// <summary>Idle connections close now, busy ones when their exchange ends; new requests get new connections.</summary>
    void DrainConnections();
}
