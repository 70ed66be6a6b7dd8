namespace Legate.Upstream.ConnectionPool;

/// <summary>A new upstream connection could not be made (Envoy's pool failure: UF).</summary>
internal sealed class UpstreamConnectException : Exception
{
    public UpstreamConnectException(string resetReason, string transportFailureReason, Exception? inner = null)
        : base($"{resetReason}: {transportFailureReason}", inner)
    {
        ResetReason = resetReason;
        TransportFailureReason = transportFailureReason;
    }

    /// <summary><see cref="Legate.Http.UpstreamResetReasons"/>: connection_failure or connection_timeout.</summary>
    public string ResetReason { get; }

    /// <summary>Envoy's <c>%UPSTREAM_TRANSPORT_FAILURE_REASON%</c>, e.g. <c>delayed connect error: Connection refused</c>.</summary>
    public string TransportFailureReason { get; }
}
