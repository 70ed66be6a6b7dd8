using System.Globalization;
using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Upstream;

/// <summary>
/// lb_subset_config driven by the route's metadata_match (envoy.lb): the subset asked for, and
/// Envoy's fallback policies when there is none for the request.
/// </summary>
public sealed class SubsetLoadBalancerTests
{
    private static string Endpoint(int port, string version) =>
        $"        - {{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port.ToString(CultureInfo.InvariantCulture)} }} }} }}, metadata: {{ filter_metadata: {{ envoy.lb: {{ version: {version}, stage: prod }} }} }} }}\n";

    private static string Route(string prefix, string cluster, string? version) => version is null
        ? $"              - {{ match: {{ prefix: \"{prefix}\" }}, route: {{ cluster: {cluster} }} }}\n"
        : $"              - {{ match: {{ prefix: \"{prefix}\" }}, route: {{ cluster: {cluster}, metadata_match: {{ filter_metadata: {{ envoy.lb: {{ version: {version} }} }} }} }} }}\n";

    /// <summary>A route asking for stage prod, version v1, through one weighted cluster with its own version (or none).</summary>
    private static string Weighted(string prefix, string? version) =>
        $"              - {{ match: {{ prefix: \"{prefix}\" }}, route: {{ metadata_match: {{ filter_metadata: {{ envoy.lb: {{ stage: prod, version: v1 }} }} }}, weighted_clusters: {{ clusters: [ {{ name: subsets, weight: 1"
        + (version is null ? string.Empty : $", metadata_match: {{ filter_metadata: {{ envoy.lb: {{ version: {version} }} }} }}")
        + " } ] } } }\n";

    private static string Cluster(string name, string subsetConfig, int v1, int v2a, int v2b) => $$"""
          - name: {{name}}
            connect_timeout: 5s
            lb_subset_config: {{subsetConfig}}
            load_assignment:
              cluster_name: {{name}}
              endpoints:
              - lb_endpoints:
        {{Endpoint(v1, "v1")}}{{Endpoint(v2a, "v2")}}{{Endpoint(v2b, "v2")}}
        """;

    [Fact]
    public async Task TheRoutesMetadataMatchPicksItsSubsetAndTheFallbackPolicyServesTheRest()
    {
        await using var v1 = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("v1")));
        await using var v2a = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("v2a")));
        await using var v2b = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("v2b")));
        var yaml = TestConfigs.Admin() + $$"""
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
            {{Route("/v1", "subsets", "v1")}}{{Route("/v2", "subsets", "v2")}}{{Route("/v3", "subsets", "v3")}}{{Route("/none", "subsets", null)}}{{Route("/strict/v1", "strict", "v1")}}{{Route("/strict/v3", "strict", "v3")}}{{Weighted("/weighted/own", "v2")}}{{Weighted("/weighted/route", null)}}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
              clusters:
            {{Cluster("subsets", "{ fallback_policy: DEFAULT_SUBSET, default_subset: { version: v2 }, subset_selectors: [ { keys: [version] }, { keys: [stage, version] } ] }", v1.Port, v2a.Port, v2b.Port)}}
            {{Cluster("strict", "{ fallback_policy: NO_FALLBACK, subset_selectors: [ { keys: [version] } ] }", v1.Port, v2a.Port, v2b.Port)}}
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        using var client = TestHttp.CreateClient();

        async Task<List<string>> BodiesAsync(string path, int count)
        {
            var bodies = new List<string>();
            for (var i = 0; i < count; i++)
            {
                using var response = await client.GetAsync(legate.ListenerUri("web", path));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                bodies.Add(await response.Content.ReadAsStringAsync());
            }

            return bodies;
        }

        // version v1: its one host; v2: both v2 hosts, round robin within the subset.
        Assert.All(await BodiesAsync("/v1", 6), b => Assert.Equal("v1", b));
        var v2 = await BodiesAsync("/v2", 6);
        Assert.Equal(3, v2.Count(b => b == "v2a"));
        Assert.Equal(3, v2.Count(b => b == "v2b"));
        Assert.Equal(12, legate.Counter("cluster.subsets.lb_subsets_selected"));

        // A weighted cluster's metadata_match is merged over the route's: {stage: prod, version: v2}
        // (the {stage, version} selector's subset); without one the route's {stage: prod, version: v1}.
        var own = await BodiesAsync("/weighted/own", 4);
        Assert.Equal(2, own.Count(b => b == "v2a"));
        Assert.Equal(2, own.Count(b => b == "v2b"));
        Assert.All(await BodiesAsync("/weighted/route", 2), b => Assert.Equal("v1", b));
        Assert.Equal(18, legate.Counter("cluster.subsets.lb_subsets_selected"));

        // No subset for v3, and no criteria at all: DEFAULT_SUBSET (version v2) serves them.
        Assert.All(await BodiesAsync("/v3", 4), b => Assert.StartsWith("v2", b));
        Assert.All(await BodiesAsync("/none", 4), b => Assert.StartsWith("v2", b));
        Assert.Equal(8, legate.Counter("cluster.subsets.lb_subsets_fallback"));

        // Subsets: version=v1, version=v2, and the {stage, version} pairs: 4.
        Assert.Equal(4, legate.Gauge("cluster.subsets.lb_subsets_active"));
        Assert.Equal(4, legate.Counter("cluster.subsets.lb_subsets_created"));

        // NO_FALLBACK: a request without a subset gets no host (503, UH) and is not counted (Envoy counts fallbacks that found a host); one with a subset is served.
        Assert.All(await BodiesAsync("/strict/v1", 2), b => Assert.Equal("v1", b));
        using var strict = await client.GetAsync(legate.ListenerUri("web", "/strict/v3"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, strict.StatusCode);
        Assert.Equal("no healthy upstream", await strict.Content.ReadAsStringAsync());
        Assert.Equal(0, legate.Counter("cluster.strict.lb_subsets_fallback"));
    }
}
