namespace Legate.Upstream;

/// <summary>An ORIGINAL_DST cluster's <c>original_dst_lb_config</c> and <c>cleanup_interval</c>.</summary>
/// <param name="HeaderName">The override header when <c>use_http_header</c> is set (<c>http_header_name</c>, default <c>x-envoy-original-dst-host</c>); null otherwise.</param>
/// <param name="PortOverride"><c>upstream_port_override</c>: replaces the destination's port, whatever gave it.</param>
/// <param name="CleanupInterval">How often unused hosts are removed.</param>
internal sealed record OriginalDstSettings(string? HeaderName, int? PortOverride, TimeSpan CleanupInterval)
{
    /// <summary><c>metadata_key</c>: the dynamic metadata namespace holding the destination, or null.</summary>
    public string? MetadataNamespace { get; init; }

    /// <summary><c>metadata_key.path</c>: the keys leading to the destination inside <see cref="MetadataNamespace"/>.</summary>
    public System.Collections.Immutable.ImmutableArray<string> MetadataPath { get; init; } = [];

    public const string DefaultHeaderName = "x-envoy-original-dst-host";
}
