using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using Envoy.Config.Core.V3;
using Legate.Stats;
using Legate.Tests.Harness;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>
/// Zone-aware routing (common_lb_config.zone_aware_lb_config with cluster_manager.local_cluster_name):
/// Envoy's algorithm with its own numbers, its stats, and the proxy keeping traffic in its zone.
/// </summary>
public sealed class ZoneAwareRoutingTests
{
    private static readonly Locality ZoneA = new() { Region = "r", Zone = "a" };
    private static readonly Locality ZoneB = new() { Region = "r", Zone = "b" };
    private static readonly Locality ZoneC = new() { Region = "r", Zone = "c" };

    private static int s_port = 20000;

    /// <summary>A priority 0 host set with <paramref name="counts"/> healthy hosts in zones a, b, c (zone c listed first, to show the ordering).</summary>
    private static HostSet Set(params int[] counts)
    {
        var zones = new[] { ZoneA, ZoneB, ZoneC };
        var hosts = ImmutableArray.CreateBuilder<Host>();
        for (var z = counts.Length - 1; z >= 0; z--)
        {
            for (var i = 0; i < counts[z]; i++)
            {
                hosts.Add(new Host(new IPEndPoint(IPAddress.Loopback, Interlocked.Increment(ref s_port)), locality: zones[z]));
            }
        }

        return new HostSet(0, hosts.ToImmutable());
    }

    [Fact]
    public void EnvoysResidualExampleRoutesTheLocalShareAndSpreadsTheRestByResidualCapacity()
    {
        // Envoy's own comment: local 40/40/20 %, upstream 25/50/25 % → route 25/40 = 62.5% locally,
        // residual capacity 0 / 10% / 5% accumulated as 0, 1000, 1500.
        var stats = new ClusterStats(new StatsStore(), "c");
        var zone = ZoneRouting.Compute(upstream: Set(2, 4, 2), local: Set(2, 2, 1), ZoneA, minClusterSize: 6, panicThreshold: 50, stats);

        Assert.Equal(ZoneRouting.Mode.Residual, zone.RoutingMode);
        Assert.Equal(6250UL, zone.LocalPercentToRoute);
        Assert.Equal([0UL, 1000UL, 1500UL], zone.ResidualCapacity);
        Assert.All(zone.HealthyPerLocality[0], h => Assert.Equal("a", h.Locality!.Zone));
        Assert.All(zone.HealthyPerLocality[2], h => Assert.Equal("c", h.Locality!.Zone));

        var random = LbRandom.Seeded(11);
        var counts = new int[3];
        for (var i = 0; i < 100_000; i++)
        {
            counts[zone.ChooseLocality(random, stats)]++;
        }

        // 62.5% local; the other 37.5% split 2:1 between b and c (25%, 12.5%), within ±1 point.
        Assert.InRange(counts[0], 61_500, 63_500);
        Assert.InRange(counts[1], 24_000, 26_000);
        Assert.InRange(counts[2], 11_500, 13_500);
        // Every pick is counted once; a cross-zone draw of exactly 0 lands on the local zone, as in
        // Envoy (its scan starts at index 0), so a few cross-zone picks are local.
        Assert.Equal(100_000, stats.LbZoneRoutingSampled.Value + stats.LbZoneRoutingCrossZone.Value);
        Assert.InRange(counts[0] - stats.LbZoneRoutingSampled.Value, 0, 100);
        Assert.InRange(stats.LbZoneRoutingCrossZone.Value - (counts[1] + counts[2]), 0, 100);
        Assert.Equal(0, stats.LbZoneRoutingAllDirectly.Value);
    }

    [Fact]
    public void TheLocalZoneWithAtLeastItsShareTakesEverything()
    {
        // upstream 50/25/25 % ≥ local 40/40/20 % in the local zone: all directly.
        var stats = new ClusterStats(new StatsStore(), "c");
        var zone = ZoneRouting.Compute(Set(4, 2, 2), Set(2, 2, 1), ZoneA, 6, 50, stats);
        Assert.Equal(ZoneRouting.Mode.Direct, zone.RoutingMode);
        var random = LbRandom.Seeded(3);
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(0, zone.ChooseLocality(random, stats));
        }

