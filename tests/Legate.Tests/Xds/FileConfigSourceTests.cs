using Legate.Tests.Compat;
using Legate.Tests.Harness;

namespace Legate.Tests.Xds;

/// <summary>
/// path_config_source: CDS/LDS/EDS from files holding a DiscoveryResponse, reloaded when the file
/// is atomically replaced; a bad file keeps the old config and counts update_rejected. Also
/// Envoy's dynamic-config-fs sandbox, end to end.
/// </summary>
public sealed class FileConfigSourceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-xds-fs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Envoy's expected way to update: write elsewhere, then rename over the watched file.</summary>
    private void Replace(string name, string content)
    {
        var temp = Path.Combine(_dir, "." + name + ".tmp");
        File.WriteAllText(temp, content);
        File.Move(temp, Path.Combine(_dir, name), overwrite: true);
    }

    private static string Cds(string version, string clusterName, int port) => $$"""
        version_info: "{{version}}"
        resources:
        - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
          name: {{clusterName}}
          type: STATIC
          connect_timeout: 1s
          a_field_from_a_newer_api: ignored
          load_assignment:
            cluster_name: {{clusterName}}
            endpoints:
            - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } } }
        - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
          name: from_eds
          type: EDS
          connect_timeout: 1s
          eds_cluster_config:
            eds_config: { path_config_source: { path: "EDS_PATH" }, resource_api_version: V3 }
        """;

    private static string Lds(string version, string cluster) => $$"""
        {
          "version_info": "{{version}}",
          "resources": [{
            "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
            "name": "ingress",
            "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } },
            "filter_chains": [{ "filters": [{
              "name": "envoy.filters.network.http_connection_manager",
              "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "ingress",
                "http_filters": [{ "name": "envoy.filters.http.router", "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
                "route_config": { "virtual_hosts": [{ "name": "all", "domains": ["*"], "routes": [
                  { "match": { "prefix": "/eds" }, "route": { "cluster": "from_eds" } },
                  { "match": { "prefix": "/" }, "route": { "cluster": "{{cluster}}" } } ] }] }
              }
            }] }]
          }]
        }
        """;

    private static string Eds(int port) => $$"""
        version_info: eds-1
        resources:
        - "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
          cluster_name: from_eds
          endpoints:
          - lb_endpoints:
            - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } } }
        """;

    [Fact]
    public async Task AnEdsAssignmentsDropOverloadsApplyAndAreClearedByTheNextAssignment()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        var eds = Path.Combine(_dir, "eds.yaml");
        File.WriteAllText(Path.Combine(_dir, "cds.yaml"), Cds("1", "blue", blue.Port).Replace("EDS_PATH", eds));
        File.WriteAllText(Path.Combine(_dir, "lds.json"), Lds("1", "blue"));
        File.WriteAllText(eds, Eds(green.Port) + "\n" + """
              policy:
                drop_overloads:
                - { category: load_shedding, drop_percentage: { numerator: 100 } }
            """);
        var yaml = $$"""
            node: { id: fs-node, cluster: fs }
            admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
            dynamic_resources:
              cds_config: { path_config_source: { path: "{{Path.Combine(_dir, "cds.yaml")}}" }, resource_api_version: V3 }
              lds_config: { path_config_source: { path: "{{Path.Combine(_dir, "lds.json")}}" }, resource_api_version: V3 }
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));

        // Every request to the EDS cluster is dropped by its assignment's policy (503 DO), as a
        // static load_assignment's would be; the upstream never sees one.
        using var client = new HttpClient();
        using (var dropped = await client.GetAsync($"http://127.0.0.1:{legate.ListenerEndpoint("ingress").Port}/eds"))
        {
            Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, dropped.StatusCode);
            Assert.Equal("true", Assert.Single(dropped.Headers.GetValues("x-envoy-drop-overload")));
        }

        Assert.Equal(1, XdsWait.Counter(legate, "cluster.from_eds.upstream_rq_drop_overload"));
        Assert.Equal(0, green.Log.Count);

        // The next assignment has no policy: nothing is dropped any more.
        Replace("eds.yaml", Eds(green.Port).Replace("eds-1", "eds-2"));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress", "/eds") == "green", "the assignment without drop_overloads");
    }

    [Fact]
    public async Task FilesAreLoadedReloadedOnAtomicReplaceAndABadFileKeepsTheOldConfig()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        var eds = Path.Combine(_dir, "eds.yaml");
        File.WriteAllText(Path.Combine(_dir, "cds.yaml"), Cds("1", "blue", blue.Port).Replace("EDS_PATH", eds));
        File.WriteAllText(Path.Combine(_dir, "lds.json"), Lds("1", "blue"));
        File.WriteAllText(eds, Eds(green.Port));
        var yaml = $$"""
            node: { id: fs-node, cluster: fs }
            admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
            dynamic_resources:
              cds_config: { path_config_source: { path: "{{Path.Combine(_dir, "cds.yaml")}}" }, resource_api_version: V3 }
              lds_config:
                path_config_source:
                  path: "{{Path.Combine(_dir, "lds.json")}}"
                  watched_directory: { path: "{{_dir}}" }
                resource_api_version: V3
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));
        Assert.Equal("green", await XdsWait.GetAsync(legate, "ingress", "/eds"));
        // The unknown field of the dynamic resource was skipped and counted, not rejected.
        Assert.True(XdsWait.Counter(legate, "server.dynamic_unknown_fields") >= 1);
        Assert.Equal(1, XdsWait.Counter(legate, "cluster_manager.cds.update_success"));
        var port = legate.ListenerEndpoint("ingress").Port;

        // Atomic replace: the route moves to a new cluster on the same listener socket.
        Replace("cds.yaml", Cds("2", "green", green.Port).Replace("EDS_PATH", eds));
        await XdsWait.UntilAsync(() => legate.Server.Clusters.Find("green") is not null, "cluster green from the new cds file");
        Replace("lds.json", Lds("2", "green"));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "the new lds file");
        Assert.Equal(port, legate.ListenerEndpoint("ingress").Port);
        Assert.Null(legate.Server.Clusters.Find("blue"));

        // A bad file is rejected; the config in force stays.
        Replace("lds.json", "{ \"version_info\": \"3\", \"resources\": [ { \"@type\": \"type.googleapis.com/envoy.config.listener.v3.Listener\", \"name\": \"ingress\", \"address\": 7 } ] }");
        await XdsWait.UntilAsync(() => XdsWait.Counter(legate, "listener_manager.lds.update_rejected") == 1, "the bad lds file to be rejected");
        Replace("cds.yaml", "resources: [ this is : not yaml");
        await XdsWait.UntilAsync(() => XdsWait.Counter(legate, "cluster_manager.cds.update_rejected") == 1, "the bad cds file to be rejected");
        Assert.Equal("green", await XdsWait.GetAsync(legate, "ingress"));
        Assert.Equal(2, XdsWait.Counter(legate, "listener_manager.lds.update_success"));

        // EDS from a file follows the file too.
        var temp = eds + ".tmp";
        File.WriteAllText(temp, Eds(blue.Port).Replace("eds-1", "eds-2"));
        File.Move(temp, eds, overwrite: true);
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress", "/eds") == "blue", "the new eds file");
    }

    [Fact]
    public async Task TheLegacyPathStringWorksAsPathConfigSource()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        File.WriteAllText(Path.Combine(_dir, "cds.yaml"), Cds("1", "blue", blue.Port).Replace("EDS_PATH", Path.Combine(_dir, "eds.yaml")));
        File.WriteAllText(Path.Combine(_dir, "eds.yaml"), Eds(blue.Port));
        File.WriteAllText(Path.Combine(_dir, "lds.json"), Lds("1", "blue"));
        var yaml = $$"""
            admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
            dynamic_resources:
              cds_config: { path: "{{Path.Combine(_dir, "cds.yaml")}}" }
              lds_config: { path: "{{Path.Combine(_dir, "lds.json")}}" }
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        Assert.Equal("blue", await XdsWait.GetAsync(legate, "ingress"));
    }

    [CorpusFact]
    public async Task TheDynamicConfigFsSandboxWorksEndToEnd()
    {
        await using var service1 = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("service1")));
        await using var service2 = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("service2")));
        var sandbox = Path.Combine(Repository.EnvoyExamples, "dynamic-config-fs");
        // The sandbox's files, with its container names and fixed ports mapped onto this machine.
        var cds = File.ReadAllText(Path.Combine(sandbox, "configs", "cds.yaml"));
        File.WriteAllText(Path.Combine(_dir, "cds.yaml"), cds.Replace("service1", "127.0.0.1").Replace("8080", service1.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        File.WriteAllText(Path.Combine(_dir, "lds.yaml"), File.ReadAllText(Path.Combine(sandbox, "configs", "lds.yaml")).Replace("0.0.0.0", "127.0.0.1").Replace("10000", "0"));
        var bootstrap = File.ReadAllText(Path.Combine(sandbox, "envoy.yaml")).Replace("/var/lib/envoy", _dir).Replace("19000", "0").Replace("0.0.0.0", "127.0.0.1");
        await using var legate = await InProcessLegate.StartAsync(bootstrap);
        Assert.Equal("service1", await XdsWait.GetAsync(legate, "listener_0"));

        // The sandbox's step: point the cluster at service2 (as a file moved into place).
        Replace("cds.yaml", cds.Replace("service1", "127.0.0.1").Replace("8080", service2.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "listener_0") == "service2", "the cluster to move to service2");
        var dump = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/config_dump"));
        Assert.Contains("example_proxy_cluster", dump);
        Assert.Contains("dynamic_active_clusters", dump);
    }
}
