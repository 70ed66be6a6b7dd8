using System.Globalization;

namespace Legate.Tests.Harness;

/// <summary>Small bootstrap YAML snippets for tests. Port 0 means "any free port" (read it back from the harness).</summary>
internal static class TestConfigs
{
    /// <summary>
    /// Cluster fields (at the cluster's level, unindented) that make the cluster speak HTTP/2 (h2c)
    /// upstream: <c>explicit_http_config</c> with <c>http2_protocol_options</c>.
    /// </summary>
    public const string Http2UpstreamCluster = """
        typed_extension_protocol_options:
          envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
            "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
            explicit_http_config:
              http2_protocol_options: {}
        """;

    /// <summary>An admin on 127.0.0.1.</summary>
    public static string Admin(int port = 0) =>
        $"""
        admin:
          address:
            socket_address: {"{"} address: 127.0.0.1, port_value: {port.ToString(CultureInfo.InvariantCulture)} {"}"}

        """;

    /// <summary>A listener whose HCM answers every request with a direct response.</summary>
    public static string DirectResponseListener(string name, int port = 0, int status = 200, string body = "hello\n", string extraHcm = "") =>
        $$"""
          - name: {{name}}
            address:
              socket_address: { address: 127.0.0.1, port_value: {{port.ToString(CultureInfo.InvariantCulture)}} }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: {{name}}
        {{Indent(extraHcm, 10)}}
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        direct_response:
                          status: {{status.ToString(CultureInfo.InvariantCulture)}}
                          body: { inline_string: "{{body.Replace("\n", "\\n", StringComparison.Ordinal)}}" }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router

        """;

    /// <summary>
    /// An admin plus listener "web" (HTTP connection manager with <paramref name="hcmExtra"/>) routing
    /// every path to cluster "backend" on <paramref name="upstreamPort"/>; <paramref name="routeExtra"/>
    /// continues the route action (", timeout: 0s"); <paramref name="node"/> goes before static_resources.
    /// </summary>
    public static string ProxyToUpstream(int upstreamPort, string hcmExtra, string routeExtra = "", string node = "") =>
        Admin() + node + $$"""
        static_resources:
          listeners:
          - name: web
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  {{hcmExtra}}
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: backend {{routeExtra}} }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
          clusters:
          - name: backend
            connect_timeout: 1s
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstreamPort.ToString(CultureInfo.InvariantCulture)}} } } }
        """;

    /// <summary>An admin plus one direct-response listener, all on free ports.</summary>
    public static string Simple(string listenerName = "test", int listenerPort = 0, int adminPort = 0) =>
        Admin(adminPort) + "static_resources:\n  listeners:\n" + DirectResponseListener(listenerName, listenerPort);

    private static string Indent(string text, int spaces)
    {
        if (text.Length == 0)
        {
            return string.Empty;
        }

        var pad = new string(' ', spaces);
        return string.Join("\n", text.TrimEnd('\n').Split('\n').Select(l => pad + l));
    }
}
