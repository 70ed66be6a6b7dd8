namespace Legate.Config.Extensions;

/// <summary>The kinds of pluggable pieces Envoy selects by extension name and typed_config type URL.</summary>
internal enum ExtensionCategory
{
    Other,
    ListenerFilter,
    UdpListenerFilter,
    NetworkFilter,
    HttpFilter,
    TransportSocket,
    AccessLogger,
    Tracer,
    StatSink,
    Cluster,
    UpstreamProtocolOptions,
}

internal static class ExtensionCategoryNames
{
    public static string Describe(this ExtensionCategory category) => category switch
    {
        ExtensionCategory.ListenerFilter => "listener filter",
        ExtensionCategory.UdpListenerFilter => "UDP listener filter",
        ExtensionCategory.NetworkFilter => "network filter",
        ExtensionCategory.HttpFilter => "HTTP filter",
        ExtensionCategory.TransportSocket => "transport socket",
        ExtensionCategory.AccessLogger => "access logger",
        ExtensionCategory.Tracer => "tracer",
        ExtensionCategory.StatSink => "stats sink",
        ExtensionCategory.Cluster => "cluster type",
        ExtensionCategory.UpstreamProtocolOptions => "upstream protocol options",
        _ => "extension",
    };
}
