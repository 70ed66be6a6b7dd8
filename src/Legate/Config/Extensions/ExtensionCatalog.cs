using System.Collections.Frozen;

namespace Legate.Config.Extensions;

/// <summary>
/// Knows every Envoy extension of the API snapshot, by config type and by name.
/// Envoy picks an extension by the type URL of its typed_config; the <c>name</c> field only
/// matters when typed_config is absent. Names are derived from the config message's package
/// (<c>envoy.extensions.filters.http.router.v3.Router</c> → <c>envoy.filters.http.router</c>),
/// with a table for the extensions whose names do not follow that rule.
/// </summary>
internal static class ExtensionCatalog
{
    /// <summary>
    /// Extensions Legate implements. Adding an extension means adding its folder with its
    /// factory and its name here; every other known extension is rejected as "not supported yet".
    /// </summary>
    private static readonly FrozenSet<string> s_implemented = new[]
    {
        "envoy.filters.network.http_connection_manager",
        "envoy.filters.http.router",
        "envoy.filters.http.fault",
        "envoy.filters.http.buffer",
        "envoy.filters.http.tap",
        "envoy.transport_sockets.raw_buffer",
        "envoy.transport_sockets.tls",
        "envoy.transport_sockets.upstream_proxy_protocol",
        "envoy.filters.listener.tls_inspector",
        "envoy.filters.listener.http_inspector",
        "envoy.filters.listener.proxy_protocol",
        "envoy.filters.listener.original_dst",
        "envoy.filters.network.tcp_proxy",
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "envoy.access_loggers.file",
        "envoy.access_loggers.stdout",
        "envoy.access_loggers.stderr",
        "envoy.stat_sinks.statsd",
        "envoy.stat_sinks.dog_statsd",
        "envoy.load_balancing_policies.round_robin",
        "envoy.load_balancing_policies.least_request",
        "envoy.load_balancing_policies.random",
        "envoy.load_balancing_policies.ring_hash",
        "envoy.load_balancing_policies.maglev",
        "envoy.load_balancing_policies.subset",
        "envoy.tracers.zipkin",
        "envoy.tracers.opentelemetry",
        "envoy.tracers.opentelemetry.samplers.always_on",
        "envoy.tracers.opentelemetry.resource_detectors.environment",
        "envoy.tracers.opentelemetry.resource_detectors.static_config",
        "envoy.tracers.opentelemetry.resource_detectors.dynatrace",
        "envoy.path.match.uri_template.uri_template_matcher",
        "envoy.path.rewrite.uri_template.uri_template_rewriter",
        "envoy.internal_redirect_predicates.previous_routes",
        "envoy.internal_redirect_predicates.allow_listed_routes",
        "envoy.internal_redirect_predicates.safe_cross_scheme",
        "envoy.clusters.aggregate",
        "envoy.health_check.event_sinks.file",
        "envoy.network.dns_resolver.cares",
        "envoy.network.dns_resolver.getaddrinfo",
        "envoy.http.original_ip_detection.xff",
        "envoy.http.original_ip_detection.custom_header",
        "envoy.http.early_header_mutation.header_mutation",
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>Config types whose extension name is not derived from their package.</summary>
    private static readonly FrozenDictionary<string, string> s_namesByType = new Dictionary<string, string>
    {
        ["envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"] = "envoy.access_loggers.stdout",
        ["envoy.extensions.access_loggers.stream.v3.StderrAccessLog"] = "envoy.access_loggers.stderr",
        ["envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig"] = "envoy.access_loggers.http_grpc",
        ["envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig"] = "envoy.access_loggers.tcp_grpc",
        ["envoy.config.trace.v3.ZipkinConfig"] = "envoy.tracers.zipkin",
        ["envoy.config.trace.v3.DatadogConfig"] = "envoy.tracers.datadog",
        ["envoy.config.trace.v3.OpenTelemetryConfig"] = "envoy.tracers.opentelemetry",
        ["envoy.config.trace.v3.LightstepConfig"] = "envoy.tracers.lightstep",
        ["envoy.config.trace.v3.DynamicOtConfig"] = "envoy.tracers.dynamic_ot",
        ["envoy.config.trace.v3.SkyWalkingConfig"] = "envoy.tracers.skywalking",
        ["envoy.config.trace.v3.XRayConfig"] = "envoy.tracers.xray",
        ["envoy.config.trace.v3.OpenCensusConfig"] = "envoy.tracers.opencensus",
        ["envoy.extensions.tracers.opentelemetry.samplers.v3.AlwaysOnSamplerConfig"] = "envoy.tracers.opentelemetry.samplers.always_on",
        ["envoy.extensions.tracers.opentelemetry.samplers.v3.DynatraceSamplerConfig"] = "envoy.tracers.opentelemetry.samplers.dynatrace",
        ["envoy.extensions.tracers.opentelemetry.resource_detectors.v3.EnvironmentResourceDetectorConfig"] = "envoy.tracers.opentelemetry.resource_detectors.environment",
        ["envoy.extensions.tracers.opentelemetry.resource_detectors.v3.StaticConfigResourceDetectorConfig"] = "envoy.tracers.opentelemetry.resource_detectors.static_config",
        ["envoy.extensions.tracers.opentelemetry.resource_detectors.v3.DynatraceResourceDetectorConfig"] = "envoy.tracers.opentelemetry.resource_detectors.dynatrace",
        ["envoy.config.metrics.v3.StatsdSink"] = "envoy.stat_sinks.statsd",
        ["envoy.config.metrics.v3.DogStatsdSink"] = "envoy.stat_sinks.dog_statsd",
        ["envoy.config.metrics.v3.HystrixSink"] = "envoy.stat_sinks.hystrix",
        ["envoy.config.metrics.v3.MetricsServiceConfig"] = "envoy.stat_sinks.metrics_service",
        ["envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig"] = "envoy.filters.udp_listener.udp_proxy",
        ["envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig"] = "envoy.filters.udp.dns_filter",
        ["envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"] = "envoy.retry_host_predicates.previous_hosts",
        ["envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate"] = "envoy.retry_host_predicates.omit_canary_hosts",
        ["envoy.extensions.retry.host.omit_host_metadata.v3.OmitHostMetadataConfig"] = "envoy.retry_host_predicates.omit_host_metadata",
        ["envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig"] = "envoy.retry_priorities.previous_priorities",
        ["envoy.extensions.wasm.v3.WasmService"] = "envoy.bootstrap.wasm",
        ["envoy.extensions.network.socket_interface.v3.DefaultSocketInterface"] = "envoy.extensions.network.socket_interface.default_socket_interface",
        ["envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"] = "envoy.transport_sockets.tls",
        ["envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"] = "envoy.transport_sockets.tls",
        ["envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig"] = "envoy.path.match.uri_template.uri_template_matcher",
        ["envoy.extensions.path.rewrite.uri_template.v3.UriTemplateRewriteConfig"] = "envoy.path.rewrite.uri_template.uri_template_rewriter",
        ["envoy.extensions.internal_redirect.previous_routes.v3.PreviousRoutesConfig"] = "envoy.internal_redirect_predicates.previous_routes",
        ["envoy.extensions.internal_redirect.allow_listed_routes.v3.AllowListedRoutesConfig"] = "envoy.internal_redirect_predicates.allow_listed_routes",
        ["envoy.extensions.internal_redirect.safe_cross_scheme.v3.SafeCrossSchemeConfig"] = "envoy.internal_redirect_predicates.safe_cross_scheme",
        ["envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport"] = "envoy.transport_sockets.upstream_proxy_protocol",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Names Envoy used before the v3 naming scheme; real configs still carry them.</summary>
    private static readonly FrozenDictionary<string, string> s_legacyNames = new Dictionary<string, string>
    {
        ["envoy.router"] = "envoy.filters.http.router",
        ["envoy.http_connection_manager"] = "envoy.filters.network.http_connection_manager",
        ["envoy.tcp_proxy"] = "envoy.filters.network.tcp_proxy",
        ["envoy.listener.tls_inspector"] = "envoy.filters.listener.tls_inspector",
        ["envoy.listener.http_inspector"] = "envoy.filters.listener.http_inspector",
        ["envoy.listener.original_dst"] = "envoy.filters.listener.original_dst",
        ["envoy.listener.proxy_protocol"] = "envoy.filters.listener.proxy_protocol",
        ["envoy.cors"] = "envoy.filters.http.cors",
        ["envoy.fault"] = "envoy.filters.http.fault",
        ["envoy.lua"] = "envoy.filters.http.lua",
        ["envoy.gzip"] = "envoy.filters.http.gzip",
        ["envoy.buffer"] = "envoy.filters.http.buffer",
        ["envoy.health_check"] = "envoy.filters.http.health_check",
        ["envoy.grpc_web"] = "envoy.filters.http.grpc_web",
        ["envoy.ext_authz"] = "envoy.filters.http.ext_authz",
        ["envoy.file_access_log"] = "envoy.access_loggers.file",
        ["envoy.zipkin"] = "envoy.tracers.zipkin",
        ["envoy.statsd"] = "envoy.stat_sinks.statsd",
        ["tls"] = "envoy.transport_sockets.tls",
        ["raw_buffer"] = "envoy.transport_sockets.raw_buffer",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Every extension by name: built from every descriptor, so only on a name outside the table above.</summary>
    private static readonly Lazy<Catalog> s_catalog = new(Build);

    /// <summary>
    /// Extensions found by name without the full catalog (which needs every descriptor): the ones
    /// configs commonly name without a typed_config.
    /// </summary>
    private static readonly FrozenDictionary<string, string> s_wellKnownConfigTypes = new Dictionary<string, string>
    {
        ["envoy.filters.http.router"] = "envoy.extensions.filters.http.router.v3.Router",
        ["envoy.filters.network.http_connection_manager"] = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        ["envoy.transport_sockets.raw_buffer"] = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The extension configured by a message of type <paramref name="configType"/> (full proto name), if any.</summary>
    public static ExtensionInfo? FindByConfigType(string configType)
    {
        var name = NameOf(configType);
        return name is null ? null : new ExtensionInfo(name, CategoryOf(name), configType, s_implemented.Contains(name));
    }

    /// <summary>The extension called <paramref name="name"/> (canonical or legacy name), if any.</summary>
    public static ExtensionInfo? FindByName(string name)
    {
        var canonicalName = s_legacyNames.GetValueOrDefault(name, name);
        if (s_wellKnownConfigTypes.TryGetValue(canonicalName, out var configType))
        {
            return FindByConfigType(configType);
        }

        return s_catalog.Value.ByName.GetValueOrDefault(canonicalName);
    }

    /// <summary>Derives the extension name of a config type, or null when it configures no extension.</summary>
    internal static string? NameOf(string configType)
    {
        if (s_namesByType.TryGetValue(configType, out var name))
        {
            return name;
        }

        const string prefix = "envoy.extensions.";
        if (!configType.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }

        // envoy.extensions.<path>.v3[alpha].<Message> → envoy.<path>
        var parts = configType[prefix.Length..].Split('.');
        var version = Array.FindLastIndex(parts, p => p.Length >= 2 && p[0] == 'v' && char.IsDigit(p[1]));
        if (version <= 0)
        {
            return null;
        }

        var path = string.Join('.', parts, 0, version);

        // Upstream protocol options are keyed by their full type name in typed_extension_protocol_options.
        if (path.StartsWith("upstreams.", StringComparison.Ordinal))
        {
            return configType;
        }

        return "envoy." + path;
    }

    internal static ExtensionCategory CategoryOf(string name) => name switch
    {
        _ when name.StartsWith("envoy.filters.listener.", StringComparison.Ordinal) => ExtensionCategory.ListenerFilter,
        _ when name.StartsWith("envoy.filters.udp_listener.", StringComparison.Ordinal) => ExtensionCategory.UdpListenerFilter,
        _ when name.StartsWith("envoy.filters.udp.", StringComparison.Ordinal) => ExtensionCategory.UdpListenerFilter,
        _ when name.StartsWith("envoy.filters.network.", StringComparison.Ordinal) => ExtensionCategory.NetworkFilter,
        _ when name.StartsWith("envoy.filters.http.", StringComparison.Ordinal) => ExtensionCategory.HttpFilter,
        _ when name.StartsWith("envoy.transport_sockets.", StringComparison.Ordinal) => ExtensionCategory.TransportSocket,
        _ when name.StartsWith("envoy.access_loggers.", StringComparison.Ordinal) => ExtensionCategory.AccessLogger,
        _ when name.StartsWith("envoy.tracers.", StringComparison.Ordinal) => ExtensionCategory.Tracer,
        _ when name.StartsWith("envoy.stat_sinks.", StringComparison.Ordinal) => ExtensionCategory.StatSink,
        _ when name.StartsWith("envoy.clusters.", StringComparison.Ordinal) => ExtensionCategory.Cluster,
        _ when name.StartsWith("envoy.extensions.upstreams.", StringComparison.Ordinal) => ExtensionCategory.UpstreamProtocolOptions,
        _ => ExtensionCategory.Other,
    };

    private static Catalog Build()
    {
        var byName = new Dictionary<string, ExtensionInfo>(StringComparer.Ordinal);
        foreach (var (fullName, descriptor) in ApiTypes.Messages)
        {
            // Only top-level messages configure extensions; nested ones are parts of them.
            if (descriptor.ContainingType is not null)
            {
                continue;
            }

            var name = NameOf(fullName);
            if (name is null)
            {
                continue;
            }

            var info = new ExtensionInfo(name, CategoryOf(name), fullName, s_implemented.Contains(name));

            // Several messages live in one extension's package (helpers, per-route configs); the name
            // maps to the message that looks like the main config: the first seen, unless an
            // explicit table entry names it.
            if (!byName.ContainsKey(name) || s_namesByType.ContainsKey(fullName))
            {
                byName[name] = info;
            }
        }

        return new Catalog(byName.ToFrozenDictionary(StringComparer.Ordinal));
    }

    private sealed record Catalog(FrozenDictionary<string, ExtensionInfo> ByName);
}
