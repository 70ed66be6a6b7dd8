using System.Globalization;
using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Stats;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>
/// lb_subset_config beyond the first cut, through the cluster factory: per-selector fallback
/// policies (KEYS_SUBSET included), single_host_per_subset, panic_mode_any, list_as_any,
/// metadata_fallback_policy FALLBACK_LIST, locality_weight_aware / scale_locality_weight, and
/// weighted clusters' metadata_match merged over the route's.
/// </summary>
public sealed class SubsetFallbackTests
{
    /// <summary>A static cluster on 127.0.0.1 whose endpoint i has port 1000 + i and the given envoy.lb metadata (flow YAML).</summary>
    private static (Cluster Cluster, StatsStore Stats) Build(string subsetConfig, params string[] endpointMetadata) =>
        BuildYaml($"lb_subset_config: {subsetConfig}", endpointMetadata);

    /// <summary>As <see cref="Build"/>, with the typed envoy.load_balancing_policies.subset policy.</summary>
    private static (Cluster Cluster, StatsStore Stats) BuildTyped(string subset, string childPolicy, params string[] endpointMetadata) =>
        BuildYaml($$"""
            load_balancing_policy:
              policies:
              - typed_extension_config:
                  name: envoy.load_balancing_policies.subset
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.subset.v3.Subset
                    {{subset.Replace("\n", "\n        ", StringComparison.Ordinal)}}
                    subset_lb_policy: { policies: [ { typed_extension_config: { name: child, typed_config: { "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.{{childPolicy}}" } } } ] }
            """, endpointMetadata);

    private static (Cluster Cluster, StatsStore Stats) BuildYaml(string policyYaml, params string[] endpointMetadata)
    {
        var endpoints = string.Concat(endpointMetadata.Select((m, i) =>
            $"      - {{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {(1000 + i).ToString(CultureInfo.InvariantCulture)} }} }} }}, metadata: {{ filter_metadata: {{ envoy.lb: {m} }} }} }}\n"));
        var yaml = $"""
            name: c
            {policyYaml}
            load_assignment:
              endpoints:
              - lb_endpoints:
            {endpoints}
            """;
        var stats = new StatsStore();
        var context = UpstreamTestConfigs.Deterministic();
        var cluster = UpstreamTestConfigs.Build(yaml, new ClusterFactoryContext
        {
            DnsResolver = context.DnsResolver,
            TimeProvider = context.TimeProvider,
            Random = context.Random,
            LbRandom = LbRandom.Seeded(5),
            Stats = stats,
        });
        cluster.InitializeAsync(CancellationToken.None).GetAwaiter().GetResult();
        return (cluster, stats);
    }

    private static TestContext Criteria(string json)
    {
        var metadata = new Metadata();
        metadata.FilterMetadata.Add("envoy.lb", Struct.Parser.ParseJson(json));
        return new TestContext { MetadataMatch = MetadataMatchCriteria.From(metadata) };
    }

    /// <summary>The ports (minus 1000) of <paramref name="picks"/> picks, distinct and sorted; -1 for no host.</summary>
    private static int[] Picked(Cluster cluster, TestContext? context, int picks = 12)
    {
        var seen = new SortedSet<int>();
        for (var i = 0; i < picks; i++)
        {
            seen.Add(cluster.LoadBalancer.ChooseHost(context) is { } host ? host.Address.Port - 1000 : -1);
        }

        return [.. seen];
    }