        Assert.Equal(1000, stats.LbZoneRoutingAllDirectly.Value);
        Assert.Equal(1, stats.LbRecalculateZoneStructures.Value);
    }

    [Fact]
    public void RoutingIsOffForEnvoysReasonsEachCounted()
    {
        var stats = new ClusterStats(new StatsStore(), "c");

        // One zone only: nothing to decide, nothing counted.
        Assert.Equal(ZoneRouting.Mode.None, ZoneRouting.Compute(Set(6), Set(3), ZoneA, 6, 50, stats).RoutingMode);

        // No healthy upstream host in the local zone.
        Assert.Equal(ZoneRouting.Mode.None, ZoneRouting.Compute(Set(0, 4, 4), Set(2, 2, 1), ZoneA, 6, 50, stats).RoutingMode);
        Assert.Equal(1, stats.LbLocalClusterNotOk.Value);

        // The local cluster knows two zones, the upstream three.
        Assert.Equal(ZoneRouting.Mode.None, ZoneRouting.Compute(Set(2, 4, 2), Set(2, 2), ZoneA, 6, 50, stats).RoutingMode);
        Assert.Equal(1, stats.LbZoneNumberDiffers.Value);

        // Fewer healthy hosts than min_cluster_size (6 by default).
        Assert.Equal(ZoneRouting.Mode.None, ZoneRouting.Compute(Set(1, 2, 2), Set(2, 2, 1), ZoneA, 6, 50, stats).RoutingMode);
        Assert.Equal(1, stats.LbZoneClusterTooSmall.Value);
        Assert.Equal(ZoneRouting.Mode.Residual, ZoneRouting.Compute(Set(1, 2, 2), Set(2, 2, 1), ZoneA, 5, 50, stats).RoutingMode);
        Assert.Equal(5, stats.LbRecalculateZoneStructures.Value);
    }

    private static string Config(int a, int b, string zoneAware) => TestConfigs.Admin() + $$"""
        node: { id: n, cluster: local, locality: { region: r, zone: a } }
        cluster_manager: { local_cluster_name: local }
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
          - name: local
            connect_timeout: 1s
            load_assignment:
              cluster_name: local
              endpoints:
              - locality: { region: r, zone: a }
                lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } }
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 2 } } }
              - locality: { region: r, zone: b }
                lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 3 } } }
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 4 } } }
          - name: backend
            connect_timeout: 5s
            common_lb_config: { zone_aware_lb_config: {{zoneAware}} }
            load_assignment:
              cluster_name: backend
              endpoints:
              - locality: { region: r, zone: b }
                lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{b.ToString(CultureInfo.InvariantCulture)}} } } }
              - locality: { region: r, zone: a }
                lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{a.ToString(CultureInfo.InvariantCulture)}} } } }
        """;

    [Fact]
    public async Task TheProxyKeepsTrafficInItsZoneAndRoundRobinsWhenTheClusterIsTooSmall()
    {
        await using var a = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("a")));
        await using var b = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("b")));

        // Local and upstream clusters both half in zone a: everything stays in zone a.
        await using (var legate = await InProcessLegate.StartAsync(Config(a.Port, b.Port, "{ min_cluster_size: 2 }")))
        {
            using var client = TestHttp.CreateClient();
            for (var i = 0; i < 10; i++)
            {
                using var response = await client.GetAsync(legate.ListenerUri("web", "/zone"));
                Assert.Equal("a", await response.Content.ReadAsStringAsync());
            }

            Assert.Equal(10, legate.Counter("cluster.backend.lb_zone_routing_all_directly"));
            Assert.Equal(0, legate.Counter("cluster.backend.lb_zone_routing_cross_zone"));
        }

        // The default min_cluster_size (6) turns it off for two hosts: plain round robin over both zones.
        await using (var legate = await InProcessLegate.StartAsync(Config(a.Port, b.Port, "{}")))
        {
            using var client = TestHttp.CreateClient();
            var bodies = new List<string>();
            for (var i = 0; i < 10; i++)
            {
                using var response = await client.GetAsync(legate.ListenerUri("web", "/rr"));
                bodies.Add(await response.Content.ReadAsStringAsync());
            }

            Assert.Equal(5, bodies.Count(x => x == "a"));
            Assert.Equal(5, bodies.Count(x => x == "b"));
            Assert.True(legate.Counter("cluster.backend.lb_zone_cluster_too_small") >= 1);
            Assert.Equal(0, legate.Counter("cluster.backend.lb_zone_routing_all_directly"));
        }
    }

    [Fact]
    public void AnUndefinedLocalClusterIsAnError()
    {
        var errors = new Legate.Config.ConfigErrors();
        var bootstrap = UpstreamTestConfigs.ParseBootstrap("cluster_manager: { local_cluster_name: missing }\n");
        _ = ClusterManager.Compile(bootstrap, errors, new ClusterFactoryContext { LocalCluster = new LocalClusterSource("missing", null) });
        var error = Assert.Single(errors.Errors);
        Assert.Equal("cluster_manager.local_cluster_name", error.Path);
        Assert.Equal("local cluster 'missing' must be defined", error.Message);
    }
}
