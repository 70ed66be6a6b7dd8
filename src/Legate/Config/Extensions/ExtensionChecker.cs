using System.Collections.Frozen;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using ExtensionConfigSourceMessage = Envoy.Config.Core.V3.ExtensionConfigSource;

namespace Legate.Config.Extensions;

/// <summary>
/// Walks a configuration and checks every extension reference in it: the typed_config's type
/// must exist, must configure the kind of extension its slot takes (an HTTP filter's typed_config
/// cannot be a cluster), and Legate must implement it. Extensions Legate implements are
/// descended into, so the filters of an HTTP connection manager are checked as well.
/// </summary>
internal static class ExtensionChecker
{
    /// <summary>Which kind of extension an <c>Any</c> field takes, by "message full name.field name".</summary>
    private static readonly FrozenDictionary<string, ExtensionCategory> s_slots = new Dictionary<string, ExtensionCategory>
    {
        ["envoy.config.listener.v3.ListenerFilter.typed_config"] = ExtensionCategory.ListenerFilter,
        ["envoy.config.listener.v3.Filter.typed_config"] = ExtensionCategory.NetworkFilter,
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter.typed_config"] = ExtensionCategory.HttpFilter,
        ["envoy.config.core.v3.TransportSocket.typed_config"] = ExtensionCategory.TransportSocket,
        ["envoy.config.accesslog.v3.AccessLog.typed_config"] = ExtensionCategory.AccessLogger,
        ["envoy.config.trace.v3.Tracing.Http.typed_config"] = ExtensionCategory.Tracer,
        ["envoy.config.metrics.v3.StatsSink.typed_config"] = ExtensionCategory.StatSink,
        ["envoy.config.cluster.v3.Cluster.CustomClusterType.typed_config"] = ExtensionCategory.Cluster,
        ["envoy.config.cluster.v3.Cluster.typed_extension_protocol_options"] = ExtensionCategory.UpstreamProtocolOptions,
        ["envoy.config.core.v3.TypedExtensionConfig.typed_config"] = ExtensionCategory.Other,
        // ECDS is implemented for HTTP filters only (other holders reject config_discovery).
        ["envoy.config.core.v3.ExtensionConfigSource.default_config"] = ExtensionCategory.HttpFilter,
        ["envoy.config.route.v3.VirtualHost.typed_per_filter_config"] = ExtensionCategory.HttpFilter,
        ["envoy.config.route.v3.Route.typed_per_filter_config"] = ExtensionCategory.HttpFilter,
        ["envoy.config.route.v3.WeightedCluster.ClusterWeight.typed_per_filter_config"] = ExtensionCategory.HttpFilter,
        ["envoy.config.route.v3.RouteConfiguration.typed_per_filter_config"] = ExtensionCategory.HttpFilter,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Messages that name an extension and may leave typed_config out, selecting it by name.</summary>
    private static readonly FrozenDictionary<string, ExtensionCategory> s_namedHolders = new Dictionary<string, ExtensionCategory>
    {
        ["envoy.config.listener.v3.ListenerFilter"] = ExtensionCategory.ListenerFilter,
        ["envoy.config.listener.v3.Filter"] = ExtensionCategory.NetworkFilter,
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter"] = ExtensionCategory.HttpFilter,
        ["envoy.config.core.v3.TransportSocket"] = ExtensionCategory.TransportSocket,
        ["envoy.config.accesslog.v3.AccessLog"] = ExtensionCategory.AccessLogger,
        ["envoy.config.metrics.v3.StatsSink"] = ExtensionCategory.StatSink,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    // Only fields that can hold a named extension holder or an extension slot are walked (an
    // Any outside the slots is opaque: Visit does not look into it).
    private static readonly TypeReach s_reach = new(
        type => s_namedHolders.ContainsKey(type.FullName),
        field => s_slots.ContainsKey(field.ContainingType.FullName + "." + field.Name));

    /// <summary>Checks <paramref name="message"/>; a message <paramref name="skip"/> answers true for is not walked (already checked).</summary>
    public static void Check(IMessage message, string path, ConfigErrors errors, Func<IMessage, bool>? skip = null) => Walk(message, path, errors, skip);

    private static void Walk(IMessage message, string path, ConfigErrors errors, Func<IMessage, bool>? skip = null)
    {
        if (skip is not null && skip(message))
        {
            return;
        }

        var descriptor = message.Descriptor;
        if (s_namedHolders.TryGetValue(descriptor.FullName, out var holderCategory))
        {
            CheckNamedHolder(message, descriptor, holderCategory, path, errors);
        }

        MessageWalker.ForEachChild(message, path, (field, child, childPath, mapKey) => Visit(child, field, childPath, mapKey, message, errors, skip), s_reach.Follows, skip);
    }

    private static void Visit(IMessage child, FieldDescriptor field, string path, string? mapKey, IMessage parent, ConfigErrors errors, Func<IMessage, bool>? skip)
    {
        if (child is not Any any)
        {
            Walk(child, path, errors, skip);
            return;
        }

        if (!s_slots.TryGetValue(field.ContainingType.FullName + "." + field.Name, out var slot))
        {
            // Metadata and other opaque Any fields configure no extension.
            return;
        }

        CheckAny(any, slot, path, mapKey, IsOptional(parent), errors);
    }

    private static void CheckAny(Any any, ExtensionCategory slot, string path, string? mapKey, bool optional, ConfigErrors errors)
    {
        var descriptor = ApiTypes.FindByTypeUrl(any.TypeUrl);
        if (descriptor is null)
        {
            errors.Add(path, $"unknown type URL \"{any.TypeUrl}\": not in Legate's Envoy API snapshot");
            return;
        }

        // Per-route filter configs may be wrapped in envoy.config.route.v3.FilterConfig.
        if (descriptor.FullName == "envoy.config.route.v3.FilterConfig")
        {
            var wrapper = (Envoy.Config.Route.V3.FilterConfig)descriptor.Parser.ParseFrom(any.Value);
            if (wrapper.Config is not null)
            {
                CheckAny(wrapper.Config, slot, FieldPath.Field(path, "config"), mapKey, optional || wrapper.IsOptional, errors);
            }

            return;
        }

        var info = ExtensionCatalog.FindByConfigType(descriptor.FullName);
        if (slot != ExtensionCategory.Other && (info is null || !Fits(info.Category, slot)))
        {
            var what = info is null ? "configures no Envoy extension" : $"configures {info.Category.Describe()} \"{info.Name}\"";
            errors.Add(path, $"{any.TypeUrl} cannot be used as a {slot.Describe()}: it {what}");
            return;
        }

        var name = info?.Name ?? descriptor.FullName;
        if (info is null || !info.Implemented)
        {
            Unsupported(path, name, any.TypeUrl, slot, optional, errors);
            return;
        }

        if (mapKey is not null && slot == ExtensionCategory.UpstreamProtocolOptions && mapKey != info.Name)
        {
            errors.Add(path, $"key \"{mapKey}\" does not name the extension of {any.TypeUrl}; expected \"{info.Name}\"");
        }

        Walk(descriptor.Parser.ParseFrom(any.Value), path, errors);
    }

    /// <summary>An HTTP filter's <c>config_discovery</c>: every type URL an HTTP filter Legate implements, and Envoy's rule on warming.</summary>
    private static void CheckDiscovery(ExtensionConfigSourceMessage source, string path, ConfigErrors errors)
    {
        var typeUrlsPath = FieldPath.Field(path, "type_urls");
        for (var i = 0; i < source.TypeUrls.Count; i++)
        {
            var typeUrl = source.TypeUrls[i];
            var info = ApiTypes.FindByTypeUrl(typeUrl) is { } type ? ExtensionCatalog.FindByConfigType(type.FullName) : null;
            if (info is null || !Fits(info.Category, ExtensionCategory.HttpFilter))
            {
                errors.Add(FieldPath.Index(typeUrlsPath, i), $"\"{typeUrl}\" is not the type URL of an HTTP filter");
            }
            else if (!info.Implemented)
            {
                errors.Add(FieldPath.Index(typeUrlsPath, i), $"HTTP filter \"{info.Name}\" ({typeUrl}) is not implemented by Legate");
            }
        }

        if (source.ApplyDefaultConfigWithoutWarming && source.DefaultConfig is null)
        {
            errors.Add(FieldPath.Field(path, "apply_default_config_without_warming"), "apply_default_config_without_warming is set, but default_config is not");
        }
    }

    private static void CheckNamedHolder(IMessage message, MessageDescriptor descriptor, ExtensionCategory category, string path, ConfigErrors errors)
    {
        var typedConfig = descriptor.FindFieldByName("typed_config");
        if (typedConfig is not null && typedConfig.Accessor.GetValue(message) is not null)
        {
            return;
        }

        // A filter configured through discovery (config_discovery, ECDS) has no typed_config either.
        var discovery = descriptor.FindFieldByName("config_discovery");
        if (discovery is not null && discovery.Accessor.GetValue(message) is ExtensionConfigSourceMessage source)
        {
            if (category == ExtensionCategory.HttpFilter)
            {
                CheckDiscovery(source, FieldPath.Field(path, "config_discovery"), errors);
            }
            else
            {
                errors.Add(FieldPath.Field(path, "config_discovery"), $"extension config discovery (ECDS) is supported for HTTP filters only, not for a {category.Describe()}");
            }

            return;
        }

        var name = (string)descriptor.FindFieldByName("name").Accessor.GetValue(message);
        var info = ExtensionCatalog.FindByName(name);
        var namePath = FieldPath.Field(path, "name");
        if (info is null || !Fits(info.Category, category))
        {
            errors.Add(namePath, $"unknown {category.Describe()} \"{name}\": no typed_config is given and no {category.Describe()} has that name");
        }
        else if (!info.Implemented)
        {
            Unsupported(namePath, info.Name, info.TypeUrl, category, IsOptional(message), errors);
        }
    }

    private static void Unsupported(string path, string name, string typeUrl, ExtensionCategory slot, bool optional, ConfigErrors errors)
    {
        var message = $"{slot.Describe()} \"{name}\" ({typeUrl}) is not supported yet";
        if (optional)
        {
            // Envoy skips an optional HTTP filter it does not know; so do we, loudly.
            errors.Warn(path, message + "; it is marked is_optional, so it is skipped");
        }
        else
        {
            errors.Add(path, message);
        }
    }

    private static bool IsOptional(IMessage holder) =>
        holder is Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter { IsOptional: true };

    private static bool Fits(ExtensionCategory actual, ExtensionCategory slot) =>
        actual == slot
        || slot == ExtensionCategory.Other
        || (slot == ExtensionCategory.ListenerFilter && actual == ExtensionCategory.UdpListenerFilter);
}
