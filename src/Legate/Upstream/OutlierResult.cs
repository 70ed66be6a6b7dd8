namespace Legate.Upstream;

/// <summary>What the router tells outlier detection about an upstream exchange besides its HTTP status (Envoy's Outlier::Result).</summary>
internal enum OutlierResult
{
    /// <summary>The connection was made (or reused); whatever the upstream answers comes as a status.</summary>
    LocalOriginConnectSuccess,

    /// <summary>No connection, or the connection broke before a response (counts as 503 unless errors are split).</summary>
    LocalOriginConnectFailed,

    /// <summary>The request timed out (counts as 504 unless errors are split).</summary>
    LocalOriginTimeout,
}
