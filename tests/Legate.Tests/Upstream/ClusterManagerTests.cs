using Legate.Config;
using Legate.Upstream;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;

namespace Legate.Tests.Upstream;

public sealed class ClusterManagerTests
{
    private readonly ManualTimeProvider _time = new();
    private readonly FakeDnsResolver _dns;

    public ClusterManagerTests() => _dns = new FakeDnsResolver(_time);

    [Fact]
    public async Task BuildsTheStaticClustersAndFindsThemByName()
    {
        _dns.Answer("api.internal", "10.0.0.1", "10.0.0.2");
        _dns.Answer("db.internal", "10.0.0.9");
        var errors = new ConfigErrors();
        await using var manager = ClusterManager.Compile(UpstreamTestConfigs.ParseBootstrap("""
            static_resources:
              clusters:
              - name: static
                load_assignment:
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
              - name: strict
                type: STRICT_DNS
                load_assignment:
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: api.internal, port_value: 80 } } }
              - name: logical
                type: LOGICAL_DNS
                load_assignment:
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: db.internal, port_value: 5432 } } }
            """), errors, Context());

        await manager.InitializeAsync(CancellationToken.None);

        Assert.Empty(errors.Errors);
        Assert.Empty(errors.Warnings);
        Assert.Equal(["static", "strict", "logical"], manager.Clusters.Select(c => c.Name));
        Assert.IsType<StaticCluster>(manager.Find("static"));
        Assert.IsType<StrictDnsCluster>(manager.Find("strict"));
        Assert.True(manager.TryGetCluster("logical", out var logical));
        Assert.IsType<LogicalDnsCluster>(logical);
        Assert.Null(manager.Find("missing"));
        Assert.False(manager.TryGetCluster("Static", out _));
        Assert.Equal(2, manager.Find("strict")!.PrioritySet.Current.Hosts.Length);
        Assert.Equal("10.0.0.9:5432", logical.LoadBalancer.ChooseHost(null)!.Address.ToString());
        Assert.Equal(2, _time.ArmedTimers);
    }

    [Fact]
    public async Task DisposeStopsEveryDnsRefresh()
    {
        _dns.Answer("api.internal", "10.0.0.1");
        var manager = Compile(new ConfigErrors(), Strict("a", "api.internal"), Strict("b", "api.internal"));
        await manager.InitializeAsync(CancellationToken.None);
        Assert.Equal(2, _time.ArmedTimers);

        await manager.DisposeAsync();
        _time.Advance(TimeSpan.FromMinutes(5));

        Assert.Equal(0, _time.ArmedTimers);
        Assert.Equal(2, _dns.QueryCount("api.internal"));
        // Lookups still answer for requests in flight.
        Assert.NotNull(manager.Find("a"));
    }

    [Theory]
    [InlineData("cluster_type: { name: envoy.clusters.dynamic_forward_proxy }", "static_resources.clusters[1].cluster_type", "custom cluster type \"envoy.clusters.dynamic_forward_proxy\" is not supported yet")]
    [InlineData("lb_policy: CLUSTER_PROVIDED\n    cluster_type: { name: envoy.clusters.aggregate }", "static_resources.clusters[1].cluster_type.typed_config", "an aggregate cluster needs its typed_config (envoy.extensions.clusters.aggregate.v3.ClusterConfig with the clusters to fail over between)")]
    [InlineData("lb_policy: MAGLEV\n    maglev_lb_config: { table_size: 65536 }", "static_resources.clusters[1].maglev_lb_config.table_size", "the table size of maglev must be a prime number (got 65536)")]
    [InlineData("lb_policy: RING_HASH\n    ring_hash_lb_config: { minimum_ring_size: 10, maximum_ring_size: 5 }", "static_resources.clusters[1].ring_hash_lb_config.minimum_ring_size", "ring hash: minimum_ring_size (10) > maximum_ring_size (5)")]
    [InlineData("lb_policy: CLUSTER_PROVIDED", "static_resources.clusters[1].lb_policy", "LB policy CLUSTER_PROVIDED is only valid for cluster type ORIGINAL_DST or a custom cluster type, not STATIC")]
    public void UnsupportedClustersAreErrorsAtTheirFieldPath(string settings, string path, string message)
    {
        var errors = new ConfigErrors();
        var manager = Compile(errors, Static("good"), "- name: bad\n    " + settings);

        var error = Assert.Single(errors.Errors);
        Assert.Equal(path, error.Path);
        Assert.Equal(message, error.Message);
        Assert.Equal(["good"], manager.Clusters.Select(c => c.Name));
    }

