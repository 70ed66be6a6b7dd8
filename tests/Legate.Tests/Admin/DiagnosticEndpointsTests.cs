using System.Net;
using System.Text.Json;
using Legate.Tests.Harness;
using Legate.Tests.Xds;

namespace Legate.Tests.Admin;

/// <summary>
/// Envoy's admin endpoints for diagnostics: /init_dump, /contention, /cpuprofiler, /heapprofiler and
/// the /stats/recentlookups family, over a real admin socket.
/// </summary>
public sealed class DiagnosticEndpointsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-init-dump-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task ContentionAndProfilersAnswerAsAnEnvoyBuildWithoutThem()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        using var contention = await legate.Http.GetAsync(new Uri(legate.AdminUri, "contention"));
        Assert.Equal(HttpStatusCode.OK, contention.StatusCode);
        Assert.Equal("Mutex contention tracing is not enabled. To enable, run Envoy with flag --enable-mutex-tracing.", await contention.Content.ReadAsStringAsync());

        using (var get = await legate.Http.GetAsync(new Uri(legate.AdminUri, "cpuprofiler?enable=y")))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        }

        Assert.Equal((HttpStatusCode.BadRequest, "?enable=<y|n>\n"), await PostAsync(legate, "cpuprofiler"));
        Assert.Equal((HttpStatusCode.BadRequest, "?enable=<y|n>\n"), await PostAsync(legate, "cpuprofiler?enable=maybe"));
        Assert.Equal((HttpStatusCode.InternalServerError, "failure to start the profiler"), await PostAsync(legate, "cpuprofiler?enable=y"));
        Assert.Equal((HttpStatusCode.OK, "OK\n"), await PostAsync(legate, "cpuprofiler?enable=n"));
        Assert.Equal((HttpStatusCode.NotImplemented, "The current build does not support heap profiler"), await PostAsync(legate, "heapprofiler?enable=y"));

        // /allocprofiler needs tcmalloc: the request is checked, then 501 either way.
        Assert.Equal((HttpStatusCode.BadRequest, "?enable=<y|n>\n"), await PostAsync(legate, "allocprofiler"));
        Assert.Equal((HttpStatusCode.BadRequest, "?enable=<y|n>\n"), await PostAsync(legate, "allocprofiler?enable=y&x=1"));
        Assert.Equal((HttpStatusCode.NotImplemented, "Allocation profile is not implemented in current build"), await PostAsync(legate, "allocprofiler?enable=y"));
        Assert.Equal((HttpStatusCode.NotImplemented, "Allocation profile is not implemented in current build"), await PostAsync(legate, "allocprofiler?enable=n"));
        using (var get = await legate.Http.GetAsync(new Uri(legate.AdminUri, "allocprofiler?enable=y")))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        }

        // /heap_dump reads, so GET; as an Envoy built without tcmalloc.
        using var heapDump = await legate.Http.GetAsync(new Uri(legate.AdminUri, "heap_dump"));
        Assert.Equal(HttpStatusCode.NotImplemented, heapDump.StatusCode);
        Assert.Equal("Heap profile is not implemented in current build", await heapDump.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task RecentLookupsAreOffUntilEnabledThenCountNamesUntilCleared()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        var off = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats/recentlookups"));
        Assert.StartsWith("Lookup tracking is not enabled. Use /stats/recentlookups/enable to enable.\n\ntotal: ", off, StringComparison.Ordinal);
        Assert.True(long.Parse(off[(off.LastIndexOf(' ') + 1)..].TrimEnd('\n'), System.Globalization.CultureInfo.InvariantCulture) > 0, off);

        Assert.Equal((HttpStatusCode.OK, "OK\n"), await PostAsync(legate, "stats/recentlookups/clear"));
        Assert.Equal((HttpStatusCode.OK, "OK\n"), await PostAsync(legate, "stats/recentlookups/enable"));
        legate.Server.Stats.Counter("test.looked_up");
        legate.Server.Stats.Counter("test.looked_up");
        legate.Server.Stats.Gauge("test.also_looked_up", Legate.Stats.ImportMode.NeverImport);

        var on = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats/recentlookups"));
        Assert.Equal("   Count Lookup\n       1 test.also_looked_up\n       2 test.looked_up\n\ntotal: 3\n", on);

        Assert.Equal((HttpStatusCode.OK, "OK\n"), await PostAsync(legate, "stats/recentlookups/disable"));
        legate.Server.Stats.Counter("test.after_disable");
        Assert.Equal("Lookup tracking is not enabled. Use /stats/recentlookups/enable to enable.\n\ntotal: 4\n", await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats/recentlookups")));
    }

    [Fact]
    public async Task InitDumpNamesTheWarmingListenerAndTheRouteTableItWaitsFor()
    {
        var lds = Path.Combine(_dir, "lds.yaml");
        var rds = Path.Combine(_dir, "rds.yaml");
        File.WriteAllText(lds, "version_info: \"1\"\nresources: []\n");
        File.WriteAllText(rds, "version_info: \"1\"\nresources: []\n");
        var yaml = $$"""
            admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
            dynamic_resources:
              lds_config:
                path_config_source: { path: "{{lds}}", watched_directory: { path: "{{_dir}}" } }
                resource_api_version: V3
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        Assert.Equal("{}\n", await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "init_dump")));

        // A listener whose route table never arrives (and no initial_fetch_timeout) stays warming.
        var temp = Path.Combine(_dir, ".lds.tmp");
        File.WriteAllText(temp, $$"""
            version_info: "2"
            resources:
            - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
              name: waiting
              address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
              filter_chains:
              - filters:
                - name: envoy.filters.network.http_connection_manager
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                    stat_prefix: waiting
                    rds:
                      route_config_name: never_sent
                      config_source: { path_config_source: { path: "{{rds}}" }, initial_fetch_timeout: 0s, resource_api_version: V3 }
                    http_filters:
                    - name: envoy.filters.http.router
                      typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """);
        File.Move(temp, lds, overwrite: true);
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "listener_manager.total_listeners_warming") == 1, "the listener to warm");

        foreach (var query in new[] { "init_dump", "init_dump?mask=listener" })
        {
            using var response = await legate.Http.GetAsync(new Uri(legate.AdminUri, query));
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var dump = Assert.Single(json.RootElement.GetProperty("unready_targets_dumps").EnumerateArray());
            Assert.Equal("Listener-local-init-manager waiting", dump.GetProperty("name").GetString());
            Assert.Equal("RdsRouteConfigSubscription init never_sent", Assert.Single(dump.GetProperty("target_names").EnumerateArray()).GetString());
        }

        // Envoy knows only the "listener" component; any other mask dumps nothing.
        Assert.Equal("{}\n", await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "init_dump?mask=cluster")));
    }

    private static async Task<(HttpStatusCode, string)> PostAsync(InProcessLegate legate, string pathAndQuery)
    {
        using var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, pathAndQuery), null);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
