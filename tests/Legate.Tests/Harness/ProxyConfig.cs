using System.Globalization;

namespace Legate.Tests.Harness;

/// <summary>
/// A bootstrap with one HTTP listener (<c>web</c>, stat prefix <c>web</c>) whose catch-all route
/// goes to cluster <c>backend</c> (one endpoint), for data-path tests. Every <c>string</c> property
/// is YAML spliced in at its level, written without indentation (the builder indents it).
/// </summary>
internal sealed record ProxyConfig(int UpstreamPort)
{
    public string UpstreamAddress { get; init; } = "127.0.0.1";

    /// <summary>Extra HttpConnectionManager fields.</summary>
    public string Hcm { get; init; } = "";

    /// <summary>Extra fields of the catch-all <c>route</c> action, flow style (<c>timeout: 1s, upgrade_configs: [...]</c>).</summary>
    public string Route { get; init; } = "";

    /// <summary>Routes placed before the catch-all (a YAML list).</summary>
    public string Routes { get; init; } = "";

    /// <summary>Extra <c>route_config</c> fields (e.g. <c>validate_clusters: false</c>).</summary>
    public string RouteConfig { get; init; } = "";

    /// <summary>Extra fields of cluster <c>backend</c>.</summary>
    public string Cluster { get; init; } = "";

    /// <summary>Extra clusters (a YAML list).</summary>
    public string Clusters { get; init; } = "";

    /// <summary>Extra listener fields.</summary>
    public string Listener { get; init; } = "";

    /// <summary>Extra router filter config fields (flow style), e.g. <c>suppress_envoy_headers: true</c>.</summary>
    public string Router { get; init; } = "";

    public string ConnectTimeout { get; init; } = "5s";

    public string Codec { get; init; } = "AUTO";

    /// <summary>Top-level bootstrap fields (e.g. <c>layered_runtime</c>).</summary>
    public string Bootstrap { get; init; } = "";

    /// <summary>HTTP filters before the router (a YAML list).</summary>
    public string HttpFilters { get; init; } = "";

    public string Build() => TestConfigs.Admin() + Indent(Bootstrap, 0) + (Bootstrap.Length > 0 ? "\n" : "") + $$"""
        static_resources:
          listeners:
          - name: web
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        {{Indent(Listener, 4)}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  codec_type: {{Codec}}
        {{Indent(Hcm, 10)}}
                  route_config:
        {{Indent(RouteConfig, 12)}}
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
        {{Indent(Routes, 14)}}
                      - match: { prefix: "/" }
                        route: { cluster: backend{{(Route.Length > 0 ? ", " + Route : "")}} }
                  http_filters:
        {{Indent(HttpFilters, 10)}}
                  - name: envoy.filters.http.router
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router{{(Router.Length > 0 ? ", " + Router : "")}} }
          clusters:
          - name: backend
            connect_timeout: {{ConnectTimeout}}
        {{Indent(Cluster, 4)}}
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: {{UpstreamAddress}}, port_value: {{UpstreamPort.ToString(CultureInfo.InvariantCulture)}} } } }
        {{Indent(Clusters, 2)}}
        """;

    public override string ToString() => Build();

    private static string Indent(string text, int spaces)
    {
        if (text.Length == 0)
        {
            return string.Empty;
        }

        var pad = new string(' ', spaces);
        return string.Join("\n", text.Trim('\n').Split('\n').Select(l => pad + l));
    }
}
