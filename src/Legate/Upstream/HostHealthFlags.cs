namespace Legate.Upstream;

/// <summary>
/// Why a host is unhealthy or degraded, one bit per source, as Envoy keeps them: each source
/// (EDS/static health_status, active health checking, outlier detection) sets and clears only its
/// own bit, so one source recovering does not hide another one's failure. Envoy's other flags
/// (pending removal, pending first health check, …) arrive with the features that set them.
/// </summary>
[Flags]
internal enum HostHealthFlags
{
    None = 0,

    /// <summary>FAILED_ACTIVE_HC: the active health checker marked the host unhealthy.</summary>
    FailedActiveHealthCheck = 1 << 0,

    /// <summary>FAILED_OUTLIER_CHECK: outlier detection ejected the host.</summary>
    FailedOutlierCheck = 1 << 1,

    /// <summary>FAILED_EDS_HEALTH: health_status is UNHEALTHY or TIMEOUT.</summary>
    FailedEdsHealth = 1 << 2,

    /// <summary>DEGRADED_ACTIVE_HC: the health checker saw the degraded header.</summary>
    DegradedActiveHealthCheck = 1 << 3,

    /// <summary>DEGRADED_EDS_HEALTH: health_status is DEGRADED.</summary>
    DegradedEdsHealth = 1 << 4,

    /// <summary>PENDING_ACTIVE_HC: added while a health checker is configured, not checked yet (also FailedActiveHealthCheck until the first pass).</summary>
    PendingActiveHealthCheck = 1 << 5,

    /// <summary>EXCLUDED_VIA_IMMEDIATE_HC_FAIL: the host answered a check with x-envoy-immediate-health-check-fail.</summary>
    ExcludedViaImmediateHealthCheckFail = 1 << 6,

    /// <summary>
    /// ACTIVE_HC_TIMEOUT: the host is failed by the active health checker and its last check timed
    /// out (informational: it makes the host neither unhealthy nor degraded by itself).
    /// </summary>
    ActiveHealthCheckTimeout = 1 << 7,

    /// <summary>
    /// EDS_STATUS_DRAINING: health_status is DRAINING. As Envoy (exclude_host_in_eds_status_draining,
    /// on by default and now the only behaviour): the host is unhealthy and excluded, so it takes no
    /// new traffic and does not count in the priority's health or panic arithmetic.
    /// </summary>
    EdsStatusDraining = 1 << 8,
}
