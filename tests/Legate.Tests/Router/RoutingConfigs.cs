using System.Globalization;
using System.Text;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>Bootstraps for routing tests: one listener "web" with the given virtual hosts, and STATIC clusters.</summary>
internal static class RoutingConfigs
{
    /// <param name="virtualHosts">YAML of the virtual_hosts list items (at column 0).</param>
    /// <param name="clusters">Cluster name → upstream ports (one endpoint each).</param>
    /// <param name="routeConfigExtra">Extra route_config fields (at column 0).</param>
    public static string Build(string virtualHosts, IReadOnlyList<(string Name, int[] Ports)> clusters, string routeConfigExtra = "", string hcmExtra = "", string clusterExtra = "")
    {
        var yaml = new StringBuilder(TestConfigs.Admin());
        yaml.Append("""
            static_resources:
              listeners:
              - name: web
                address:
                  socket_address: { address: 127.0.0.1, port_value: 0 }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: web

            """);
        yaml.Append(Indent(hcmExtra, 10));
        yaml.Append("""
                      route_config:
                        virtual_hosts:

            """);
        yaml.Append(Indent(virtualHosts, 12));
        yaml.Append(Indent(routeConfigExtra, 12));
        yaml.Append("""
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
              clusters:

            """);
        foreach (var (name, ports) in clusters)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"""
                  - name: {name}
                    connect_timeout: 2s

                """);
            yaml.Append(Indent(clusterExtra, 4));
            yaml.Append(CultureInfo.InvariantCulture, $"""
                    load_assignment:
                      cluster_name: {name}
                      endpoints:
                      - lb_endpoints:

                """);
            foreach (var port in ports)
            {
                yaml.Append(CultureInfo.InvariantCulture, $"        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}\n");
            }
        }

        return yaml.ToString();
    }

    /// <summary>A single virtual host "all" for every domain with the given routes (YAML list items at column 0).</summary>
    public static string AllDomains(string routes, string virtualHostExtra = "") =>
        "- name: all\n  domains: [\"*\"]\n" + Indent(virtualHostExtra, 2) + "  routes:\n" + Indent(routes, 2);

    public static string Indent(string text, int spaces)
    {
        if (text.Length == 0)
        {
            return text;
        }

        var pad = new string(' ', spaces);
        var lines = text.TrimEnd('\n').Split('\n');
        var result = new StringBuilder();
        foreach (var line in lines)
        {
            result.Append(line.Length == 0 ? line : pad + line).Append('\n');
        }

        return result.ToString();
    }

    public static long Counter(InProcessLegate legate, string name) => legate.Server.Stats.Counter(name).Value;

    public static long Gauge(InProcessLegate legate, string name) => legate.Server.Stats.Gauge(name, Legate.Stats.ImportMode.Accumulate).Value;

    public static async Task WaitUntilAsync(Func<bool> condition, string? what = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"condition not met within 30 s{(what is null ? "" : ": " + what)}");
            await Task.Delay(10);
        }
    }
}
