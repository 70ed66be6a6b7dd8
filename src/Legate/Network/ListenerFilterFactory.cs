using Legate.Config;
using Legate.Config.Extensions;
using Legate.Extensions.Filters.Listener.HttpInspector;
using Legate.Extensions.Filters.Listener.OriginalDst;
using Legate.Extensions.Filters.Listener.ProxyProtocol;
using Legate.Extensions.Filters.Listener.TlsInspector;
using Legate.Stats;
using HttpInspectorConfig = Envoy.Extensions.Filters.Listener.HttpInspector.V3.HttpInspector;
using OriginalDstConfig = Envoy.Extensions.Filters.Listener.OriginalDst.V3.OriginalDst;
using ProxyProtocolConfig = Envoy.Extensions.Filters.Listener.ProxyProtocol.V3.ProxyProtocol;
using TlsInspectorConfig = Envoy.Extensions.Filters.Listener.TlsInspector.V3.TlsInspector;

namespace Legate.Network;

/// <summary>Builds the listener filters Legate implements from their config (typed_config, or the name alone).</summary>
internal static class ListenerFilterFactory
{
    /// <summary>The filter, wrapped to be skipped where its <c>filter_disabled</c> predicate matches.</summary>
    public static IListenerFilter? Create(Envoy.Config.Listener.V3.ListenerFilter config, string path, ConfigErrors errors, StatsStore stats)
    {
        var filter = CreateFilter(config, path, errors, stats);
        return filter is not null && config.FilterDisabled is { } disabled
            ? new DisableableListenerFilter(filter, ListenerFilterMatcher.Compile(disabled))
            : filter;
    }

    private static IListenerFilter? CreateFilter(Envoy.Config.Listener.V3.ListenerFilter config, string path, ConfigErrors errors, StatsStore stats)
    {
        var configType = config.TypedConfig is { } any
            ? any.TypeUrl[(any.TypeUrl.LastIndexOf('/') + 1)..]
            : ExtensionCatalog.FindByName(config.Name)?.ConfigType;
        switch (configType)
        {
            case var t when t == TlsInspectorConfig.Descriptor.FullName:
                return new TlsInspectorFilter(stats, config.TypedConfig?.Unpack<TlsInspectorConfig>().EnableJa3Fingerprinting ?? false);
            case var t when t == HttpInspectorConfig.Descriptor.FullName:
                return new HttpInspectorFilter(stats);
            case var t when t == ProxyProtocolConfig.Descriptor.FullName:
                return new ProxyProtocolFilter(config.TypedConfig?.Unpack<ProxyProtocolConfig>() ?? new ProxyProtocolConfig(), stats);
            case var t when t == OriginalDstConfig.Descriptor.FullName:
                return new OriginalDstFilter();
            default:
                errors.Add(path, $"listener filter '{config.Name}' is not supported yet");
                return null;
        }
    }
}
