namespace Legate.Http;

/// <summary>Envoy's <c>%RESPONSE_CODE_DETAILS%</c> strings: why a response has the code it has.</summary>
internal static class ResponseCodeDetails
{
    public const string ViaUpstream = "via_upstream";
    public const string DirectResponse = "direct_response";
    public const string PathNormalizationFailed = "path_normalization_failed";
    public const string OriginalIpDetectionFailed = "rejecting_because_detection_failed";
    public const string RouteNotFound = "route_not_found";
    public const string ClusterNotFound = "cluster_not_found";

    /// <summary>The router's strict_check_headers rejected an x-envoy-* header (followed by <c>{header name}</c>).</summary>
    public const string InvalidEnvoyRequestHeaders = "request_headers_failed_strict_check";
    public const string NoHealthyUpstream = "no_healthy_upstream";
    public const string DropOverload = "drop_overload";
    public const string UpstreamResponseTimeout = "upstream_response_timeout";
    public const string UpstreamPerTryTimeout = "upstream_per_try_timeout";
    public const string UpstreamPerTryIdleTimeout = "upstream_per_try_idle_timeout";
    public const string DownstreamRemoteDisconnect = "downstream_remote_disconnect";
    public const string RequestHeadersTimeout = "request_header_timeout";
    public const string RequestOverallTimeout = "request_overall_timeout";
    public const string StreamIdleTimeout = "stream_idle_timeout";
    public const string MaxDurationTimeout = "max_duration_timeout";
    public const string FilterChainNotFound = "filter_chain_not_found";
    public const string RequestPayloadTooLarge = "request_payload_too_large";
    public const string ResponsePayloadTooLarge = "response_payload_too_large";
    public const string RequestPayloadExceededRetryBufferLimit = "request_payload_exceeded_retry_buffer_limit";
    public const string FaultAbort = "fault_filter_abort";
    public const string InternalRedirect = "internal_redirect";
    public const string UpgradeFailed = "upgrade_failed";
    public const string LowVersion = "low_version";
    public const string LocalReset = "local_reset";

    /// <summary><c>upstream_reset_before_response_started{reason}</c>.</summary>
    public static string UpstreamResetBeforeResponseStarted(string reason) => reason switch
    {
        UpstreamResetReasons.ConnectionFailure => "upstream_reset_before_response_started{connection_failure}",
        UpstreamResetReasons.ConnectionTimeout => "upstream_reset_before_response_started{connection_timeout}",
        UpstreamResetReasons.ConnectionTermination => "upstream_reset_before_response_started{connection_termination}",
        UpstreamResetReasons.RemoteReset => "upstream_reset_before_response_started{remote_reset}",
        UpstreamResetReasons.Overflow => "upstream_reset_before_response_started{overflow}",
        UpstreamResetReasons.ProtocolError => "upstream_reset_before_response_started{protocol_error}",
        _ => "upstream_reset_before_response_started{" + reason.Replace(' ', '_') + "}",
    };

    /// <summary>
    /// <c>upstream_reset_before_response_started{reason,transport_failure}</c> as Envoy writes it when
    /// the transport gave a reason. Only TLS failures carry it for now: plain connect failures keep
    /// <c>{connection_failure}</c> (Envoy appends <c>delayed_connect_error:_111</c> there too).
    /// </summary>
    public static string UpstreamResetBeforeResponseStarted(string reason, string? transportFailure) =>
        IsTlsFailure(transportFailure)
            ? "upstream_reset_before_response_started{" + reason + "," + transportFailure!.Replace(' ', '_') + "}"
            : UpstreamResetBeforeResponseStarted(reason);

    /// <summary>The local reply body for an upstream reset: Envoy's text, with <c>, transport failure reason: …</c> for TLS failures.</summary>
    public static string UpstreamResetBody(string reason, string? transportFailure) =>
        "upstream connect error or disconnect/reset before headers. reset reason: " + UpstreamResetReasons.BodyText(reason)
        + (IsTlsFailure(transportFailure) ? ", transport failure reason: " + transportFailure : string.Empty);

    private static bool IsTlsFailure(string? transportFailure) => transportFailure is not null && transportFailure.StartsWith("TLS_error", StringComparison.Ordinal);

    /// <summary><c>upstream_reset_after_response_started{reason}</c>.</summary>
    public static string UpstreamResetAfterResponseStarted(string reason) =>
        "upstream_reset_after_response_started{" + reason.Replace(' ', '_') + "}";
}

/// <summary>Envoy's upstream stream reset reasons, as they appear in local reply bodies and details.</summary>
internal static class UpstreamResetReasons
{
    public const string ConnectionFailure = "connection_failure";
    public const string ConnectionTimeout = "connection_timeout";
    public const string ConnectionTermination = "connection_termination";
    public const string RemoteReset = "remote_reset";
    public const string Overflow = "overflow";
    public const string ProtocolError = "protocol_error";

    /// <summary>The text Envoy puts after <c>reset reason: </c> in the local reply body.</summary>
    public static string BodyText(string reason) => reason switch
    {
        ConnectionFailure => "connection failure",
        ConnectionTimeout => "connection timeout",
        ConnectionTermination => "connection termination",
        RemoteReset => "remote reset",
        Overflow => "overflow",
        ProtocolError => "protocol error",
        _ => reason,
    };
}
