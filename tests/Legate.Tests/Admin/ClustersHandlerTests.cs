using System.Globalization;
using System.Text.Json;
using Legate.Tests.Harness;

namespace Legate.Tests.Admin;

/// <summary>Admin <c>/clusters</c> in Envoy's text and JSON forms, against a running server.</summary>
public sealed class ClustersHandlerTests
{
    private static string Config(int port) => TestConfigs.Admin() + $$"""
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
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: shop }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: shop
            connect_timeout: 5s
            circuit_breakers:
              thresholds:
              - { max_requests: 5 }
              - { priority: HIGH, max_connections: 7 }
            load_assignment:
              cluster_name: shop
              endpoints:
              - locality: { region: eu, zone: eu-1a, sub_zone: rack9 }
                lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port.ToString(CultureInfo.InvariantCulture)}} } }, hostname: web-1 }
                  load_balancing_weight: 3
                  metadata: { filter_metadata: { envoy.lb: { canary: true } } }
              - priority: 1
                lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.2, port_value: 9 } } }
                  health_status: DEGRADED
        """;

    [Fact]
    public async Task TextLinesFollowEnvoysFormat()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port));
        using (var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/")))
        {
            Assert.Equal("ok", await response.Content.ReadAsStringAsync());
        }

        var text = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/clusters"));
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var host = $"shop::127.0.0.1:{upstream.Port}::";

        Assert.Contains("shop::default_priority::max_connections::1024", lines);
        Assert.Contains("shop::default_priority::max_pending_requests::1024", lines);
        Assert.Contains("shop::default_priority::max_requests::5", lines);
        Assert.Contains("shop::default_priority::max_retries::3", lines);
        Assert.Contains("shop::high_priority::max_connections::7", lines);
        Assert.Contains("shop::high_priority::max_requests::1024", lines);
        Assert.Contains("shop::added_via_api::false", lines);
        Assert.Contains(host + "cx_total::1", lines);
        Assert.Contains(host + "cx_connect_fail::0", lines);
        Assert.Contains(host + "rq_total::1", lines);
        Assert.Contains(host + "rq_success::1", lines);
        Assert.Contains(host + "rq_error::0", lines);
        Assert.Contains(host + "rq_active::0", lines);
        Assert.Contains(host + "rq_timeout::0", lines);
        Assert.Contains(host + "hostname::web-1", lines);
        Assert.Contains(host + "health_flags::healthy", lines);
        Assert.Contains(host + "weight::3", lines);
        Assert.Contains(host + "region::eu", lines);
        Assert.Contains(host + "zone::eu-1a", lines);
        Assert.Contains(host + "sub_zone::rack9", lines);
        Assert.Contains(host + "canary::true", lines);
        Assert.Contains(host + "priority::0", lines);
        Assert.Contains(host + "success_rate::-1", lines);
        Assert.Contains(host + "local_origin_success_rate::-1", lines);
        Assert.Contains("shop::127.0.0.2:9::health_flags::/degraded_eds_health", lines);
        Assert.Contains("shop::127.0.0.2:9::priority::1", lines);
        Assert.All(lines, line => Assert.StartsWith("shop::", line));
    }

    [Fact]
    public async Task JsonIsEnvoysClusterStatuses()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port));

        using var json = JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/clusters?format=json")));

        var cluster = Assert.Single(json.RootElement.GetProperty("cluster_statuses").EnumerateArray());
        Assert.Equal("shop", cluster.GetProperty("name").GetString());
        var thresholds = cluster.GetProperty("circuit_breakers").GetProperty("thresholds");
        Assert.Equal(5, thresholds[0].GetProperty("max_requests").GetInt32());
        Assert.Equal("HIGH", thresholds[1].GetProperty("priority").GetString());
        var hosts = cluster.GetProperty("host_statuses").EnumerateArray().ToArray();
        Assert.Equal(2, hosts.Length);
        Assert.Equal("127.0.0.1", hosts[0].GetProperty("address").GetProperty("socket_address").GetProperty("address").GetString());
        Assert.Equal("web-1", hosts[0].GetProperty("hostname").GetString());
        Assert.Equal(3, hosts[0].GetProperty("weight").GetInt32());
        Assert.Equal("eu-1a", hosts[0].GetProperty("locality").GetProperty("zone").GetString());
        Assert.Contains(hosts[0].GetProperty("stats").EnumerateArray(), s => s.GetProperty("name").GetString() == "rq_total");
        Assert.Equal("HEALTHY", hosts[0].GetProperty("health_status").GetProperty("eds_health_status").GetString());
        Assert.Equal("DEGRADED", hosts[1].GetProperty("health_status").GetProperty("eds_health_status").GetString());
        Assert.Equal(1, hosts[1].GetProperty("priority").GetInt32());
    }
}