    [Theory]
    [InlineData("lb_policy: LEAST_REQUEST\n    least_request_lb_config: { choice_count: 3, active_request_bias: { default_value: 0.5, runtime_key: k } }", typeof(LeastRequestLoadBalancer))]
    [InlineData("lb_policy: RANDOM", typeof(RandomLoadBalancer))]
    [InlineData("lb_policy: RING_HASH\n    ring_hash_lb_config: { minimum_ring_size: 64, hash_function: MURMUR_HASH_2 }", typeof(RingHashLoadBalancer))]
    [InlineData("lb_policy: MAGLEV\n    maglev_lb_config: { table_size: 251 }\n    common_lb_config: { consistent_hashing_lb_config: { use_hostname_for_hashing: true, hash_balance_factor: 120 } }", typeof(MaglevLoadBalancer))]
    [InlineData("load_balancing_policy: { policies: [ { typed_extension_config: { name: lr, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest, choice_count: 3, active_request_bias: { default_value: 0.5 } } } } ] }", typeof(LeastRequestLoadBalancer))]
    [InlineData("load_balancing_policy: { policies: [ { typed_extension_config: { name: rh, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash, minimum_ring_size: 64, hash_function: MURMUR_HASH_2 } } } ] }", typeof(RingHashLoadBalancer))]
    [InlineData("load_balancing_policy: { policies: [ { typed_extension_config: { name: m, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.load_balancing_policies.maglev.v3.Maglev, table_size: 251, consistent_hashing_lb_config: { use_hostname_for_hashing: true, hash_balance_factor: 120 } } } } ] }", typeof(MaglevLoadBalancer))]
    [InlineData("load_balancing_policy: { policies: [ { typed_extension_config: { name: r, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.load_balancing_policies.random.v3.Random } } } ] }", typeof(RandomLoadBalancer))]
    [InlineData("load_balancing_policy: { policies: [ { typed_extension_config: { name: rr, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin, locality_lb_config: { locality_weighted_lb_config: {} } } } } ] }", typeof(RoundRobinLoadBalancer))]
    public void BothPolicyFormsCompileToTheSameLoadBalancers(string settings, Type expected)
    {
        var errors = new ConfigErrors();
        var manager = Compile(errors, Static("c", settings));

        Assert.Empty(errors.Errors);
        var lb = Assert.IsAssignableFrom<LoadBalancerBase>(manager.Find("c")!.LoadBalancer);
        Assert.IsType(expected, lb);
        if (expected == typeof(LeastRequestLoadBalancer))
        {
            Assert.Equal(3, lb.Settings.ChoiceCount);
            Assert.Equal(0.5, lb.Settings.ActiveRequestBias);
        }
        else if (expected == typeof(RingHashLoadBalancer))
        {
            Assert.Equal(64UL, lb.Settings.MinimumRingSize);
            Assert.True(lb.Settings.RingHashMurmur2);
        }
        else if (expected == typeof(MaglevLoadBalancer))
        {
            Assert.Equal(251UL, lb.Settings.MaglevTableSize);
            Assert.True(lb.Settings.UseHostnameForHashing);
            Assert.Equal(120u, lb.Settings.HashBalanceFactor);
        }
        else if (expected == typeof(RoundRobinLoadBalancer) && settings.Contains("locality"))
        {
            Assert.True(lb.Settings.LocalityWeighted);
        }
    }

    [Fact]
    public void EndpointProblemsAreErrorsAtTheirFieldPath()
    {
        var errors = new ConfigErrors();
        var manager = Compile(errors, """
            - name: pipe
                load_assignment:
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: 10.0.0.1, port_value: 80 } } }
                    - endpoint: { address: { pipe: { path: /tmp/sock } } }
              - name: resolver
                type: STRICT_DNS
                load_assignment:
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: a.internal, port_value: 80, resolver_name: custom } } }
              - name: two-hosts
                type: LOGICAL_DNS
                load_assignment:
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: a.internal, port_value: 80 } } }
                    - endpoint: { address: { socket_address: { address: b.internal, port_value: 80 } } }
              - name: no-host
                type: LOGICAL_DNS
              - name: backoff
                type: STRICT_DNS
                dns_failure_refresh_rate: { base_interval: 10s, max_interval: 5s }
              - name: named
                load_assignment:
                  endpoints:
                  - lb_endpoints:
                    - endpoint_name: some-endpoint
            """);

        Assert.Equal(
            [
                ("static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[1].endpoint.address.pipe", "only socket_address is implemented yet"),
                ("static_resources.clusters[1].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.resolver_name", "STRICT_DNS clusters must NOT have a custom resolver name set"),
                ("static_resources.clusters[2].load_assignment", "LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint (found 2 endpoints in 1 localities)"),
                ("static_resources.clusters[3]", "LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint (found 0 endpoints in 0 localities)"),
                ("static_resources.clusters[4].dns_failure_refresh_rate.max_interval", "dns_failure_refresh_rate must have max_interval greater than or equal to the base_interval"),
                ("static_resources.clusters[5].load_assignment.endpoints[0].lb_endpoints[0].endpoint_name", "named endpoints (ClusterLoadAssignment.named_endpoints) are not supported yet"),
            ],
            errors.Errors.Select(e => (e.Path, e.Message)));
        Assert.Empty(manager.Clusters);
    }

