namespace Legate.Router.Retry;

/// <summary>What <see cref="RetryState"/> decided about a failed or retriable attempt.</summary>
internal enum RetryDecision
{
    /// <summary>The outcome is not retriable: forward the response (or fail) as is.</summary>
    No,

    /// <summary>Retry after the back-off (a retry slot is held until it starts).</summary>
    Retry,

    /// <summary>Retriable, but no retries are left: forward / fail with URX.</summary>
    LimitExceeded,

    /// <summary>Retriable, but the cluster's retry budget (max_retries) is used up: forward / fail with UO.</summary>
    Overflow,
}