    [Fact]
    public void ASelectorsOwnFallbackPolicyOverridesTheClusters()
    {
        var (cluster, stats) = Build(
            """
            { fallback_policy: NO_FALLBACK, default_subset: { stage: prod },
              subset_selectors: [
                { keys: [version, zone], fallback_policy: KEYS_SUBSET, fallback_keys_subset: [version] },
                { keys: [version] },
                { keys: [hardware], fallback_policy: ANY_ENDPOINT },
                { keys: [stage], fallback_policy: DEFAULT_SUBSET },
                { keys: [team], fallback_policy: NO_FALLBACK } ] }
            """,
            "{ version: v1, zone: a, stage: prod }",
            "{ version: v1, zone: b, stage: canary }",
            "{ version: v2, zone: a, hardware: c64, stage: prod }");

        // The subset itself.
        Assert.Equal([0], Picked(cluster, Criteria("""{"version": "v1", "zone": "a"}""")));
        // KEYS_SUBSET: no v1 host in zone c, so the lookup runs again with version only.
        Assert.Equal([0, 1], Picked(cluster, Criteria("""{"version": "v1", "zone": "c"}""")));
        // ... which finds nothing for v3 and falls to the cluster's NO_FALLBACK.
        Assert.Equal([-1], Picked(cluster, Criteria("""{"version": "v3", "zone": "a"}""")));
        // The hardware selector falls back to any endpoint, the stage selector to the default subset (stage: prod).
        Assert.Equal([0, 1, 2], Picked(cluster, Criteria("""{"hardware": "c32"}""")));
        Assert.Equal([0, 2], Picked(cluster, Criteria("""{"stage": "dev"}""")));
        // The team selector says NO_FALLBACK, like the cluster; a key set no selector has uses the cluster's.
        Assert.Equal([-1], Picked(cluster, Criteria("""{"team": "x"}""")));
        Assert.Equal([-1], Picked(cluster, Criteria("""{"colour": "red"}""")));
        Assert.Equal([-1], Picked(cluster, null));

        // Selector fallbacks and NO_FALLBACK are not counted as lb_subsets_fallback, as in Envoy; a subset pick is lb_subsets_selected.
        Assert.Equal(0, stats.Counter("cluster.c.lb_subsets_fallback").Value);
        Assert.Equal(24, stats.Counter("cluster.c.lb_subsets_selected").Value);
    }

    [Fact]
    public void PanicModeAnyTakesAnyHostWhenTheFallbackFindsNone()
    {
        var (cluster, stats) = Build(
            "{ fallback_policy: DEFAULT_SUBSET, default_subset: { stage: gone }, panic_mode_any: true, subset_selectors: [ { keys: [version] } ] }",
            "{ version: v1 }", "{ version: v2 }");

        Assert.Equal([0, 1], Picked(cluster, Criteria("""{"version": "v9"}""")));
        Assert.Equal(12, stats.Counter("cluster.c.lb_subsets_fallback_panic").Value);
        Assert.Equal(0, stats.Counter("cluster.c.lb_subsets_fallback").Value);

        // Without panic_mode_any the empty default subset finds no host.
        var (strict, _) = Build(
            "{ fallback_policy: DEFAULT_SUBSET, default_subset: { stage: gone }, subset_selectors: [ { keys: [version] } ] }",
            "{ version: v1 }", "{ version: v2 }");
        Assert.Equal([-1], Picked(strict, Criteria("""{"version": "v9"}""")));
    }

    [Fact]
    public void SingleHostPerSubsetKeepsTheFirstHostAndCountsTheDuplicates()
    {
        var (cluster, stats) = Build(
            "{ subset_selectors: [ { keys: [id], single_host_per_subset: true } ] }",
            "{ id: a }", "{ id: b }", "{ id: a }", "{ id: a }");

        Assert.Equal([0], Picked(cluster, Criteria("""{"id": "a"}""")));
        Assert.Equal([1], Picked(cluster, Criteria("""{"id": "b"}""")));
        Assert.Equal(2, stats.Gauge("cluster.c.lb_subsets_single_host_per_subset_duplicate", ImportMode.Accumulate).Value);
        Assert.Equal(2, stats.Gauge("cluster.c.lb_subsets_active", ImportMode.NeverImport).Value);

        // The subset's host is chosen whatever its health, as Envoy's single-host subset.
        var first = cluster.PrioritySet.Current.Hosts[0];
        first.SetHealthStatus(HealthStatus.Unhealthy);
        cluster.PrioritySet.RefreshHealth();
        Assert.Equal([0], Picked(cluster, Criteria("""{"id": "a"}""")));
    }

    [Fact]
    public void ListAsAnyPutsAHostInASubsetPerListElement()
    {
        var (cluster, _) = Build(
            "{ list_as_any: true, fallback_policy: DEFAULT_SUBSET, default_subset: { tier: gold }, subset_selectors: [ { keys: [version] } ] }",
            "{ version: [v1, v2], tier: [gold, silver] }", "{ version: v2, tier: bronze }", "{ version: [v3], tier: silver }");

        Assert.Equal([0], Picked(cluster, Criteria("""{"version": "v1"}""")));
        Assert.Equal([0, 1], Picked(cluster, Criteria("""{"version": "v2"}""")));
        Assert.Equal([2], Picked(cluster, Criteria("""{"version": "v3"}""")));
        // The default subset matches a list holding the value too.
        Assert.Equal([0], Picked(cluster, Criteria("""{"version": "v4"}""")));

        // Without list_as_any a list value is one value of its own: no v1 subset.
        var (plain, _) = Build(
            "{ subset_selectors: [ { keys: [version] } ] }",
            "{ version: [v1, v2] }", "{ version: v2 }");
        Assert.Equal([-1], Picked(plain, Criteria("""{"version": "v1"}""")));
        Assert.Equal([1], Picked(plain, Criteria("""{"version": "v2"}""")));
    }

