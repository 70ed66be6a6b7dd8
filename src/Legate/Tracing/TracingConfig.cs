using Legate.Config;
using HcmTracing = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Types.Tracing;

namespace Legate.Tracing;

/// <summary>
/// The connection manager's compiled <c>tracing</c> block with a provider (Envoy's
/// ConnectionManagerTracingConfig plus its driver): the direction from the listener, custom tags,
/// <c>max_path_tag_length</c> (default 256), <c>spawn_upstream_span</c> (default false), and the
/// node's id and zone for the <c>node_id</c>/<c>zone</c> tags.
/// </summary>
internal sealed class TracingConfig
{
    public const int DefaultMaxPathTagLength = 256;

    public required Tracer Tracer { get; init; }

    public OperationName Operation { get; init; }

    public bool SpawnUpstreamSpan { get; init; }

    public int MaxPathTagLength { get; init; } = DefaultMaxPathTagLength;

    public CustomTag[] CustomTags { get; init; } = [];

    public string NodeId { get; init; } = string.Empty;

    public string Zone { get; init; } = string.Empty;

    /// <summary>Compiles the HCM's tracing block; null when it has no provider (sampling only) or on errors.</summary>
    public static TracingConfig? Compile(HcmTracing tracing, string path, ConfigErrors errors, TracerManager? tracers, OperationName operation, Envoy.Config.Core.V3.Node node)
    {
        if (tracing.Provider is not { } provider)
        {
            return null;
        }

        var providerPath = FieldPath.Field(path, "provider");
        if (tracers is null)
        {
            errors.Add(providerPath, "tracing providers need the server's tracer manager");
            return null;
        }

        var errorCount = errors.Errors.Count;
        var tags = new List<CustomTag>();
        for (var i = 0; i < tracing.CustomTags.Count; i++)
        {
            if (CustomTag.Compile(tracing.CustomTags[i], FieldPath.Index(FieldPath.Field(path, "custom_tags"), i), errors) is { } tag)
            {
                tags.Add(tag);
            }
        }

        var tracer = tracers.GetOrCreate(provider, providerPath, errors, node);
        if (tracer is null || errors.Errors.Count > errorCount)
        {
            return null;
        }

        return new TracingConfig
        {
            Tracer = tracer,
            Operation = operation,
            SpawnUpstreamSpan = tracing.SpawnUpstreamSpan ?? false,
            MaxPathTagLength = tracing.MaxPathTagLength is { } max ? (int)Math.Min(max, int.MaxValue) : DefaultMaxPathTagLength,
            CustomTags = [.. tags],
            NodeId = node.Id,
            Zone = node.Locality?.Zone ?? string.Empty,
        };
    }
}
