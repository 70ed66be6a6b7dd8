using System.Globalization;
using System.Net;
using Legate.Config;
using Legate.Tests.Harness;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>ClusterLoadAssignment.policy.drop_overloads: the share of requests answered 503 DO before any upstream work.</summary>
public sealed class DropOverloadTests
{
    private static string Config(int upstreamPort, string dropPercentage) => TestConfigs.Admin() + $$"""
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
                        route: { cluster: backend }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: backend
            connect_timeout: 5s
            load_assignment:
              cluster_name: backend
              policy:
                drop_overloads:
                - category: throttle
                  drop_percentage: {{dropPercentage}}
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstreamPort.ToString(CultureInfo.InvariantCulture)}} } } }
        """;

    [Fact]
    public async Task ADroppedRequestGets503DropOverloadAndNeverReachesTheUpstream()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "{ numerator: 100, denominator: HUNDRED }"));
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        using var client = TestHttp.CreateClient();

        for (var i = 0; i < 5; i++)
        {
            using var response = await client.GetAsync(legate.ListenerUri("web", "/dropped"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("drop overload", await response.Content.ReadAsStringAsync());
            Assert.Equal("true", response.Headers.GetValues("x-envoy-drop-overload").Single());
        }

        var stream = await recorder.WaitForPathAsync("/dropped");
        Assert.Equal("DO", stream.Flags);
        Assert.Equal("drop_overload", stream.Details);
        Assert.Equal(5, legate.Counter("cluster.backend.upstream_rq_drop_overload"));
        Assert.Empty(upstream.Log.Requests);
    }

    [Fact]
    public async Task WithoutDropsEveryRequestGoesThrough()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "{ numerator: 0 }"));
        using var client = TestHttp.CreateClient();

        using var response = await client.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_rq_drop_overload"));
    }

    [Fact]
    public void TheDroppedShareFollowsTheFractionalPercent()
    {
        var cluster = UpstreamTestConfigs.Build("""
            name: c
            load_assignment:
              cluster_name: c
              policy:
                drop_overloads: [ { category: lb, drop_percentage: { numerator: 2500, denominator: TEN_THOUSAND } } ]
            """);

        var dropped = Enumerable.Range(0, 100_000).Count(_ => cluster.ShouldDropOverload());

        Assert.InRange(dropped, 24_000, 26_000);
    }

    [Fact]
    public void MoreThanOneCategoryIsEnvoysError()
    {
        var errors = new ConfigErrors();
        ClusterFactory.Create(UpstreamTestConfigs.ParseCluster("""
            name: c
            load_assignment:
              cluster_name: c
              policy:
                drop_overloads:
                - { category: a, drop_percentage: { numerator: 1 } }
                - { category: b, drop_percentage: { numerator: 1 } }
            """), "clusters[0]", errors, UpstreamTestConfigs.Deterministic());

        var error = Assert.Single(errors.Errors);
        Assert.Equal("clusters[0].load_assignment.policy.drop_overloads", error.Path);
        Assert.Equal("Cluster drop_overloads config has 2 categories. Envoy only support one.", error.Message);
    }
}
