using System.Globalization;

namespace Legate.Tests.Harness;

/// <summary>Small bootstrap YAML snippets for tests. Port 0 means "any free port" (read it back from the harness).</summary>
internal static class TestConfigs
{
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
