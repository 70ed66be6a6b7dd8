using System.Globalization;
using Legate.Tests.Harness;

namespace Legate.Tests.Tls;

/// <summary>YAML for TLS tests, in flow style so contexts can be composed inline.</summary>
internal static class TlsTestConfigs
{
    public const string DownstreamType = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
    public const string UpstreamType = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

    /// <summary><c>{certificate_chain: {filename}, private_key: {filename}}</c>.</summary>
    public static string Cert(TestCertificates.Issued issued) =>
        $"{{certificate_chain: {{filename: \"{issued.ChainPath}\"}}, private_key: {{filename: \"{issued.KeyPath}\"}}}}";

    /// <summary>A DownstreamTlsContext with <paramref name="certs"/> and extra common/downstream fields.</summary>
    public static string Downstream(string certs, string common = "", string downstream = "") =>
        $"{{\"@type\": \"{DownstreamType}\", common_tls_context: {{tls_certificates: [{certs}]{Prefix(common)}}}{Prefix(downstream)}}}";

    /// <summary>A filter chain: TLS transport (if given), match (if given) and an HCM answering with <paramref name="body"/> or routing to <paramref name="upstreamPort"/>.</summary>
    public static string Chain(string? tls, string body = "tls ok", string match = "", string hcmExtra = "", int upstreamPort = 0, string name = "") =>
        $$"""
            - {{(name.Length > 0 ? "name: " + name + "\n      " : string.Empty)}}{{(match.Length > 0 ? "filter_chain_match: " + match + "\n      " : string.Empty)}}{{(tls is null ? string.Empty : "transport_socket: {name: envoy.transport_sockets.tls, typed_config: " + tls + "}\n      ")}}filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: {{(name.Length > 0 ? name : "tls")}}
                  {{hcmExtra}}
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        {{(upstreamPort > 0 ? "route: { cluster: backend }" : "direct_response: { status: 200, body: { inline_string: \"" + body + "\" } }")}}
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router

        """;

    /// <summary>A bootstrap with an admin, one listener "tls" with <paramref name="chains"/>, and a backend cluster when <paramref name="upstreamPort"/> is set.</summary>
    public static string Bootstrap(string chains, int upstreamPort = 0, string listenerExtra = "", string staticExtra = "", string clusterExtra = "") =>
        TestConfigs.Admin() + $$"""
        static_resources:
          listeners:
          - name: tls
            address:
              socket_address: { address: 127.0.0.1, port_value: 0 }
            {{listenerExtra}}
            filter_chains:
        {{chains}}
        {{(upstreamPort > 0 ? Cluster(upstreamPort, clusterExtra) : string.Empty)}}
        {{staticExtra}}
        """;

    public static string Cluster(int port, string extra = "") =>
        $$"""
          clusters:
          - name: backend
            connect_timeout: 5s
            {{extra}}
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port.ToString(CultureInfo.InvariantCulture)}} } } }
        """;

    private static string Prefix(string fields) => fields.Length == 0 ? string.Empty : ", " + fields;
}
