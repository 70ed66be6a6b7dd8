using Envoy.Config.Bootstrap.V3;
using Google.Protobuf;
using Legate.Config;

namespace Legate.Tests.Config;

public sealed class BootstrapLoaderTests : IDisposable
{
    private const string Hcm = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

    private static readonly string s_yaml = $$"""
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 9901 } }
        static_resources:
          listeners:
          - name: web
            address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": {{Hcm}}
                  stat_prefix: web
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: backend, hedge_policy: { initial_requests: 2 } }
                  http_filters:
                  - name: envoy.filters.http.router
          clusters:
          - name: backend
            type: STRICT_DNS
            connect_timeout: 0.25s
            close_connections_on_host_health_failure: true
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: backend.local, port_value: 8080 } } }
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("legate-loader-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void YamlJsonAndBinaryProtoLoadTheSameBootstrap()
    {
        var fromYaml = BootstrapLoader.Load(Write("envoy.yaml", s_yaml), null).Bootstrap;
        var json = new JsonFormatter(JsonFormatter.Settings.Default.WithTypeRegistry(ApiTypes.Registry)).Format(fromYaml);
        var fromJson = BootstrapLoader.Load(Write("envoy.json", json), null).Bootstrap;
        var pbPath = Path.Combine(_dir, "envoy.pb");
        File.WriteAllBytes(pbPath, fromYaml.ToByteArray());
        var fromPb = BootstrapLoader.Load(pbPath, null).Bootstrap;

        Assert.Equal("backend.local", fromYaml.StaticResources.Clusters[0].LoadAssignment.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.Address);
        Assert.Equal(250_000_000, fromYaml.StaticResources.Clusters[0].ConnectTimeout.Nanos);
        Assert.Equal(fromYaml, fromJson);
        Assert.Equal(fromYaml, fromPb);
    }

    [Fact]
    public void ConfigYamlIsMergedOnTopAsEnvoyDoes()
    {
        var loaded = BootstrapLoader.Load(
            Write("envoy.yaml", s_yaml),
            "{admin: {address: {socket_address: {port_value: 9902}}}, static_resources: {clusters: [{name: extra, connect_timeout: 1s}]}}");

        // Scalars replace, messages merge field by field, lists append.
        Assert.Equal(9902u, loaded.Bootstrap.Admin.Address.SocketAddress.PortValue);
        Assert.Equal("127.0.0.1", loaded.Bootstrap.Admin.Address.SocketAddress.Address);
        Assert.Equal(["backend", "extra"], loaded.Bootstrap.StaticResources.Clusters.Select(c => c.Name));
    }

    [Fact]
    public void FieldsNotActedOnYetAreWarnedOncePerFieldPath()
    {
        var loaded = BootstrapLoader.Load(Write("envoy.yaml", s_yaml), null);
        var warnings = loaded.Warnings.Select(w => w.ToString()).ToArray();

        Assert.Contains(
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.hedge_policy.initial_requests (line 19, col 78): field envoy.config.route.v3.HedgePolicy.initial_requests is ignored: Envoy does not implement it either (one initial request is sent)",
            warnings);
        Assert.Contains(
            "static_resources.clusters[0].close_connections_on_host_health_failure (line 26, col 47): field envoy.config.cluster.v3.Cluster.close_connections_on_host_health_failure is parsed but not implemented yet; it is ignored",
            warnings);
        Assert.Equal(warnings.Length, warnings.Distinct().Count());
    }

    [Fact]
    public void AVirtualHostCorsPolicyIsIgnoredAsByEnvoyWithoutTheCorsFilter()
    {
        var yaml = System.Text.RegularExpressions.Regex.Replace(s_yaml, @"(?m)^( *)domains: \[""\*""\]\n", "$0$1cors: { allow_origin_string_match: [{ exact: \"https://a.example\" }] }\n");
        var loaded = BootstrapLoader.Load(Write("envoy.yaml", yaml), null);

        Assert.Contains(
            loaded.Warnings.Select(w => w.ToString()),
            w => w.StartsWith("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].cors (line 17, col", StringComparison.Ordinal)
                && w.EndsWith("field envoy.config.route.v3.VirtualHost.cors is ignored: a CORS policy takes effect only through the envoy.filters.http.cors filter, which Legate does not implement yet (Envoy without that filter ignores it too)", StringComparison.Ordinal));
    }

    /// <summary>A field Envoy itself does not implement says so, and names what does the job.</summary>
    [Fact]
    public void PathNormalizationOptionsIsIgnoredAsByEnvoy()
    {
        var yaml = System.Text.RegularExpressions.Regex.Replace(s_yaml, @"(?m)^( *)stat_prefix: web\n", "$0$1path_normalization_options: { forwarding_transformation: { operations: [] } }\n");
        var loaded = BootstrapLoader.Load(Write("envoy.yaml", yaml), null);

        Assert.Contains(
            loaded.Warnings.Select(w => w.ToString()),
            w => w.Contains("path_normalization_options", StringComparison.Ordinal)
                && w.EndsWith("is ignored: Envoy does not implement it either (not-implemented-hide in its API); use normalize_path, merge_slashes and path_with_escaped_slashes_action", StringComparison.Ordinal));
    }

    [Fact]
    public void ListIndicesAreFoldedSoAThousandClustersGiveOneWarningPerField()
    {
        var clusters = string.Concat(Enumerable.Range(0, 50).Select(i => $"  - {{name: c{i}, connect_timeout: 1s, close_connections_on_host_health_failure: true}}\n"));
        var loaded = BootstrapLoader.Load(Write("many.yaml", "static_resources:\n  clusters:\n" + clusters), null);

        Assert.Equal(
            "static_resources.clusters[0].close_connections_on_host_health_failure (line 3, col 79): field envoy.config.cluster.v3.Cluster.close_connections_on_host_health_failure is parsed but not implemented yet; it is ignored",
            Assert.Single(loaded.Warnings).ToString());
    }

    [Fact]
    public void DefaultConfigLoadsWithoutWarnings()
    {
        var loaded = BootstrapLoader.Load(null, null);

        Assert.Equal(BootstrapLoader.DefaultConfigName, loaded.Source);
        Assert.Empty(loaded.Warnings);
        Assert.Equal(10000u, loaded.Bootstrap.StaticResources.Listeners[0].Address.SocketAddress.PortValue);
        Assert.Equal(9901u, loaded.Bootstrap.Admin.Address.SocketAddress.PortValue);
    }

    [Fact]
    public void EveryErrorOfAFileIsReportedAtOnce()
    {
        var yaml = s_yaml.Replace("connect_timeout: 0.25s", "connect_timeout: 5", StringComparison.Ordinal)
            .Replace("port_value: 9901", "port_value: x", StringComparison.Ordinal);

        var error = Assert.Throws<ConfigException>(() => BootstrapLoader.Load(Write("bad.yaml", yaml), null));

        Assert.Equal(
            [
                "admin.address.socket_address.port_value (line 2, col 64): invalid uint32 \"x\"",
                "static_resources.clusters[0].connect_timeout (line 25, col 22): invalid duration \"5\"",
            ],
            error.Errors.Select(e => e.ToString()).ToArray());
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }
}
