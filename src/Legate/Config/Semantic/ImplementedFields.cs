using System.Collections.Frozen;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Legate.Config.Semantic;

/// <summary>
/// Warns about every field that is set in the configuration but that Legate parses without acting
/// on yet, so an operator knows exactly what is ignored. The table lists, per message type, the
/// fields the runtime honours; a set field outside that list produces one warning per field path
/// (list indices folded, so a thousand clusters do not give a thousand warnings) and is not
/// descended into. A message type missing from the table is honoured whole.
/// Extend an entry in the same commit that implements the field.
/// </summary>
internal static partial class ImplementedFields
{
    private static readonly FrozenDictionary<string, FrozenSet<string>> s_fields = new Dictionary<string, string[]>
    {
        ["envoy.config.bootstrap.v3.Bootstrap"] = ["node", "static_resources", "admin", "stats_config", "dynamic_resources"],
        // xDS (Xds/): rate_limit_settings, REST and xDS-TP locators are not implemented.
        ["envoy.config.bootstrap.v3.Bootstrap.DynamicResources"] = ["lds_config", "cds_config", "ads_config"],
        ["envoy.config.core.v3.ConfigSource"] = ["path", "path_config_source", "api_config_source", "ads", "initial_fetch_timeout", "resource_api_version"],
        ["envoy.config.core.v3.PathConfigSource"] = ["path", "watched_directory"],
        ["envoy.config.core.v3.ApiConfigSource"] = ["api_type", "transport_api_version", "grpc_services", "set_node_on_first_message_only"],
        ["envoy.config.core.v3.GrpcService"] = ["envoy_grpc", "retry_policy"],
        ["envoy.config.core.v3.GrpcService.EnvoyGrpc"] = ["cluster_name"],
        ["envoy.config.core.v3.RetryPolicy"] = ["retry_back_off"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.Rds"] = ["config_source", "route_config_name"],
        ["envoy.config.cluster.v3.Cluster.EdsClusterConfig"] = ["eds_config", "service_name"],
        // Custom stats_tags, stats_matcher and histogram_bucket_settings come with the rest of issue 6.
        ["envoy.config.metrics.v3.StatsConfig"] = ["use_all_default_tags"],
        // admin.access_log: the server warns about it itself.
        ["envoy.config.bootstrap.v3.Admin"] = ["address", "access_log"],
        ["envoy.config.bootstrap.v3.Bootstrap.StaticResources"] = ["listeners", "clusters"],
        ["envoy.config.listener.v3.Listener"] =
            ["name", "address", "filter_chains", "default_filter_chain", "listener_filters", "per_connection_buffer_limit_bytes"],
        ["envoy.config.listener.v3.FilterChain"] = ["name", "filters", "transport_socket", "filter_chain_match"],
        ["envoy.config.listener.v3.Filter"] = ["name", "typed_config"],
        ["envoy.config.core.v3.SocketAddress"] = ["address", "port_value", "protocol"],
        // rds / scoped_routes: the connection manager warns itself (every request answers 404 NR).
        // drain_timeout is not honoured yet (Kestrel's HTTP/2 codec paces its own GOAWAYs), so it warns.
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"] =
            ["stat_prefix", "route_config", "rds", "scoped_routes", "http_filters", "codec_type", "server_name",
             "server_header_transformation", "strip_matching_host_port", "strip_any_host_port", "use_remote_address",
             "xff_num_trusted_hops", "skip_xff_append", "via", "generate_request_id", "preserve_external_request_id",
             "always_set_request_id_in_response", "max_request_headers_kb", "common_http_protocol_options",
             "http_protocol_options", "request_headers_timeout", "upgrade_configs", "http2_protocol_options",
             "local_reply_config", "stream_idle_timeout", "request_timeout", "normalize_path", "merge_slashes",
             "path_with_escaped_slashes_action", "add_user_agent", "internal_address_config", "delayed_close_timeout"],
        // unix_sockets: Legate listens on TCP only.
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.InternalAddressConfig"] = ["cidr_ranges"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.LocalReplyConfig"] = ["mappers", "body_format"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.ResponseMapper"] =
            ["filter", "status_code", "body", "body_format_override", "headers_to_add"],
        ["envoy.config.accesslog.v3.AccessLogFilter"] = ["status_code_filter", "response_flag_filter", "header_filter", "not_health_check_filter", "and_filter", "or_filter"],
        ["envoy.config.accesslog.v3.StatusCodeFilter"] = ["comparison"],
        ["envoy.config.accesslog.v3.ComparisonFilter"] = ["op", "value"],
        ["envoy.config.core.v3.RuntimeUInt32"] = ["default_value"],
        ["envoy.config.accesslog.v3.ResponseFlagFilter"] = ["flags"],
        ["envoy.config.accesslog.v3.HeaderFilter"] = ["header"],
        ["envoy.config.accesslog.v3.AndFilter"] = ["filters"],
        ["envoy.config.accesslog.v3.OrFilter"] = ["filters"],
        ["envoy.config.core.v3.SubstitutionFormatString"] = ["text_format", "text_format_source", "json_format", "content_type", "formatters"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig"] = ["upgrade_type", "enabled"],
        // The downstream HTTP/2 codec (Http/Http2/Http2CodecServer) maps these onto Kestrel's limits. Upstream
        // (ClusterInfo → Http2ConnectionPool) honours initial_stream_window_size and warns itself about the
        // other two, which the HTTP/2 client cannot apply.
        ["envoy.config.core.v3.Http2ProtocolOptions"] = ["max_concurrent_streams", "initial_stream_window_size", "initial_connection_window_size"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter"] = ["name", "typed_config", "is_optional"],
        // The connection manager honours all of these (max_connection_duration on HTTP/1.1 only: it warns
        // for HTTP/2); ClusterInfo warns about the ones it cannot apply to upstream connections.
        ["envoy.config.core.v3.HttpProtocolOptions"] =
            ["idle_timeout", "max_headers_count", "headers_with_underscores_action", "max_requests_per_connection", "max_stream_duration",
             "max_connection_duration"],
        ["envoy.config.core.v3.Http1ProtocolOptions"] = ["accept_http_10", "default_host_for_http_10", "allow_chunked_length", "enable_trailers"],
        ["envoy.extensions.filters.http.router.v3.Router"] = ["suppress_envoy_headers"],
        ["envoy.config.route.v3.RouteConfiguration"] =
            ["name", "virtual_hosts", "validate_clusters", "ignore_port_in_host_matching", "max_direct_response_body_size_bytes"],
        ["envoy.config.route.v3.VirtualHost"] = ["name", "domains", "routes", "typed_per_filter_config"],
        // A redirect action is answered 503 until the routing-actions issue.
        ["envoy.config.route.v3.Route"] = ["name", "match", "direct_response", "route", "typed_per_filter_config"],
        // Weighted clusters, cluster_header, rewrites, retries, mirroring, hash policies: the routing-actions issue.
        ["envoy.config.route.v3.RouteAction"] = ["cluster", "timeout", "cluster_not_found_response_code", "upgrade_configs"],
        ["envoy.config.route.v3.RouteAction.UpgradeConfig"] = ["upgrade_type", "enabled"],
        // Every criterion is evaluated by Router/Matching; path_match_policy and dynamic_metadata are
        // rejected there as not supported yet.
        // response_rate_limit, the *_runtime keys and filter_metadata are not implemented yet.
        ["envoy.extensions.filters.http.fault.v3.HTTPFault"] =
            ["delay", "abort", "upstream_cluster", "headers", "downstream_nodes", "max_active_faults", "disable_downstream_cluster_stats"],
        ["envoy.extensions.filters.common.fault.v3.FaultDelay"] = ["fixed_delay", "header_delay", "percentage"],
        ["envoy.extensions.filters.http.fault.v3.FaultAbort"] = ["http_status", "grpc_status", "header_abort", "percentage"],
        ["envoy.extensions.filters.http.buffer.v3.Buffer"] = ["max_request_bytes"],
        ["envoy.extensions.filters.http.buffer.v3.BufferPerRoute"] = ["disabled", "buffer"],
        ["envoy.config.route.v3.RouteMatch"] =
            ["prefix", "path", "safe_regex", "path_separated_prefix", "path_match_policy", "case_sensitive",
             "headers", "query_parameters", "grpc", "runtime_fraction", "tls_context", "dynamic_metadata"],
        ["envoy.config.route.v3.DirectResponseAction"] = ["status", "body"],
        ["envoy.config.core.v3.DataSource"] = ["inline_string", "inline_bytes", "filename", "environment_variable"],
        // lb_policy: ROUND_ROBIN; LEAST_REQUEST and RANDOM warn and use round robin; the rest are errors.
        // respect_dns_ttl is not here: the system resolver reports no TTLs.
        ["envoy.config.cluster.v3.Cluster"] =
            ["name", "type", "connect_timeout", "lb_policy", "load_assignment", "dns_refresh_rate",
             "dns_failure_refresh_rate", "dns_lookup_family", "wait_for_warm_on_init", "per_connection_buffer_limit_bytes",
             "typed_extension_protocol_options", "http_protocol_options", "http2_protocol_options",
             "common_http_protocol_options", "max_requests_per_connection", "protocol_selection", "eds_cluster_config"],
        ["envoy.config.cluster.v3.Cluster.RefreshRate"] = ["base_interval", "max_interval"],
        // policy (overprovisioning, drop_overloads) and named_endpoints come with EDS.
        ["envoy.config.endpoint.v3.ClusterLoadAssignment"] = ["cluster_name", "endpoints"],
        // load_balancing_weight of a locality matters only to locality-weighted load balancing.
        ["envoy.config.endpoint.v3.LocalityLbEndpoints"] = ["locality", "lb_endpoints", "priority"],
        ["envoy.config.endpoint.v3.LbEndpoint"] = ["endpoint", "health_status", "metadata", "load_balancing_weight"],
        // health_check_config comes with active health checking; additional_addresses with Happy Eyeballs.
        ["envoy.config.endpoint.v3.Endpoint"] = ["address", "hostname"],
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] =
            ["common_http_protocol_options", "explicit_http_config", "use_downstream_protocol_config", "auto_config"],
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig"] = ["http_protocol_options", "http2_protocol_options"],
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig"] = ["http_protocol_options", "http2_protocol_options"],
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions.AutoHttpConfig"] = ["http_protocol_options", "http2_protocol_options"],
    }.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.ToFrozenSet(StringComparer.Ordinal), StringComparer.Ordinal);

    /// <summary>The table: message full name → honoured field names.</summary>
    internal static IReadOnlyDictionary<string, FrozenSet<string>> Table => s_fields;

    public static void Warn(IMessage message, string path, ConfigErrors errors) =>
        Walk(message, path, errors, new HashSet<string>(StringComparer.Ordinal));

    private static void Walk(IMessage message, string path, ConfigErrors errors, HashSet<string> seen)
    {
        if (message is Any any)
        {
            // Extension configs: the extension checker already rejected unknown or unsupported ones.
            var descriptor = ApiTypes.FindByTypeUrl(any.TypeUrl);
            if (descriptor is not null)
            {
                Walk(descriptor.Parser.ParseFrom(any.Value), path, errors, seen);
            }

            return;
        }

        var fullName = message.Descriptor.FullName;
        s_fields.TryGetValue(fullName, out var honoured);
        foreach (var field in message.Descriptor.Fields.InDeclarationOrder())
        {
            if (honoured is not null && !honoured.Contains(field.Name) && ProtoFields.IsSet(message, field))
            {
                var fieldPath = FieldPath.Field(path, field.Name);
                if (seen.Add(Fold(fieldPath)))
                {
                    errors.Warn(fieldPath, $"field {fullName}.{field.Name} is parsed but not implemented yet; it is ignored");
                }
            }
        }

        // Descend only into honoured fields: an ignored field was warned about as a whole.
        MessageWalker.ForEachChild(
            message,
            path,
            (_, child, childPath, _) => Walk(child, childPath, errors, seen),
            honoured is null ? null : field => honoured.Contains(field.Name));
    }

    private static string Fold(string path) => IndexPattern().Replace(path, "[*]");

    [GeneratedRegex(@"\[\d+\]")]
    private static partial Regex IndexPattern();
}
