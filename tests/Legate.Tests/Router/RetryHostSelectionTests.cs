using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// Where a retry goes, end to end: the retry host predicates omit_canary_hosts and
/// omit_host_metadata (with host_selection_retry_max_attempts) and the retry priority
/// previous_priorities. Each failing host is given the load a retry would otherwise land on
/// again, so the test fails without the predicate or priority.
/// </summary>
public sealed class RetryHostSelectionTests
{
    private static string Config(string retryExtra, string endpoints) =>
        Build(AllDomains($$"""
            - match: { prefix: "/" }
              route:
                cluster: backend
                retry_policy:
                  retry_on: 5xx
                  num_retries: 1
            {{Indent(retryExtra, 6)}}
            """), []) + $$"""
          - name: backend
            connect_timeout: 2s
            common_lb_config: { healthy_panic_threshold: { value: 0 } }
            load_assignment:
              cluster_name: backend
              endpoints:
        {{Indent(endpoints, 6)}}
        """;

    private static async Task<string> GetAsync(InProcessLegate legate)
    {
        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
        return await response.Content.ReadAsStringAsync();
    }

    [Fact]
    public async Task OmitCanaryHostsKeepsRetriesOffCanaries()
    {
        await using var canary = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("canary") with { Status = 503 });
        await using var stable = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("stable"));
        var predicate = """
            retry_host_predicate:
            - name: envoy.retry_host_predicates.omit_canary_hosts
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate
            host_selection_retry_max_attempts: 50
            """;
        var endpoints = $$"""
            - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{canary.Port}} } } }
                load_balancing_weight: 20
                metadata: { filter_metadata: { envoy.lb: { canary: true } } }
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{stable.Port}} } } }
            """;
        await using var legate = await InProcessLegate.StartAsync(Config(predicate, endpoints));

        // Whatever the first attempt picks, a retry never goes to the canary again.
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal("stable", await GetAsync(legate));
        }
    }

    [Fact]
    public async Task OmitHostMetadataSkipsHostsWithTheLabels()
    {
        await using var draining = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("draining") with { Status = 503 });
        await using var serving = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("serving"));
        var predicate = """
            retry_host_predicate:
            - name: envoy.retry_host_predicates.omit_host_metadata
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.retry.host.omit_host_metadata.v3.OmitHostMetadataConfig
                metadata_match: { filter_metadata: { envoy.lb: { state: draining } } }
            host_selection_retry_max_attempts: 50
            """;

        // A list value matches when any of its elements does (Envoy's list_as_any).
        var endpoints = $$"""
            - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{draining.Port}} } } }
                load_balancing_weight: 20
                metadata: { filter_metadata: { envoy.lb: { state: [ready, draining] } } }
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{serving.Port}} } } }
                metadata: { filter_metadata: { envoy.lb: { state: ready } } }
            """;
        await using var legate = await InProcessLegate.StartAsync(Config(predicate, endpoints));

        for (var i = 0; i < 6; i++)
        {
            Assert.Equal("serving", await GetAsync(legate));
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task PreviousPrioritiesMovesTheRetryToTheNextPriority(bool configured)
    {
        await using var primary = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("primary") with { Status = 503 });
        await using var secondary = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("secondary"));
        var priority = configured ? """
            retry_priority:
              name: envoy.retry_priorities.previous_priorities
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig
                update_frequency: 1
            """ : "";
        var endpoints = $$"""
            - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{primary.Port}} } } }
            - priority: 1
              lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{secondary.Port}} } } }
            """;
        await using var legate = await InProcessLegate.StartAsync(Config(priority, endpoints));

        // Priority 0 is healthy, so it takes all the load; only previous_priorities sends the retry to priority 1.
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(configured ? "secondary" : "primary", await GetAsync(legate));
        }

        Assert.Equal(configured ? 3 : 6, primary.Log.Count);
    }
}