    [Fact]
    public void FallbackListTriesEachVariantMergedOverTheCriteria()
    {
        const string Selectors = "subset_selectors: [ { keys: [version] }, { keys: [hardware, version] } ]";
        string[] hosts = ["{ version: '1.0', hardware: c32 }", "{ version: '2.0', hardware: c64 }", "{ version: '3.0' }"];
        var (cluster, _) = Build("{ metadata_fallback_policy: FALLBACK_LIST, " + Selectors + " }", hosts);

        // Envoy's example: {2.0, c64} first; then {1.0, c32}; then {3.0}.
        const string Example = """{"version": "1.0", "fallback_list": [{"version": "2.0", "hardware": "c64"}, {"hardware": "c32"}, {"version": "3.0"}]}""";
        Assert.Equal([1], Picked(cluster, Criteria(Example)));
        Assert.Equal([0], Picked(cluster, Criteria("""{"version": "1.0", "fallback_list": [{"version": "2.0", "hardware": "c32"}, {"hardware": "c32"}]}""")));
        Assert.Equal([2], Picked(cluster, Criteria("""{"version": "1.0", "fallback_list": [{"hardware": "c64"}, {"version": "3.0"}]}""")));
        Assert.Equal([-1], Picked(cluster, Criteria("""{"version": "1.0", "fallback_list": [{"hardware": "c64"}]}""")));
        // An empty list: the criteria without it.
        Assert.Equal([0], Picked(cluster, Criteria("""{"version": "1.0", "fallback_list": []}""")));

        // Without FALLBACK_LIST, fallback_list is just another key: no subset has it.
        var (plain, _) = Build("{ " + Selectors + " }", hosts);
        Assert.Equal([-1], Picked(plain, Criteria(Example)));
    }

