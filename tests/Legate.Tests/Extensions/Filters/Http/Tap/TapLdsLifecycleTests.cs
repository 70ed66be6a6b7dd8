using System.Net;
using Legate.Tests.Harness;
using Legate.Tests.Xds;

namespace Legate.Tests.Extensions.Filters.Http.Tap;

/// <summary>
/// Admin tap filters on LDS listeners: a filter registered under its <c>config_id</c> leaves the
/// admin registry when LDS replaces or removes its listener version (Envoy's filter config
/// unregisters in its destructor), so versions do not pile up, and <c>/tap</c> goes with the last one.
/// </summary>
public sealed class TapLdsLifecycleTests : IDisposable
{
    private const string TapRequest = """
        config_id: demo
        tap_config:
          match: { any_match: true }
          output_config:
            sinks:
            - streaming_admin: {}
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("legate-tap-lds-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task ReplacedAndRemovedListenersUnregisterTheirTapFilters()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        Replace(Lds("1", statPrefix: "v1"));
        var yaml = $$"""
            admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
            static_resources:
              clusters:
              - name: backend
                connect_timeout: 5s
                load_assignment:
                  cluster_name: backend
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstream.Port}} } } }
            dynamic_resources:
              lds_config:
                path_config_source:
                  path: "{{Path.Combine(_dir, "lds.yaml")}}"
                  watched_directory: { path: "{{_dir}}" }
                resource_api_version: V3
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml, "--drain-time-s", "1");
        var taps = legate.Server.Taps!;
        Assert.Equal("ok", await XdsWait.GetAsync(legate, "ingress"));
        Assert.Equal(1, taps.CountRegistered("demo"));

        // A new version of the listener: its tap filter replaces the old one instead of adding to it.
        Replace(Lds("2", statPrefix: "v2"));
        await XdsWait.UntilAsync(() => XdsWait.Counter(legate, "listener_manager.lds.update_success") == 2, "the second lds version");
        await XdsWait.UntilAsync(() => taps.CountRegistered("demo") == 1, "one tap filter for demo");

        // A session attaches to the version in force and taps its streams.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using (var adminClient = TestHttp.CreateClient())
        {
            using var post = new HttpRequestMessage(HttpMethod.Post, new Uri(legate.AdminUri, "/tap")) { Content = new StringContent(TapRequest) };
            using var session = await adminClient.SendAsync(post, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            Assert.Equal(HttpStatusCode.OK, session.StatusCode);
            using var reader = new StreamReader(await session.Content.ReadAsStreamAsync(timeout.Token));
            Assert.Equal("ok", await XdsWait.GetAsync(legate, "ingress", "/tapped"));
            string? line;
            while ((line = await reader.ReadLineAsync(timeout.Token)) is not null && !line.Contains("\"/tapped\"", StringComparison.Ordinal))
            {
            }

            Assert.NotNull(line);
        }

        // The listener goes: once it has drained, no admin tap filter is left, and with the last
        // one /tap itself goes (Envoy removes the handler with its AdminHandler singleton).
        Replace("version_info: \"3\"\nresources: []\n");
        await XdsWait.UntilAsync(() => XdsWait.Counter(legate, "listener_manager.listener_removed") == 1, "the listener removed");
        await XdsWait.UntilAsync(() => taps.CountRegistered("demo") == 0, "no tap filter left for demo");
        using var gone = await legate.Http.PostAsync(new Uri(legate.AdminUri, "/tap"), new StringContent(TapRequest));
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task AListenerThatFailsToCompileAfterItsTapFilterLeavesNoRegistration()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        // The admin tap filter compiles and registers, then the next filter fails to compile (a sink
        // Legate does not have; a valid proto, so only the compile can refuse it).
        Replace(Lds("1", statPrefix: "v1", brokenFilter: true));
        var yaml = $$"""
            admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
            static_resources:
              clusters:
              - name: backend
                connect_timeout: 5s
                load_assignment:
                  cluster_name: backend
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstream.Port}} } } }
            dynamic_resources:
              lds_config:
                path_config_source:
                  path: "{{Path.Combine(_dir, "lds.yaml")}}"
                  watched_directory: { path: "{{_dir}}" }
                resource_api_version: V3
                initial_fetch_timeout: 0.5s
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        await XdsWait.UntilAsync(() => XdsWait.Counter(legate, "listener_manager.lds.update_rejected") >= 1, "the bad listener rejected");

        Assert.Equal(0, legate.Server.Taps!.CountRegistered("demo"));
    }

    /// <summary>Envoy's expected way to update: write elsewhere, then rename over the watched file.</summary>
    private void Replace(string content)
    {
        var temp = Path.Combine(_dir, ".lds.yaml.tmp");
        File.WriteAllText(temp, content);
        File.Move(temp, Path.Combine(_dir, "lds.yaml"), overwrite: true);
    }

    private static string Lds(string version, string statPrefix, bool brokenFilter = false) => $$"""
        version_info: "{{version}}"
        resources:
        - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
          name: ingress
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
          filter_chains:
          - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: {{statPrefix}}
                route_config:
                  virtual_hosts:
                  - name: all
                    domains: ["*"]
                    routes:
                    - match: { prefix: "/" }
                      route: { cluster: backend }
                http_filters:
                - name: envoy.filters.http.tap
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.tap.v3.Tap
                    common_config: { admin_config: { config_id: demo } }
        {{(brokenFilter ? BrokenFilter : string.Empty)}}
                - name: envoy.filters.http.router
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
        """;

    private const string BrokenFilter = """
                - name: broken.tap
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.tap.v3.Tap
                    common_config:
                      static_config:
                        match: { any_match: true }
                        output_config: { sinks: [ { streaming_grpc: { grpc_service: { envoy_grpc: { cluster_name: backend } } } } ] }
        """;
}
