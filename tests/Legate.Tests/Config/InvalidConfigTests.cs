using Legate.Config;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Tests.Harness;

namespace Legate.Tests.Config;

/// <summary>
/// Invalid bootstraps through the whole loading path (file → reader → protoc-gen-validate rules →
/// extension checks → Envoy's semantic checks), each asserting every error's exact field path,
/// position and message.
/// </summary>
public sealed class InvalidConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-invalid-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void AdminBadAddress() => AssertErrors(
        "admin: {address: {socket_address: {address: \"::gg\", port_value: 9901}}}\n",
            "admin.address.socket_address.address (line 1, col 45): malformed IP address \"::gg\": a bound address must be an IPv4 or IPv6 literal");

    [Fact]
    public void BoolGarbage() => AssertErrors(
        Boot(clusters: Cluster(extra: "  respect_dns_ttl: maybe\n")),
            "static_resources.clusters[0].respect_dns_ttl (line 6, col 22): invalid bool \"maybe\"");

    [Fact]
    public void ClusterNameEmpty() => AssertErrors(
        Boot(clusters: Cluster().Replace("- name: c", "- name: \"\"")),
            "static_resources.clusters[0].name (line 3, col 11): value length must be at least 1 characters");

    [Fact]
    public void DanglingCluster() => AssertErrors(
        Boot(Listener(routes: "- match: {prefix: \"/\"}\n  route: {cluster: nowhere}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster (line 17, col 34): unknown cluster \"nowhere\": no static cluster has that name (set route_config.validate_clusters to false if it comes from CDS)");

    [Fact]
    public void DuplicateCluster() => AssertErrors(
        Boot(clusters: Cluster() + Cluster()),
            "static_resources.clusters[1].name (line 11, col 11): duplicate cluster name \"c\" (first defined at static_resources.clusters[0])");

    [Fact]
    public void DuplicateDomains() => AssertErrors(
        Boot(Listener().Replace("          - name: v\n            domains: [\"*\"]", "          - name: v\n            domains: [\"a.com\"]\n            routes: [{match: {prefix: \"/\"}, direct_response: {status: 200}}]\n          - name: w\n            domains: [\"A.com\"]")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[1].domains[0] (line 17, col 25): only unique values for domains are permitted: \"A.com\" is also at static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].domains[0]");

    [Fact]
    public void DuplicateFilterChainMatch() => AssertErrors(
        Boot(Listener(chainExtra: $"  - filter_chain_match: {{destination_port: 1}}\n    filters: [{{name: envoy.filters.network.http_connection_manager, typed_config: {{\"@type\": {HcmType}, stat_prefix: z, route_config: {{}}}}}}]\n").Replace("  - filters:\n", "  - filter_chain_match: {destination_port: 1}\n    filters:\n")),
            "static_resources.listeners[0].filter_chains[1].filter_chain_match (line 8, col 7): multiple filter chains with the same matching rules are defined (same as static_resources.listeners[0].filter_chains[0])");

    [Fact]
    public void DuplicateKey() => AssertErrors(
        "admin: {}\nadmin: {}\n",
            "(root) (line 2, col 1): invalid YAML: duplicate key \"admin\"");

    [Fact]
    public void DuplicateListener() => AssertErrors(
        Boot(Listener() + Listener(port: "10001")),
            "static_resources.listeners[1].name (line 21, col 11): duplicate listener name \"l\" (first defined at static_resources.listeners[0])");

    [Fact]
    public void DuplicateListenerAddress() => AssertErrors(
        Boot(Listener(name: "a") + Listener(name: "b")),
            "static_resources.listeners[1].address (line 22, col 5): listener address 127.0.0.1:10000 is already used by static_resources.listeners[0]");

    [Fact]
    public void DurationBareNumber() => AssertErrors(
        Boot(clusters: Cluster().Replace("connect_timeout: 1s", "connect_timeout: 5")),
            "static_resources.clusters[0].connect_timeout (line 5, col 22): invalid duration \"5\"");

    [Fact]
    public void DurationGarbage() => AssertErrors(
        Boot(clusters: Cluster().Replace("connect_timeout: 1s", "connect_timeout: soon")),
            "static_resources.clusters[0].connect_timeout (line 5, col 22): invalid duration \"soon\"");

    [Fact]
    public void EnumUndefinedNumber() => AssertErrors(
        Boot(clusters: Cluster(extra: "  lb_policy: 42\n")),
            "static_resources.clusters[0].lb_policy (line 6, col 16): value must be one of the defined enum values");

    [Fact]
    public void EnumUnknownName() => AssertErrors(
        Boot(clusters: Cluster(type: "STRICTDNS")),
            "static_resources.clusters[0].type (line 4, col 11): invalid value \"STRICTDNS\" for enum envoy.config.cluster.v3.Cluster.DiscoveryType (expected one of STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST)");

    [Fact]
    public void HcmNotLast() => AssertErrors(
        Boot(Listener(filters: $"    - name: first\n      typed_config: {{\"@type\": {HcmType}, stat_prefix: a, route_config: {{}}}}\n    - name: second\n      typed_config: {{\"@type\": {HcmType}, stat_prefix: b, route_config: {{}}}}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0] (line 7, col 9): terminal filter named \"first\" of type envoy.filters.network.http_connection_manager must be the last filter in a network filter chain");

    [Fact]
    public void HcmStatPrefixMissing() => AssertErrors(
        Boot(Listener().Replace("        stat_prefix: s\n", "")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix (line 8, col 9): value length must be at least 1 characters");

    [Fact]
    public void HeaderNameBad() => AssertErrors(
        Boot(Listener(vhostExtra: "            request_headers_to_add: [{header: {key: \"bad\\nheader\", value: v}}]\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].request_headers_to_add[0].header.key (line 15, col 55): value does not match regex pattern \"^[^\\x00\\n\\r]*$\"");

    [Fact]
    public void HealthCheckZeroTimeout() => AssertErrors(
        Boot(clusters: Cluster(extra: "  health_checks: [{timeout: 0s, interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {}}]\n")),
            "static_resources.clusters[0].health_checks[0].timeout (line 6, col 31): value must be greater than 0s");

    [Fact]
    public void Int64OutOfRange() => AssertErrors(
        Boot(clusters: Cluster(extra: "  per_connection_buffer_limit_bytes: 99999999999\n")),
            "static_resources.clusters[0].per_connection_buffer_limit_bytes (line 6, col 40): invalid uint32 \"99999999999\"");

    [Fact]
    public void ListForMessage() => AssertErrors(
        "admin: [1, 2]\n",
            "admin (line 1, col 1): expected a mapping for envoy.config.bootstrap.v3.Admin, got a sequence");

    [Fact]
    public void ListenerHostname() => AssertErrors(
        Boot(Listener(address: "localhost")),
            "static_resources.listeners[0].address.socket_address.address (line 4, col 41): malformed IP address \"localhost\": a bound address must be an IPv4 or IPv6 literal");

    [Fact]
    public void LogicalDnsTwoEndpoints() => AssertErrors(
        Boot(clusters: Cluster(type: "LOGICAL_DNS", endpoints: ["a.local", "b.local"])),
            "static_resources.clusters[0].load_assignment (line 6, col 5): LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint (found 2 endpoints in 1 localities)");

    [Fact]
    public void MappingForScalar() => AssertErrors(
        Boot(clusters: Cluster().Replace("- name: c", "- name: {a: 1}")),
            "static_resources.clusters[0].name (line 3, col 5): expected a scalar for string, got a mapping");

    [Fact]
    public void MatchWithoutPathSpecifier() => AssertErrors(
        Boot(Listener(routes: "- match: {case_sensitive: false}\n  direct_response: {status: 200}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].match.path_specifier (line 16, col 17): exactly one of \"prefix\", \"path\", \"safe_regex\", \"connect_matcher\", \"path_separated_prefix\", \"path_match_policy\" must be set");

    [Fact]
    public void MissingBodyFile() => AssertErrors(
        Boot(Listener(routes: "- match: {prefix: \"/\"}\n  direct_response: {status: 200, body: {filename: /nonexistent/body.txt}}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].direct_response.body.filename (line 17, col 65): missing file /nonexistent/body.txt");

    [Fact]
    public void MissingType() => AssertErrors(
        Boot(Listener(filters: "    - name: x\n      typed_config: {stat_prefix: s}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config (line 8, col 9): missing \"@type\" in google.protobuf.Any");

    [Fact]
    public void OneofConflict() => AssertErrors(
        Boot(Listener(routes: "- match: {prefix: \"/\", path: \"/x\"}\n  direct_response: {status: 200}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].match.path (line 16, col 44): only one of \"prefix\" and \"path\" may be set (oneof path_specifier)");

    [Fact]
    public void OriginalDstRoundRobin() => AssertErrors(
        "static_resources:\n  clusters:\n  - {name: o, type: ORIGINAL_DST, connect_timeout: 1s, lb_policy: ROUND_ROBIN}\n",
            "static_resources.clusters[0].lb_policy (line 3, col 67): LB policy ROUND_ROBIN is not valid for cluster type ORIGINAL_DST; only CLUSTER_PROVIDED is allowed");

    [Fact]
    public void PanicThresholdOver100() => AssertErrors(
        Boot(clusters: Cluster(extra: "  common_lb_config: {healthy_panic_threshold: {value: 150}}\n")),
            "static_resources.clusters[0].common_lb_config.healthy_panic_threshold.value (line 6, col 57): value must be inside range [0, 100]");

    [Fact]
    public void PortNegative() => AssertErrors(
        Boot(Listener(port: "-1")),
            "static_resources.listeners[0].address.socket_address.port_value (line 4, col 64): invalid uint32 \"-1\"");

    [Fact]
    public void PortNotNumber() => AssertErrors(
        Boot(Listener(port: "abc")),
            "static_resources.listeners[0].address.socket_address.port_value (line 4, col 64): invalid uint32 \"abc\"");

    [Fact]
    public void PortTooLarge() => AssertErrors(
        Boot(Listener(port: "70000")),
            "static_resources.listeners[0].address.socket_address.port_value (line 4, col 64): value must be less than or equal to 65535");

    [Fact]
    public void RepeatedNotUnique() => AssertErrors(
        Boot(Listener(routes: "- match: {prefix: \"/\"}\n  route: {cluster: c, internal_redirect_policy: {response_headers_to_copy: [x-a, x-a]}}\n"), Cluster()),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.internal_redirect_policy.response_headers_to_copy[1] (line 17, col 96): repeated value must contain unique items");

    [Fact]
    public void RouteWithoutAction() => AssertErrors(
        Boot(Listener(routes: "- match: {prefix: \"/\"}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].action (line 16, col 17): exactly one of \"route\", \"redirect\", \"direct_response\", \"filter_action\", \"non_forwarding_action\" must be set");

    [Fact]
    public void RouterAsNetworkFilter() => AssertErrors(
        Boot(Listener(filters: $"    - name: envoy.filters.http.router\n      typed_config: {{\"@type\": {RouterType}}}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config (line 8, col 9): type.googleapis.com/envoy.extensions.filters.http.router.v3.Router cannot be used as a network filter: it configures HTTP filter \"envoy.filters.http.router\"",
            "static_resources.listeners[0].filter_chains[0].filters[0] (line 7, col 9): non-terminal filter named \"envoy.filters.http.router\" of type envoy.filters.http.router is the last filter in a network filter chain; it needs a terminal filter (such as envoy.filters.network.tcp_proxy or envoy.filters.network.http_connection_manager) after it");

    [Fact]
    public void RouterNotLast() => AssertErrors(
        Boot(Listener(filters: $"    - name: envoy.filters.network.http_connection_manager\n      typed_config:\n        \"@type\": {HcmType}\n        stat_prefix: s\n        route_config: {{}}\n        http_filters:\n        - name: envoy.filters.http.router\n          typed_config: {{\"@type\": {RouterType}}}\n        - name: envoy.filters.http.router\n          typed_config: {{\"@type\": {RouterType}}}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0] (line 13, col 13): terminal filter named \"envoy.filters.http.router\" of type envoy.filters.http.router must be the last filter in an HTTP filter chain; filters after it would never run");

    [Fact]
    public void StaticHostname() => AssertErrors(
        Boot(clusters: Cluster(address: "backend.local")),
            "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address (line 10, col 58): malformed IP address \"backend.local\": a STATIC cluster needs IP addresses; use type STRICT_DNS or LOGICAL_DNS for host names");

    [Fact]
    public void TypedStructUnknown() => AssertErrors(
        Boot(Listener(filters: "    - name: x\n      typed_config:\n        \"@type\": type.googleapis.com/udpa.type.v1.TypedStruct\n        type_url: type.googleapis.com/envoy.nope.v3.Nope\n        value: {}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.type_url (line 10, col 21): unknown type URL \"type.googleapis.com/envoy.nope.v3.Nope\" in type_url");

    [Fact]
    public void UnknownFieldInCluster() => AssertErrors(
        Boot(clusters: Cluster(extra: "  conect_timeout: 1s\n")),
            "static_resources.clusters[0].conect_timeout (line 6, col 5): unknown field \"conect_timeout\" in envoy.config.cluster.v3.Cluster (did you mean \"connect_timeout\"?)");

    [Fact]
    public void UnknownFieldInTypedConfig() => AssertErrors(
        Boot(Listener(hcmExtra: "        stat_prefx: t\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefx (line 11, col 11): unknown field \"stat_prefx\" in envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager (did you mean \"stat_prefix\"?)");

    [Fact]
    public void UnknownFilterName() => AssertErrors(
        Boot(Listener(filters: "    - name: envoy.filters.network.nonexistent\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].name (line 7, col 15): unknown network filter \"envoy.filters.network.nonexistent\": no typed_config is given and no network filter has that name");

    [Fact]
    public void UnknownTopField() => AssertErrors(
        "static_resource: {}\n",
            "static_resource (line 1, col 1): unknown field \"static_resource\" in envoy.config.bootstrap.v3.Bootstrap (did you mean \"static_resources\"?)");

    [Fact]
    public void UnknownTypeUrl() => AssertErrors(
        Boot(Listener(filters: "    - name: x\n      typed_config: {\"@type\": type.googleapis.com/envoy.nope.v3.Nope}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config (line 8, col 33): unknown type URL \"type.googleapis.com/envoy.nope.v3.Nope\" in @type");

    [Fact]
    public void UnsupportedHttpFilter() => AssertErrors(
        Boot(Listener().Replace("        http_filters:\n", "        http_filters:\n        - name: envoy.filters.http.cors\n          typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config (line 20, col 13): HTTP filter \"envoy.filters.http.cors\" (type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors) is not supported yet");

    [Fact]
    public void VhostNameMissing() => AssertErrors(
        Boot(Listener().Replace("          - name: v\n            domains", "          - domains")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].name (line 13, col 15): value length must be at least 1 characters");

    [Fact]
    public void VhostWithoutDomains() => AssertErrors(
        Boot(Listener().Replace("            domains: [\"*\"]\n", "")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].domains (line 13, col 15): value must contain at least 1 item(s)");

    [Fact]
    public void WeightedClustersEmpty() => AssertErrors(
        Boot(Listener(routes: "- match: {prefix: \"/\"}\n  route: {weighted_clusters: {clusters: []}}\n")),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.weighted_clusters.clusters (line 17, col 45): value must contain at least 1 item(s)");

    [Fact]
    public void YamlSyntax() => AssertErrors(
        "static_resources:\n  clusters:\n  - name: a\n   type: STATIC\n",
            "(root) (line 4, col 4): invalid YAML: While parsing a block mapping, did not find expected key.");

    [Fact]
    public void PbTextIsRejectedWithAReason()
    {
        var path = Path.Combine(_dir, "bootstrap.pb_text");
        File.WriteAllText(path, "admin {}");

        var error = Assert.Throws<ConfigException>(() => BootstrapLoader.Load(path, null));

        Assert.Equal(
            $"(root): unable to load '{path}': the .pb_text (protobuf text format) is not supported; use YAML, JSON or binary .pb",
            Assert.Single(error.Errors).ToString());
    }

    [Fact]
    public void MissingFileIsReported()
    {
        var path = Path.Combine(_dir, "absent.yaml");

        var error = Assert.Throws<ConfigException>(() => BootstrapLoader.Load(path, null));

        Assert.StartsWith($"(root): unable to read file '{path}': ", Assert.Single(error.Errors).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ErrorsInConfigYamlOverlayAreMarked()
    {
        var path = Path.Combine(_dir, "base.yaml");
        File.WriteAllText(path, "admin: {address: {socket_address: {address: 127.0.0.1, port_value: 9901}}}\n");

        var error = Assert.Throws<ConfigException>(() => BootstrapLoader.Load(path, "admin: {address: {socket_address: {port_value: x}}}"));

        Assert.Equal(
            "admin.address.socket_address.port_value (line 1, col 48): in --config-yaml: invalid uint32 \"x\"",
            Assert.Single(error.Errors).ToString());
    }

    private void AssertErrors(string yaml, params string[] expected)
    {
        var path = Path.Combine(_dir, "envoy.yaml");
        File.WriteAllText(path, yaml);

        // What --mode validate does: load and check, then compile listeners (filter chain matching
        // is checked there, as Envoy checks it when it creates the listener).
        var error = Assert.Throws<ConfigException>(() =>
        {
            var options = CommandLineParser.Parse(["-c", path]);
            LegateServer.Create(options, BootstrapLoader.Load(path, null), LogManager.Create(options, new CapturingLogSink()));
        });

        Assert.Equal(expected, error.Errors.Select(e => e.ToString()).ToArray());
    }

    // Small Envoy bootstraps built from parts, so each case shows only what it breaks. Line and
    // column numbers in the expected errors refer to the text these produce.
    private const string HcmType = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
    private const string RouterType = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

    private static string Boot(string? listeners = null, string clusters = "")
    {
        var yaml = "static_resources:\n";
        if (listeners is not null)
        {
            yaml += "  listeners:\n" + Indent(listeners, "  ");
        }

        if (clusters.Length > 0)
        {
            yaml += "  clusters:\n" + Indent(clusters, "  ");
        }

        return yaml;
    }

    private static string Listener(
        string routes = "- match: {prefix: \"/\"}\n  direct_response: {status: 200}\n",
        string hcmExtra = "",
        string vhostExtra = "",
        string? filters = null,
        string name = "l",
        string address = "127.0.0.1",
        string port = "10000",
        string chainExtra = "")
    {
        filters ??= $"""
                - name: envoy.filters.network.http_connection_manager
                  typed_config:
                    "@type": {HcmType}
                    stat_prefix: s

            """ + hcmExtra + """
                    route_config:
                      virtual_hosts:
                      - name: v
                        domains: ["*"]

            """ + vhostExtra + "            routes:\n" + Indent(routes, "            ") + $$"""
                    http_filters:
                    - name: envoy.filters.http.router
                      typed_config: {"@type": {{RouterType}}}

            """;
        return $"- name: {name}\n  address: {{socket_address: {{address: {address}, port_value: {port}}}}}\n  filter_chains:\n{chainExtra}  - filters:\n{filters}";
    }

    private static string Cluster(string name = "c", string type = "STATIC", string address = "127.0.0.1", string extra = "", string[]? endpoints = null)
    {
        var lbEndpoints = string.Concat((endpoints ?? [address]).Select(a => $"      - endpoint: {{address: {{socket_address: {{address: {a}, port_value: 80}}}}}}\n"));
        return $"- name: {name}\n  type: {type}\n  connect_timeout: 1s\n{extra}  load_assignment:\n    cluster_name: {name}\n    endpoints:\n    - lb_endpoints:\n{lbEndpoints}";
    }

    private static string Indent(string text, string pad) =>
        string.Concat(text.TrimEnd('\n').Split('\n').Select(line => pad + line + "\n"));
}
