namespace Legate.Xds;

/// <summary>The last rejected update of a subscription (config_dump's error_state): why, when, and the version it carried.</summary>
internal sealed record XdsErrorState(string Details, DateTimeOffset LastUpdateAttempt, string RejectedVersion);