    [Fact]
    public void LocalityWeightAwareSubsetsUseTheLocalityWeightsScaledByTheirShareOfHosts()
    {
        // east (weight 1): hosts 0 (v1), 1 (v2), 2 (v2), 3 (v2); west (weight 1): hosts 4 (v1), 5 (v1), 6 (v1), 7 (v2).
        static string Yaml(string flags) => $$"""
            name: c
            common_lb_config: { locality_weighted_lb_config: {} }
            lb_subset_config: { {{flags}} subset_selectors: [ { keys: [version] } ] }
            load_assignment:
              endpoints:
              - locality: { zone: east }
                load_balancing_weight: 1
                lb_endpoints:
            {{Endpoints(0, "v1", "v2", "v2", "v2")}}
              - locality: { zone: west }
                load_balancing_weight: 1
                lb_endpoints:
            {{Endpoints(4, "v1", "v1", "v1", "v2")}}
            """;

        static int[] EastWest(string flags, int localityWeight = 1)
        {
            var yaml = Yaml(flags).Replace("load_balancing_weight: 1", "load_balancing_weight: " + localityWeight.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
            var cluster = UpstreamTestConfigs.Build(yaml, new ClusterFactoryContext { LbRandom = LbRandom.Seeded(3), TimeProvider = new ManualTimeProvider() });
            cluster.InitializeAsync(CancellationToken.None).GetAwaiter().GetResult();
            var context = Criteria("""{"version": "v1"}""");
            var counts = new int[2];
            for (var i = 0; i < 40_000; i++)
            {
                counts[cluster.LoadBalancer.ChooseHost(context)!.Address.Port - 2000 < 4 ? 0 : 1]++;
            }

            return counts;
        }

        // The v1 subset has 1 host in the east and 3 in the west. Not locality aware (the default):
        // round robin over its 4 hosts, whatever the cluster's locality weights.
        Assert.InRange(EastWest("")[0], 9_500, 10_500);
        // Locality aware: the cluster's locality weights (1:1) split the subset's picks in half.
        Assert.InRange(EastWest("locality_weight_aware: true,")[0], 19_000, 21_000);
        // Scaled: weights 4:4 become round(4 x 1/4) = 1 and round(4 x 3/4) = 3.
        Assert.InRange(EastWest("locality_weight_aware: true, scale_locality_weight: true,", localityWeight: 4)[0], 9_500, 10_500);
        // With 1:1 east's round(1/4) is 0: a locality of weight 0 takes nothing.
        Assert.Equal(0, EastWest("locality_weight_aware: true, scale_locality_weight: true,")[0]);
    }

    [Theory]
    [InlineData("RING_HASH")]
    [InlineData("MAGLEV")]
    public void RingHashAndMaglevInsideASubsetFoldTheScaledLocalityWeights(string policy)
    {
        // As above: the v1 subset has 1 host in the east and 3 in the west. Hashing policies fold
        // the subset's locality weights into host weights (Envoy reads the subset's host set).
        static double East(string flags, int localityWeight, string policy)
        {
            var yaml = $$"""
                name: c
                lb_policy: {{policy}}
                common_lb_config: { locality_weighted_lb_config: {} }
                lb_subset_config: { {{flags}} subset_selectors: [ { keys: [version] } ] }
                load_assignment:
                  endpoints:
                  - locality: { zone: east }
                    load_balancing_weight: {{localityWeight}}
                    lb_endpoints:
                {{Endpoints(0, "v1", "v2", "v2", "v2")}}
                  - locality: { zone: west }
                    load_balancing_weight: {{localityWeight}}
                    lb_endpoints:
                {{Endpoints(4, "v1", "v1", "v1", "v2")}}
                """;
            var cluster = UpstreamTestConfigs.Build(yaml, new ClusterFactoryContext { LbRandom = LbRandom.Seeded(3), TimeProvider = new ManualTimeProvider() });
            cluster.InitializeAsync(CancellationToken.None).GetAwaiter().GetResult();
            var context = Criteria("""{"version": "v1"}""");
            var random = new Random(11);
            var east = 0;
            const int Picks = 40_000;
            for (var i = 0; i < Picks; i++)
            {
                context.HashKey = (ulong)random.NextInt64();
                east += cluster.LoadBalancer.ChooseHost(context)!.Address.Port - 2000 < 4 ? 1 : 0;
            }

            return (double)east / Picks;
        }

        // Locality aware, not scaled: 4:4 splits the subset in half between its 1 east and 3 west hosts.
        Assert.InRange(East("locality_weight_aware: true,", 4, policy), 0.47, 0.53);
        // Scaled: 4:4 becomes 1:3, so the east host has a quarter of the hash space.
        Assert.InRange(East("locality_weight_aware: true, scale_locality_weight: true,", 4, policy), 0.22, 0.28);
        // 1:1 scaled gives the east round(1/4) = 0: its host leaves the table.
        Assert.Equal(0, East("locality_weight_aware: true, scale_locality_weight: true,", 1, policy));
    }

    private static string Endpoints(int first, params string[] versions) => string.Concat(versions.Select((v, i) =>
        $"      - {{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {(2000 + first + i).ToString(CultureInfo.InvariantCulture)} }} }} }}, metadata: {{ filter_metadata: {{ envoy.lb: {{ version: {v} }} }} }} }}\n"));

    [Theory]
    [InlineData("{ keys: [a, b], fallback_keys_subset: [a] }", "fallback_keys_subset can be set only for KEYS_SUBSET fallback_policy")]
    [InlineData("{ keys: [a, b], fallback_policy: KEYS_SUBSET }", "fallback_keys_subset cannot be empty")]
    [InlineData("{ keys: [a, b], fallback_policy: KEYS_SUBSET, fallback_keys_subset: [c] }", "fallback_keys_subset must be a subset of selector keys")]
    [InlineData("{ keys: [a, b], fallback_policy: KEYS_SUBSET, fallback_keys_subset: [b, a] }", "fallback_keys_subset cannot be equal to keys")]
    public void BadFallbackKeysAreEnvoysErrorsOnTheField(string selector, string message)
    {
        var errors = new ConfigErrors();
        ClusterFactory.Create(UpstreamTestConfigs.ParseCluster($"name: c\nlb_subset_config: {{ subset_selectors: [ {selector} ] }}"), "clusters[0]", errors, UpstreamTestConfigs.Deterministic());

        var error = Assert.Single(errors.Errors);
        Assert.Equal("clusters[0].lb_subset_config.subset_selectors[0].fallback_keys_subset", error.Path);
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void AWeightedClustersMetadataMatchIsMergedOverTheRoutes()
    {
        var route = MetadataMatchCriteria.From(Lb("""{"version": "v1", "stage": "prod"}"""));
        var merged = MetadataMatchCriteria.Merge(route, Lb("""{"version": "v2", "zone": "a"}"""))!;

        Assert.Equal(["stage", "version", "zone"], merged.Criteria.Select(c => c.Name));
        Assert.Equal(["prod", "v2", "a"], merged.Criteria.Select(c => c.Value.StringValue));
        Assert.Same(route, MetadataMatchCriteria.Merge(route, null));
        Assert.Equal(["zone"], MetadataMatchCriteria.Merge(null, Lb("""{"zone": "a"}"""))!.Criteria.Select(c => c.Name));

        static Metadata Lb(string json)
        {
            var metadata = new Metadata();
            metadata.FilterMetadata.Add("envoy.lb", Struct.Parser.ParseJson(json));
            return metadata;
        }
    }

    [Theory]
    [InlineData("maglev.v3.Maglev", 1)]
    [InlineData("round_robin.v3.RoundRobin", 3)]
    public void TheTypedSubsetPolicyPicksSubsetsLikeLbSubsetConfigAndBalancesThemWithItsSubsetLbPolicy(string child, int distinct)
    {
        var (cluster, stats) = BuildTyped(
            "fallback_policy: NO_FALLBACK\nsubset_selectors: [ { keys: [version] } ]",
            child,
            """{ version: v1 }""", """{ version: v1 }""", """{ version: v1 }""", """{ version: v2 }""");
        Assert.IsType<SubsetLoadBalancer>(cluster.LoadBalancer);

        // The v1 subset: Maglev keeps one request hash on one host, round robin visits all three.
        var v1 = Criteria("""{"version": "v1"}""");
        v1.HashKey = 0x1234_5678_9abc_def0;
        Assert.Equal(distinct, Picked(cluster, v1).Length);
        Assert.Subset(new SortedSet<int> { 0, 1, 2 }, new SortedSet<int>(Picked(cluster, v1)));
        Assert.Equal([3], Picked(cluster, Criteria("""{"version": "v2"}""")));
        Assert.Equal([-1], Picked(cluster, Criteria("""{"version": "v3"}""")));
        Assert.True(stats.Counter("cluster.c.lb_subsets_selected").Value > 0);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AllowRedundantKeysMatchesTheSelectorWithTheMostKeysTheRequestCovers(bool allow)
    {
        var (cluster, _) = BuildTyped(
            $"fallback_policy: NO_FALLBACK\nallow_redundant_keys: {(allow ? "true" : "false")}\nsubset_selectors: [ {{ keys: [version] }}, {{ keys: [stage, version] }}, {{ keys: [A, B] }}, {{ keys: [C, D] }} ]",
            "round_robin.v3.RoundRobin",
            """{ version: v1, stage: prod }""", """{ version: v1, stage: dev }""", """{ version: v2 }""", """{ A: a, B: b, C: c, D: d }""");

        // An exact match needs no help.
        Assert.Equal([1], Picked(cluster, Criteria("""{"stage": "dev", "version": "v1"}""")));

        // Envoy's examples: a redundant key misses every subset, unless allowed; then the
        // selector with the most keys the request covers (stage + version) decides ...
        Assert.Equal(allow ? [0] : [-1], Picked(cluster, Criteria("""{"redundant-key": "x", "stage": "prod", "version": "v1"}""")));
        Assert.Equal(allow ? [2] : [-1], Picked(cluster, Criteria("""{"redundant-key": "x", "version": "v2"}""")));

        // ... and on a tie the first of them ([A, B] before [C, D]): A=a, B=b is the subset, C is not looked at.
        Assert.Equal(allow ? [3] : [-1], Picked(cluster, Criteria("""{"A": "a", "B": "b", "C": "other", "D": "d"}""")));
    }

    [Fact]
    public void TheTypedSubsetPolicyNeedsASubsetLbPolicy()
    {
        var errors = new ConfigErrors();
        var config = UpstreamTestConfigs.ParseCluster("""
            name: c
            load_balancing_policy:
              policies:
              - typed_extension_config:
                  name: envoy.load_balancing_policies.subset
                  typed_config: { "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.subset.v3.Subset, subset_selectors: [ { keys: [version] } ] }
            load_assignment: { endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 80 } } } } ] } ] }
            """);
        ClusterFactory.Create(config, "clusters[0]", errors, UpstreamTestConfigs.Deterministic());
        Assert.Contains(errors.Errors, e => e.Path.EndsWith("subset_lb_policy", StringComparison.Ordinal) && e.Message.Contains("required", StringComparison.Ordinal));
    }

    private sealed class TestContext : LoadBalancerContext
    {
    }
}
