namespace Legate.Upstream;

/// <summary>An ORIGINAL_DST cluster's <c>original_dst_lb_config</c> and <c>cleanup_interval</c>.</summary>
/// <param name="HeaderName">The override header when <c>use_http_header</c> is set (<c>http_header_name</c>, default <c>x-envoy-original-dst-host</c>); null otherwise.</param>
/// <param name="PortOverride"><c>upstream_port_override</c>: replaces the destination's port, whatever gave it.</param>
/// <param name="CleanupInterval">How often unused hosts are removed.</param>
internal sealed record OriginalDstSettings(string? HeaderName, int? PortOverride, TimeSpan CleanupInterval)
{
    public const string DefaultHeaderName = "x-envoy-original-dst-host";
}
