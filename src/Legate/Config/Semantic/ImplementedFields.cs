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
        ["envoy.config.bootstrap.v3.Bootstrap"] = ["node", "static_resources", "admin", "stats_config", "layered_runtime", "stats_sinks", "stats_flush_interval", "dynamic_resources",
            "cluster_manager", "stats_server_version_override"],
        // outlier_detection (event log), upstream_bind_config, load_stats_config: not yet.
        ["envoy.config.bootstrap.v3.ClusterManager"] = ["local_cluster_name"],
        ["envoy.config.bootstrap.v3.LayeredRuntime"] = ["layers"],
        ["envoy.config.bootstrap.v3.RuntimeLayer"] = ["name", "static_layer", "admin_layer", "rtds_layer", "disk_layer"],
        ["envoy.config.bootstrap.v3.RuntimeLayer.RtdsLayer"] = ["name", "rtds_config"],
        ["envoy.config.metrics.v3.StatsConfig"] = ["use_all_default_tags", "stats_tags", "stats_matcher", "histogram_bucket_settings"],
        ["envoy.config.bootstrap.v3.Admin"] = ["address", "access_log", "access_log_path"],
        ["envoy.config.bootstrap.v3.Bootstrap.StaticResources"] = ["listeners", "clusters", "secrets"],
        // xDS (Xds/): xDS-TP locators are not implemented.
        ["envoy.config.bootstrap.v3.Bootstrap.DynamicResources"] = ["lds_config", "cds_config", "ads_config"],
        ["envoy.config.core.v3.ConfigSource"] = ["path", "path_config_source", "api_config_source", "ads", "initial_fetch_timeout", "resource_api_version"],
        ["envoy.config.core.v3.PathConfigSource"] = ["path", "watched_directory"],
        ["envoy.config.core.v3.ApiConfigSource"] = ["api_type", "transport_api_version", "grpc_services", "set_node_on_first_message_only", "cluster_names", "refresh_delay", "request_timeout", "rate_limit_settings"],
        ["envoy.config.core.v3.GrpcService"] = ["envoy_grpc", "retry_policy",
            // the OpenTelemetry tracer's exporter only (xDS streams have no deadline, as in Envoy).
            "timeout", "initial_metadata"],
        ["envoy.config.core.v3.GrpcService.EnvoyGrpc"] = ["cluster_name"],
        ["envoy.config.core.v3.RetryPolicy"] = ["retry_back_off"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.Rds"] = ["config_source", "route_config_name"],
        ["envoy.config.cluster.v3.Cluster.EdsClusterConfig"] = ["eds_config", "service_name"],
        ["envoy.config.listener.v3.Listener"] =
            ["name", "address", "filter_chains", "default_filter_chain", "listener_filters", "per_connection_buffer_limit_bytes",
             "access_log", "listener_filters_timeout", "continue_on_listener_filters_timeout", "traffic_direction",
             "bind_to_port", "use_original_dst", "stat_prefix", "tcp_backlog_size", "socket_options", "freebind", "additional_addresses", "transparent", "drain_type",
             "enable_reuse_port", "reuse_port", "ignore_global_conn_limit", "enable_mptcp",
             // Met by design: the accept loop takes one connection per accept call and hands it
             // off before the next, so any per-event limit (>= 1) holds.
             "max_connections_to_accept_per_socket_event", "filter_chain_matcher", "tcp_fast_open_queue_length"],
        ["envoy.config.listener.v3.ListenerFilter"] = ["name", "typed_config", "filter_disabled"],
        // metadata_match, upstream/downstream idle timeouts: not yet.
        ["envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"] =
            ["stat_prefix", "cluster", "weighted_clusters", "idle_timeout", "max_connect_attempts", "max_downstream_connection_duration", "tunneling_config", "on_demand",
             "access_log", "access_log_options", "flush_access_log_on_connected", "access_log_flush_interval", "hash_policy",
             "upstream_connect_mode", "max_early_data_bytes"],
        ["envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.TcpAccessLogOptions"] = ["flush_access_log_on_connected", "access_log_flush_interval"],
        // filter_state never yields a hash: Legate has no filter state objects.
        ["envoy.type.v3.HashPolicy"] = ["source_ip", "filter_state"],
        ["envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster"] = ["clusters"],
        ["envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight"] = ["name", "weight"],
        ["envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"] = ["initial_read_buffer_size", "enable_ja3_fingerprinting"],
        ["envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"] = ["allow_requests_without_proxy_protocol", "disallowed_versions", "stat_prefix", "rules", "pass_through_tlvs"],
        ["envoy.config.core.v3.ProxyProtocolConfig"] = ["version", "pass_through_tlvs"],
        ["envoy.config.listener.v3.FilterChain"] = ["name", "filters", "transport_socket", "filter_chain_match", "transport_socket_connect_timeout"],
        ["envoy.config.listener.v3.Filter"] = ["name", "typed_config"],
        ["envoy.config.core.v3.SocketAddress"] = ["address", "port_value", "protocol"],
        // rds / scoped_routes: the connection manager warns itself (every request answers 404 NR).
        // drain_timeout: the HTTP/2 grace period of max_connection_duration drains (Http2CodecServer).
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"] =
            ["stat_prefix", "route_config", "rds", "scoped_routes", "http_filters", "codec_type", "server_name",
             "server_header_transformation", "strip_matching_host_port", "strip_any_host_port", "strip_trailing_host_dot", "append_x_forwarded_port", "represent_ipv4_remote_address_as_ipv4_mapped_ipv6", "use_remote_address",
             "xff_num_trusted_hops", "skip_xff_append", "via", "generate_request_id", "preserve_external_request_id",
             "always_set_request_id_in_response", "max_request_headers_kb", "common_http_protocol_options",
             "http_protocol_options", "request_headers_timeout", "upgrade_configs", "http2_protocol_options",
             "local_reply_config", "stream_idle_timeout", "request_timeout", "normalize_path", "merge_slashes",
             "path_with_escaped_slashes_action", "add_user_agent", "internal_address_config", "delayed_close_timeout", "access_log", "tracing",
             "forward_client_cert_details", "set_current_client_cert_details", "proxy_100_continue", "drain_timeout",
             "original_ip_detection_extensions", "scheme_header_transformation", "early_header_mutation_extensions",
             "access_log_options", "access_log_flush_interval", "flush_access_log_on_new_request", "request_id_extension",
             "proxy_status_config", "stream_error_on_invalid_http_message", "add_proxy_protocol_connection_state"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.RequestIDExtension"] = ["typed_config"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.HcmAccessLogOptions"] =
            ["access_log_flush_interval", "flush_access_log_on_new_request", "flush_log_on_tunnel_successfully_established"],
        // match_upstream: :scheme to HTTP/2 upstreams always follows the upstream's transport (the
        // HTTP/2 client sends it from the connection's scheme), so it is what Legate does anyway.
        ["envoy.config.core.v3.SchemeHeaderTransformation"] = ["scheme_to_overwrite", "match_upstream"],
        // unix_sockets: Legate listens on TCP only.
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.InternalAddressConfig"] = ["cidr_ranges"],
        // Sampling only: the trace reason packed into x-request-id (no tracer yet; provider is an error as an unimplemented extension).
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing"] = ["client_sampling", "random_sampling", "overall_sampling", "provider", "custom_tags", "max_path_tag_length", "spawn_upstream_span"],
        ["envoy.config.trace.v3.Tracing.Http"] = ["name", "typed_config"],
        ["envoy.type.tracing.v3.CustomTag"] = ["tag", "literal", "environment", "request_header"],
        // HTTP_JSON only (HTTP_PROTO and GRPC are errors); trace_context_option is not in the API snapshot.
        // sampler: always_on only; resource_detectors: environment and static_config.
        ["envoy.config.trace.v3.OpenTelemetryConfig"] = ["http_service", "service_name", "grpc_service", "sampler", "resource_detectors"],
        ["envoy.extensions.tracers.opentelemetry.resource_detectors.v3.StaticConfigResourceDetectorConfig"] = ["attributes"],
        ["envoy.config.trace.v3.ZipkinConfig"] = ["collector_cluster", "collector_endpoint", "collector_endpoint_version", "collector_hostname", "shared_span_context", "trace_id_128bit", "split_spans_for_request"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.LocalReplyConfig"] = ["mappers", "body_format"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.ResponseMapper"] =
            ["filter", "status_code", "body", "body_format_override", "headers_to_add"],
        // metadata_filter, log_type_filter and extension_filter are rejected by AccessLog/AccessLogFilter.
        ["envoy.config.accesslog.v3.AccessLogFilter"] = ["status_code_filter", "response_flag_filter", "header_filter", "not_health_check_filter", "and_filter", "or_filter",
             "duration_filter", "traceable_filter", "runtime_filter", "grpc_status_filter"],
        ["envoy.config.accesslog.v3.AccessLog"] = ["name", "filter", "typed_config"],
        ["envoy.config.accesslog.v3.DurationFilter"] = ["comparison"],
        ["envoy.config.accesslog.v3.GrpcStatusFilter"] = ["statuses", "exclude"],
        // runtime_key: with no runtime layer overriding it, percent_sampled applies (Envoy's behaviour for an absent key).
        ["envoy.config.accesslog.v3.RuntimeFilter"] = ["runtime_key", "percent_sampled", "use_independent_randomness"],
        ["envoy.config.accesslog.v3.StatusCodeFilter"] = ["comparison"],
        ["envoy.config.accesslog.v3.ComparisonFilter"] = ["op", "value"],
        // runtime_key is read from the runtime by access log comparison filters.
        ["envoy.config.core.v3.RuntimeUInt32"] = ["default_value", "runtime_key"],
        ["envoy.config.accesslog.v3.ResponseFlagFilter"] = ["flags"],
        ["envoy.config.accesslog.v3.HeaderFilter"] = ["header"],
        ["envoy.config.accesslog.v3.AndFilter"] = ["filters"],
        ["envoy.config.accesslog.v3.OrFilter"] = ["filters"],
        ["envoy.config.core.v3.SubstitutionFormatString"] = ["text_format", "text_format_source", "json_format", "content_type", "formatters", "omit_empty_values"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig"] = ["upgrade_type", "enabled"],
        // The downstream HTTP/2 codec (Http/Http2/Http2CodecServer) maps these onto Kestrel's limits. Upstream
        // (ClusterInfo → Http2ConnectionPool) honours max_concurrent_streams, initial_stream_window_size and
        // hpack_table_size up to 4096, and warns itself about the connection window, which the client cannot apply.
        ["envoy.config.core.v3.Http2ProtocolOptions"] = ["max_concurrent_streams", "initial_stream_window_size", "initial_connection_window_size", "allow_connect", "connection_keepalive", "hpack_table_size"],
        // interval_jitter and connection_idle_interval: .NET's HTTP/2 stacks have no equivalent.
        ["envoy.config.core.v3.KeepaliveSettings"] = ["interval", "timeout"],
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter"] = ["name", "typed_config", "is_optional", "config_discovery"],
        // The connection manager honours all of these; ClusterInfo warns about the ones it cannot apply
        // to upstream connections.
        ["envoy.config.core.v3.HttpProtocolOptions"] =
            ["idle_timeout", "max_headers_count", "headers_with_underscores_action", "max_requests_per_connection", "max_stream_duration",
             "max_connection_duration"],
        ["envoy.config.core.v3.Http1ProtocolOptions"] = ["accept_http_10", "default_host_for_http_10", "allow_chunked_length", "enable_trailers", "override_stream_error_on_invalid_http_message"],
        ["envoy.extensions.filters.http.router.v3.Router"] = ["suppress_envoy_headers", "start_child_span", "dynamic_stats", "respect_expected_rq_timeout", "strict_check_headers", "suppress_grpc_request_failure_code_stats",
            "upstream_log", "upstream_log_options"],
        ["envoy.extensions.filters.http.router.v3.Router.UpstreamAccessLogOptions"] = ["flush_upstream_log_on_upstream_stream", "upstream_log_flush_interval"],
        ["envoy.config.route.v3.RouteConfiguration"] =
            ["name", "virtual_hosts", "validate_clusters", "ignore_port_in_host_matching", "max_direct_response_body_size_bytes",
             "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove", "most_specific_header_mutations_wins"],
        ["envoy.config.route.v3.VirtualHost"] = ["name", "domains", "routes", "typed_per_filter_config",
            "retry_policy", "include_request_attempt_count", "include_attempt_count_in_response", "request_mirror_policies",
            "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove",
            "hedge_policy"],
        ["envoy.config.route.v3.Route"] = ["name", "match", "direct_response", "route", "typed_per_filter_config", "redirect",
            "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove", "decorator",
            "tracing"],
        // Retries, mirroring, hash policies and max_stream_duration arrive stage by stage (the routing-actions issue).
        ["envoy.config.route.v3.RouteAction"] = ["cluster", "timeout", "cluster_not_found_response_code", "upgrade_configs",
            "cluster_header", "weighted_clusters", "prefix_rewrite", "regex_rewrite", "host_rewrite_literal", "auto_host_rewrite",
            "host_rewrite_header", "host_rewrite_path_regex", "append_x_forwarded_host", "priority", "idle_timeout", "retry_policy",
            "request_mirror_policies", "hash_policy", "max_stream_duration", "path_rewrite_policy", "internal_redirect_policy",
            // metadata_match: filter_metadata["envoy.lb"] for lb_subset_config.
            "metadata_match",
            "hedge_policy"],
        // initial_requests / additional_request_chance: Envoy documents them but does not implement them
        // (not-implemented-hide: one initial request, whatever they say); warned here rather than silently ignored.
        ["envoy.config.route.v3.HedgePolicy"] = ["hedge_on_per_try_timeout"],
        ["envoy.config.route.v3.RouteAction.RequestMirrorPolicy"] = ["cluster", "cluster_header", "runtime_fraction", "disable_shadow_host_suffix_append",
            "trace_sampled"],
        // retry_options_predicates: Envoy has no built-in extension of that category; ExtensionChecker rejects any entry.
        ["envoy.config.route.v3.RetryPolicy"] =
            ["retry_on", "num_retries", "per_try_timeout", "per_try_idle_timeout", "retry_host_predicate", "host_selection_retry_max_attempts", "retry_priority",
             "retriable_status_codes", "retry_back_off", "rate_limited_retry_back_off", "retriable_headers", "retriable_request_headers"],
        ["envoy.config.route.v3.WeightedCluster"] = ["clusters", "total_weight", "runtime_key_prefix", "header_name"],
        // metadata_match: merged over the route's (envoy.lb), as Envoy's mergeMatchCriteria.
        ["envoy.config.route.v3.WeightedCluster.ClusterWeight"] = ["name", "cluster_header", "weight", "typed_per_filter_config", "host_rewrite_literal",
            "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove", "metadata_match"],
        ["envoy.config.route.v3.RouteAction.UpgradeConfig"] = ["upgrade_type", "enabled", "connect_config"],
        // Presence terminates CONNECT (Router/ConnectTunnel).
        ["envoy.config.route.v3.RouteAction.UpgradeConfig.ConnectConfig"] = ["proxy_protocol_config", "allow_post"],
        // Every criterion is evaluated by Router/Matching (path_match_policy: the URI template matcher);
        // dynamic_metadata is rejected there as not supported yet.
        ["envoy.extensions.filters.http.fault.v3.HTTPFault"] =
            ["delay", "abort", "upstream_cluster", "headers", "downstream_nodes", "max_active_faults", "disable_downstream_cluster_stats",
             "delay_percent_runtime", "abort_percent_runtime", "delay_duration_runtime", "abort_http_status_runtime", "abort_grpc_status_runtime", "max_active_faults_runtime",
             "response_rate_limit", "response_rate_limit_percent_runtime", "filter_metadata"],
        ["envoy.extensions.filters.common.fault.v3.FaultRateLimit"] = ["fixed_limit", "header_limit", "percentage"],
        ["envoy.extensions.filters.common.fault.v3.FaultRateLimit.FixedLimit"] = ["limit_kbps"],
        ["envoy.extensions.filters.common.fault.v3.FaultDelay"] = ["fixed_delay", "header_delay", "percentage"],
        ["envoy.extensions.filters.http.fault.v3.FaultAbort"] = ["http_status", "grpc_status", "header_abort", "percentage"],
        ["envoy.extensions.filters.http.buffer.v3.Buffer"] = ["max_request_bytes"],
        // Tap: streamed traces (output_config.streaming) are not implemented yet.
        ["envoy.extensions.filters.http.tap.v3.Tap"] = ["common_config", "record_headers_received_time", "record_downstream_connection"],
        ["envoy.config.tap.v3.TapConfig"] = ["match_config", "match", "output_config", "tap_enabled"],
        ["envoy.config.tap.v3.OutputConfig"] = ["sinks", "max_buffered_rx_bytes", "max_buffered_tx_bytes"],
        ["envoy.extensions.filters.http.buffer.v3.BufferPerRoute"] = ["disabled", "buffer"],
        ["envoy.config.route.v3.RouteMatch"] =
            ["prefix", "path", "safe_regex", "path_separated_prefix", "path_match_policy", "connect_matcher", "case_sensitive",
             "headers", "query_parameters", "grpc", "runtime_fraction", "tls_context", "dynamic_metadata"],
        ["envoy.config.route.v3.DirectResponseAction"] = ["status", "body"],
        ["envoy.config.core.v3.DataSource"] = ["inline_string", "inline_bytes", "filename", "environment_variable"],
        // lb_policy: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV, CLUSTER_PROVIDED (ORIGINAL_DST); the rest are errors.
        // respect_dns_ttl and dns_resolvers: Legate's own DNS client (Upstream/DnsClient).
        ["envoy.config.cluster.v3.Cluster"] =
            ["name", "type", "connect_timeout", "lb_policy", "load_assignment", "dns_refresh_rate", "respect_dns_ttl", "dns_resolvers", "typed_dns_resolver_config",
             "dns_failure_refresh_rate", "dns_lookup_family", "wait_for_warm_on_init", "per_connection_buffer_limit_bytes",
             "typed_extension_protocol_options", "http_protocol_options", "http2_protocol_options",
             "common_http_protocol_options", "max_requests_per_connection", "protocol_selection",
             "common_lb_config", "least_request_lb_config", "ring_hash_lb_config", "maglev_lb_config", "round_robin_lb_config",
             "load_balancing_policy", "circuit_breakers", "outlier_detection", "health_checks", "eds_cluster_config",
             "transport_socket", "upstream_http_protocol_options", "transport_socket_matches",
             "cleanup_interval", "original_dst_lb_config", "lb_subset_config",
             // cluster_type: envoy.clusters.aggregate only (any other custom type is an error).
             "cluster_type"],
        // typed_dns_resolver_config: c-ares resolvers go to Legate's DNS client; getaddrinfo is the default resolver.
        ["envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig"] = ["resolvers"],
        ["envoy.extensions.network.dns_resolver.getaddrinfo.v3.GetAddrInfoDnsResolverConfig"] = [],
        ["envoy.config.cluster.v3.Cluster.LbSubsetConfig"] = ["fallback_policy", "default_subset", "subset_selectors", "locality_weight_aware",
            "scale_locality_weight", "panic_mode_any", "list_as_any", "metadata_fallback_policy"],
        ["envoy.config.cluster.v3.Cluster.LbSubsetConfig.LbSubsetSelector"] = ["keys", "fallback_policy", "fallback_keys_subset", "single_host_per_subset"],
        ["envoy.config.cluster.v3.Cluster.OriginalDstLbConfig"] = ["use_http_header", "http_header_name", "upstream_port_override", "metadata_key"],
        ["envoy.config.cluster.v3.Cluster.TransportSocketMatch"] = ["name", "match", "transport_socket"],
        // alt_port, transport_socket_match_criteria, custom checkers: not yet. event_logger: the file sink only.
        ["envoy.config.core.v3.HealthCheck"] =
            ["timeout", "interval", "initial_jitter", "interval_jitter", "interval_jitter_percent", "unhealthy_threshold",
             "healthy_threshold", "reuse_connection", "http_health_check", "tcp_health_check", "grpc_health_check",
             "custom_health_check", "no_traffic_interval", "no_traffic_healthy_interval", "unhealthy_interval",
             "unhealthy_edge_interval", "healthy_edge_interval", "event_log_path", "always_log_health_check_failures",
             "event_logger", "always_log_health_check_success"],
        // send (a request body): not yet.
        ["envoy.config.core.v3.HealthCheck.HttpHealthCheck"] =
            ["host", "path", "request_headers_to_add", "request_headers_to_remove", "expected_statuses", "codec_client_type", "method",
             "receive", "response_buffer_size", "retriable_statuses", "service_name_matcher"],
        // initial_metadata: not yet.
        ["envoy.config.core.v3.HealthCheck.GrpcHealthCheck"] = ["service_name", "authority"],
        // monitors (outlier detection extensions): not yet.
        ["envoy.config.cluster.v3.OutlierDetection"] =
            ["consecutive_5xx", "interval", "base_ejection_time", "max_ejection_percent", "enforcing_consecutive_5xx",
             "enforcing_success_rate", "success_rate_minimum_hosts", "success_rate_request_volume", "success_rate_stdev_factor",
             "consecutive_gateway_failure", "enforcing_consecutive_gateway_failure", "split_external_local_origin_errors",
             "consecutive_local_origin_failure", "enforcing_consecutive_local_origin_failure", "enforcing_local_origin_success_rate",
             "failure_percentage_threshold", "enforcing_failure_percentage", "enforcing_failure_percentage_local_origin",
             "failure_percentage_minimum_hosts", "failure_percentage_request_volume", "max_ejection_time", "max_ejection_time_jitter",
             "successful_active_health_check_uneject_host", "always_eject_one_host"],
        // per_host_thresholds: max_connections only, as Envoy (HTTP/1.1 pools). HTTP/2 clusters enforce max_requests (and retries) only.
        ["envoy.config.cluster.v3.CircuitBreakers"] = ["thresholds", "per_host_thresholds"],
        // zone_aware_lb_config: with cluster_manager.local_cluster_name (Upstream/ZoneRouting).
        ["envoy.config.cluster.v3.Cluster.CommonLbConfig"] = ["healthy_panic_threshold", "locality_weighted_lb_config", "consistent_hashing_lb_config", "zone_aware_lb_config",
            "ignore_new_hosts_until_first_hc", "close_connections_on_host_set_change", "update_merge_window"],
        // force_locality_direct_routing / force_local_zone: not in the pinned API snapshot (unknown fields).
        ["envoy.config.cluster.v3.Cluster.CommonLbConfig.ZoneAwareLbConfig"] = ["routing_enabled", "min_cluster_size", "fail_traffic_on_panic"],
        ["envoy.extensions.load_balancing_policies.common.v3.LocalityLbConfig.ZoneAwareLbConfig"] = ["routing_enabled", "min_cluster_size", "fail_traffic_on_panic"],
        ["envoy.config.cluster.v3.Cluster.CommonLbConfig.ConsistentHashingLbConfig"] = ["use_hostname_for_hashing", "hash_balance_factor"],
        ["envoy.config.cluster.v3.Cluster.RoundRobinLbConfig"] = ["slow_start_config"],
        ["envoy.config.cluster.v3.Cluster.LeastRequestLbConfig"] = ["choice_count", "active_request_bias", "slow_start_config"],
        // aggression: default_value and runtime_key (read live).
        ["envoy.config.cluster.v3.Cluster.SlowStartConfig"] = ["slow_start_window", "aggression", "min_weight_percent"],
        ["envoy.extensions.load_balancing_policies.common.v3.SlowStartConfig"] = ["slow_start_window", "aggression", "min_weight_percent"],
        ["envoy.config.cluster.v3.Cluster.RingHashLbConfig"] = ["minimum_ring_size", "hash_function", "maximum_ring_size"],
        ["envoy.config.cluster.v3.Cluster.MaglevLbConfig"] = ["table_size"],
        ["envoy.config.cluster.v3.LoadBalancingPolicy"] = ["policies"],
        ["envoy.config.cluster.v3.LoadBalancingPolicy.Policy"] = ["typed_extension_config"],
        ["envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"] = ["locality_lb_config", "slow_start_config"],
        ["envoy.extensions.load_balancing_policies.random.v3.Random"] = ["locality_lb_config"],
        ["envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest"] = ["choice_count", "active_request_bias", "locality_lb_config", "slow_start_config"],
        ["envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash"] =
            ["hash_function", "minimum_ring_size", "maximum_ring_size", "use_hostname_for_hashing", "hash_balance_factor", "consistent_hashing_lb_config", "locality_weighted_lb_config"],
        ["envoy.extensions.load_balancing_policies.subset.v3.Subset"] = ["fallback_policy", "default_subset", "subset_selectors", "allow_redundant_keys",
            "locality_weight_aware", "scale_locality_weight", "panic_mode_any", "list_as_any", "metadata_fallback_policy", "subset_lb_policy"],
        ["envoy.extensions.load_balancing_policies.subset.v3.Subset.LbSubsetSelector"] = ["keys", "fallback_policy", "fallback_keys_subset", "single_host_per_subset"],
        ["envoy.extensions.load_balancing_policies.maglev.v3.Maglev"] = ["table_size", "consistent_hashing_lb_config", "locality_weighted_lb_config"],
        ["envoy.extensions.load_balancing_policies.common.v3.LocalityLbConfig"] = ["locality_weighted_lb_config", "zone_aware_lb_config"],
        ["envoy.extensions.load_balancing_policies.common.v3.ConsistentHashingLbConfig"] = ["use_hostname_for_hashing", "hash_balance_factor"],
        ["envoy.config.cluster.v3.Cluster.RefreshRate"] = ["base_interval", "max_interval"],
        // named_endpoints come with EDS.
        ["envoy.config.endpoint.v3.ClusterLoadAssignment"] = ["cluster_name", "endpoints", "policy"],
        // endpoint_stale_after: not yet. The policy applies to static load_assignments and EDS assignments alike.
        ["envoy.config.endpoint.v3.ClusterLoadAssignment.Policy"] = ["overprovisioning_factor", "weighted_priority_health", "drop_overloads"],
        ["envoy.config.endpoint.v3.LocalityLbEndpoints"] = ["locality", "lb_endpoints", "priority", "load_balancing_weight"],
        ["envoy.config.endpoint.v3.LbEndpoint"] = ["endpoint", "health_status", "metadata", "load_balancing_weight"],
        // additional_addresses comes with Happy Eyeballs.
        ["envoy.config.endpoint.v3.Endpoint"] = ["address", "hostname", "health_check_config"],
        ["envoy.config.endpoint.v3.Endpoint.HealthCheckConfig"] = ["port_value", "hostname", "address", "disable_active_health_check"],
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] =
            ["common_http_protocol_options", "explicit_http_config", "use_downstream_protocol_config", "auto_config",
             "upstream_http_protocol_options"],
        ["envoy.config.core.v3.UpstreamHttpProtocolOptions"] = ["auto_sni", "auto_san_validation", "override_auto_sni_header"],
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig"] = ["http_protocol_options", "http2_protocol_options"],
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig"] = ["http_protocol_options", "http2_protocol_options"],
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions.AutoHttpConfig"] = ["http_protocol_options", "http2_protocol_options"],
        // TLS (Tls/): require_sni, ocsp_staple_policy and prefer_client_ciphers are not implemented and warn.
        // session_ticket_keys, session_timeout, ecdh_curves and signature_algorithms put the chain on the
        // OpenSSL engine (Tls/OpenSsl).
        ["envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"] =
            ["common_tls_context", "require_client_certificate", "disable_stateless_session_resumption",
             "disable_stateful_session_resumption", "full_scan_certs_on_sni_mismatch", "session_ticket_keys",
             "session_ticket_keys_sds_secret_config", "session_timeout"],
        ["envoy.extensions.transport_sockets.tls.v3.TlsSessionTicketKeys"] = ["keys"],
        // Upstream (Tls/ClientTlsContext): allow_renegotiation and enforce_rsa_key_usage have no .NET switch and warn.
        ["envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"] = ["common_tls_context", "sni", "max_session_keys"],
        ["envoy.extensions.transport_sockets.tls.v3.CommonTlsContext"] =
            ["tls_params", "tls_certificates", "tls_certificate_sds_secret_configs", "validation_context",
             "validation_context_sds_secret_config", "combined_validation_context", "alpn_protocols"],
        ["envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.CombinedCertificateValidationContext"] =
            ["default_validation_context", "validation_context_sds_secret_config"],
        // ecdh_curves and signature_algorithms: downstream only (the OpenSSL engine); ClientTlsContext warns upstream.
        ["envoy.extensions.transport_sockets.tls.v3.TlsParameters"] =
            ["tls_minimum_protocol_version", "tls_maximum_protocol_version", "cipher_suites", "ecdh_curves", "signature_algorithms"],
        ["envoy.extensions.transport_sockets.tls.v3.TlsCertificate"] =
            ["certificate_chain", "private_key", "pkcs12", "password", "watched_directory", "private_key_provider"],
        ["envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext"] =
            ["trusted_ca", "verify_certificate_spki", "verify_certificate_hash", "match_typed_subject_alt_names",
             "match_subject_alt_names", "crl", "allow_expired_certificate", "trust_chain_verification",
             "only_verify_leaf_cert_crl", "max_verify_depth", "watched_directory", "system_root_certs", "custom_validator_config"],
        ["envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig"] = ["name", "sds_config"],
        ["envoy.extensions.transport_sockets.tls.v3.Secret"] = ["name", "tls_certificate", "validation_context", "session_ticket_keys"],
    }.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.ToFrozenSet(StringComparer.Ordinal), StringComparer.Ordinal);

    // Fields ignored for a reason more precise than "not implemented yet" (message.field → why).
    private static readonly FrozenDictionary<string, string> s_reasons = new Dictionary<string, string>
    {
        ["envoy.config.route.v3.VirtualHost.cors"] =
            "a CORS policy takes effect only through the envoy.filters.http.cors filter, which Legate does not implement yet (Envoy without that filter ignores it too)",
        ["envoy.config.route.v3.HedgePolicy.initial_requests"] = "Envoy does not implement it either (one initial request is sent)",
        ["envoy.config.route.v3.HedgePolicy.additional_request_chance"] = "Envoy does not implement it either (one initial request is sent)",
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.path_normalization_options"] =
            "Envoy does not implement it either (not-implemented-hide in its API); use normalize_path, merge_slashes and path_with_escaped_slashes_action",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The table: message full name → honoured field names.</summary>
    internal static IReadOnlyDictionary<string, FrozenSet<string>> Table => s_fields;

    /// <summary>Warns about <paramref name="message"/>; a message <paramref name="skip"/> answers true for is not walked (already warned about).</summary>
    public static void Warn(IMessage message, string path, ConfigErrors errors, Func<IMessage, bool>? skip = null) =>
        new Walker(errors, skip).Walk(message, path);

    // Per message type in the table: which of its fields are descended into (one delegate per
    // type, not one per message walked).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Func<Google.Protobuf.Reflection.FieldDescriptor, bool>> s_descend = new(StringComparer.Ordinal);

    /// <summary>One walk: its state, and the child visitor as one delegate for the whole walk.</summary>
    private sealed class Walker
    {
        private readonly ConfigErrors _errors;
        private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
        private readonly Func<IMessage, bool>? _skip;
        private readonly Action<Google.Protobuf.Reflection.FieldDescriptor, IMessage, string, string?> _visitChild;

        public Walker(ConfigErrors errors, Func<IMessage, bool>? skip)
        {
            _errors = errors;
            _skip = skip;
            _visitChild = (_, child, childPath, _) => Walk(child, childPath);
        }

        public void Walk(IMessage message, string path)
        {
            if (_skip is not null && _skip(message))
            {
                return;
            }

            if (message is Any any)
            {
                // Extension configs: the extension checker already rejected unknown or unsupported ones.
                var descriptor = ApiTypes.FindByTypeUrl(any.TypeUrl);
                if (descriptor is not null)
                {
                    Walk(descriptor.Parser.ParseFrom(any.Value), path);
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
                    if (_seen.Add(Fold(fieldPath)))
                    {
                        _errors.Warn(fieldPath, s_reasons.TryGetValue(fullName + "." + field.Name, out var reason)
                            ? $"field {fullName}.{field.Name} is ignored: {reason}"
                            : $"field {fullName}.{field.Name} is parsed but not implemented yet; it is ignored");
                    }
                }
            }

            // Descend only into honoured fields: an ignored field was warned about as a whole.
            MessageWalker.ForEachChild(
                message,
                path,
                _visitChild,
                honoured is null ? null : s_descend.GetOrAdd(fullName, static (_, set) => field => set.Contains(field.Name), honoured),
                _skip);
        }
    }

    private static string Fold(string path) => IndexPattern().Replace(path, "[*]");

    [GeneratedRegex(@"\[\d+\]")]
    private static partial Regex IndexPattern();
}