    [Fact]
    public void DuplicateNamesAreAnError()
    {
        var errors = new ConfigErrors();
        var manager = Compile(errors, Static("same"), Static("same"));

        var error = Assert.Single(errors.Errors);
        Assert.Equal("static_resources.clusters[1].name", error.Path);
        Assert.Equal("duplicate cluster name \"same\"", error.Message);
        Assert.Single(manager.Clusters);
    }

    [Fact]
    public async Task AddOrUpdateWarmsTheNewClusterThenReplacesAndStopsTheOldOne()
    {
        _dns.Answer("old.internal", "10.0.0.1");
        _dns.Answer("new.internal", "10.0.0.2");
        await using var manager = Compile(new ConfigErrors(), Strict("api", "old.internal"), Static("other"));
        await manager.InitializeAsync(CancellationToken.None);
        var old = manager.Find("api")!;

        var replacement = Build(Strict("api", "new.internal"));
        await manager.AddOrUpdateClusterAsync(replacement, CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Same(replacement, manager.Find("api"));
        Assert.Equal(["other", "api"], manager.Clusters.Select(c => c.Name));
        Assert.Equal("10.0.0.2:80", replacement.LoadBalancer.ChooseHost(null)!.Address.ToString());
        // The old cluster stopped refreshing; the new one refreshes.
        Assert.Equal(1, _dns.QueryCount("old.internal"));
        Assert.Equal(2, _dns.QueryCount("new.internal"));
        Assert.Equal("10.0.0.1:80", old.LoadBalancer.ChooseHost(null)!.Address.ToString());
    }

    [Fact]
    public async Task RemoveStopsTheCluster()
    {
        _dns.Answer("api.internal", "10.0.0.1");
        await using var manager = Compile(new ConfigErrors(), Strict("api", "api.internal"));
        await manager.InitializeAsync(CancellationToken.None);

        Assert.True(await manager.RemoveClusterAsync("api"));
        Assert.False(await manager.RemoveClusterAsync("api"));

        Assert.Null(manager.Find("api"));
        Assert.Equal(0, _time.ArmedTimers);
    }

    [Fact]
    public async Task AddingAfterDisposeIsRefusedAndStopsTheNewCluster()
    {
        _dns.Answer("api.internal", "10.0.0.1");
        var manager = Compile(new ConfigErrors());
        await manager.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => manager.AddOrUpdateClusterAsync(Build(Strict("api", "api.internal")), CancellationToken.None));

        Assert.Equal(0, _time.ArmedTimers);
    }

    private ClusterFactoryContext Context() => UpstreamTestConfigs.Deterministic(_dns, _time);

    private ClusterManager Compile(ConfigErrors errors, params string[] clusters) =>
        ClusterManager.Compile(
            UpstreamTestConfigs.ParseBootstrap("static_resources:\n  clusters:\n  " + string.Join("\n  ", clusters)),
            errors,
            Context());

    private Cluster Build(string cluster)
    {
        var config = UpstreamTestConfigs.ParseBootstrap("static_resources:\n  clusters:\n  " + cluster).StaticResources.Clusters[0];
        var errors = new ConfigErrors();
        var built = ClusterFactory.Create(config, "cds", errors, Context());
        Assert.Empty(errors.Errors);
        return built!;
    }

    private static string Static(string name, string extra = "") =>
        $"- name: {name}\n    {extra}\n    load_assignment: {{ endpoints: [ {{ lb_endpoints: [ {{ endpoint: {{ address: {{ socket_address: {{ address: 10.0.0.1, port_value: 80 }} }} }} }} ] }} ] }}";

    private static string Strict(string name, string dnsName) =>
        $"- name: {name}\n    type: STRICT_DNS\n    load_assignment: {{ endpoints: [ {{ lb_endpoints: [ {{ endpoint: {{ address: {{ socket_address: {{ address: {dnsName}, port_value: 80 }} }} }} }} ] }} ] }}";
}
