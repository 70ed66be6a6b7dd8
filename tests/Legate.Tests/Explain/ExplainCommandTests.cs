using Legate.Tests.Harness;

namespace Legate.Tests.Explain;

/// <summary><c>legate explain</c> through the real executable: what it prints and its exit codes.</summary>
public sealed class ExplainCommandTests : IDisposable
{
    private const string Config = """
        static_resources:
          listeners:
          - name: public
            address: { socket_address: { address: 127.0.0.1, port_value: 8080 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: public
                  route_config:
                    validate_clusters: false
                    virtual_hosts:
                    - name: api
                      domains: ["api.example.com"]
                      routes:
                      - name: canary
                        match:
                          prefix: "/v1/"
                          headers: [{ name: x-canary, present_match: true }]
                        route: { cluster: canary }
                      - name: admin
                        match: { path: "/v1/admin" }
                        direct_response: { status: 403 }
                      - name: v1
                        match: { prefix: "/v1/" }
                        route: { cluster: api_v1, prefix_rewrite: "/" }
                    - name: shop
                      domains: ["shop.example.com"]
                      routes:
                      - name: old
                        match: { prefix: "/old/" }
                        redirect: { https_redirect: true, prefix_rewrite: "/new/" }
                      - name: split
                        match: { prefix: "/" }
                        route:
                          weighted_clusters:
                            clusters:
                            - { name: blue, weight: 90 }
                            - { name: green, weight: 10 }
                    - name: fallback
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        direct_response: { status: 200 }
                  http_filters:
                  - name: envoy.filters.http.router
        """;

    private readonly string _path = Path.Combine(Path.GetTempPath(), $"legate-explain-{Guid.NewGuid():N}.yaml");

    public ExplainCommandTests() => File.WriteAllText(_path, Config);

    public void Dispose() => File.Delete(_path);

    [Fact]
    public async Task ExplainsTheRouteAndWhyEarlierRoutesMissed()
    {
        await using var legate = LegateProcess.Start("explain", "-c", _path, "--port", "8080", "GET", "http://api.example.com/v1/users?page=2");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Equal(
            [
                "listener:      static_resources.listeners[0] 'public' (127.0.0.1:8080; port 8080 from --port)",
                "filter chain:  filter_chains[0] (for a plaintext connection from 127.0.0.1)",
                "virtual host:  [0] 'api' (domains: api.example.com; authority 'api.example.com')",
                "  skipped route [0] 'canary': header: header x-canary present (header missing)",
                "  skipped route [1] 'admin': path: path '/v1/admin' does not match path '/v1/users'",
                "route:         [2] 'v1' (match: prefix \"/v1/\")",
                "action:        route to cluster 'api_v1'; timeout 15s (default); prefix_rewrite \"/\"",
                "cluster:       'api_v1'",
                "path:          '/v1/users?page=2' → '/users?page=2' (prefix rewritten to \"/\"; x-envoy-original-path keeps the original)",
            ],
            legate.Stdout.Lines);
    }

    [Fact]
    public async Task ExplainsARedirectsLocation()
    {
        await using var legate = LegateProcess.Start("explain", "-c", _path, "--port", "8080", "GET", "http://shop.example.com/old/cart?x=1");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Contains("redirect:      301 location: https://shop.example.com/new/cart?x=1", legate.Stdout.Lines);
    }

    [Fact]
    public async Task ExplainsWeightedClustersAsARandomPickPerRequest()
    {
        // Envoy picks on the stream's random value, a fresh draw per request: an x-request-id does not decide it.
        await using var legate = LegateProcess.Start("explain", "-c", _path, "--port", "8080", "-H", "x-request-id: 0000005f-0000-4000-8000-000000000000", "GET", "http://shop.example.com/pay");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Contains("clusters:      weighted, total_weight 100: 'blue' weight 90 (90%), 'green' weight 10 (10%)", legate.Stdout.Lines);
        Assert.Contains("cluster:       at random per request by the weights", legate.Stdout.Lines);
    }

    [Fact]
    public async Task HeadersTakePartInMatching()
    {
        await using var legate = LegateProcess.Start("explain", "-c", _path, "-H", "Host: api.example.com", "-H", "x-canary: 1", "GET", "/v1/users");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Contains("route:         [0] 'canary' (match: prefix \"/v1/\", 1 header matcher(s))", legate.Stdout.Lines);
    }

    [Fact]
    public async Task NoRouteIsExplainedAsNr()
    {
        await using var legate = LegateProcess.Start("explain", "-c", _path, "--port", "8080", "-H", "host: api.example.com", "POST", "/v2");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Equal("route:         none matches: the request would get 404 (NR)", legate.Stdout.Lines[^1]);
    }

    [Fact]
    public async Task HostWithPortDoesNotMatchADomainWithoutOneAsInEnvoy()
    {
        await using var legate = LegateProcess.Start("explain", "-c", _path, "GET", "http://api.example.com:8080/v1/users");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Contains("virtual host:  [2] 'fallback' (domains: *; authority 'api.example.com:8080')", legate.Stdout.Lines);
    }

    [Fact]
    public async Task TheTrailingHostDotAndThePortAreStrippedBeforeMatching()
    {
        var path = Path.Combine(Path.GetTempPath(), $"legate-explain-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, Config.Replace("stat_prefix: public", "stat_prefix: public\n          strip_trailing_host_dot: true\n          strip_any_host_port: true", StringComparison.Ordinal));
        try
        {
            await using var legate = LegateProcess.Start("explain", "-c", path, "GET", "http://api.example.com.:8080/v1/users");

            Assert.Equal(0, await legate.WaitForExitAsync());
            Assert.Contains("authority:     'api.example.com.:8080' → 'api.example.com:8080' (strip_trailing_host_dot)", legate.Stdout.Lines);
            Assert.Contains("authority:     'api.example.com:8080' → 'api.example.com' (strip_any_host_port)", legate.Stdout.Lines);
            Assert.Contains(legate.Stdout.Lines, line => line.StartsWith("virtual host:  [0] 'api'", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task UsageErrorsExit1()
    {
        await using var legate = LegateProcess.Start("explain", "-c", _path, "--listener", "nope", "GET", "/");

        Assert.Equal(1, await legate.WaitForExitAsync());
        Assert.Equal("error: no listener named 'nope'", Assert.Single(legate.Stderr.Lines));
    }
}
