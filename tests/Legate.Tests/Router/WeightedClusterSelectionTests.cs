using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// weighted_clusters beyond the configured weights, end to end: <c>header_name</c> (the request's
/// own random value, as Envoy: one numeric value, else the stream's) and <c>runtime_key_prefix</c>
/// (weights read from the runtime per request, changed live with /runtime_modify).
/// </summary>
public sealed class WeightedClusterSelectionTests
{
    private const string AnyRequestId = "00000000-0000-4000-8000-000000000000";

    private static async Task<(HttpStatusCode Status, string Body)> SendAsync(InProcessLegate legate, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await legate.Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task HeaderNameSuppliesTheRandomValue()
    {
        await using var first = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("first"));
        await using var second = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("second"));
        var routes = """
            - match: { prefix: "/" }
              route:
                weighted_clusters:
                  header_name: X-Split-Value
                  clusters:
                  - { name: first, weight: 10 }
                  - { name: second, weight: 90 }
            """;

        var yaml = Build(AllDomains(routes), [("first", [first.Port]), ("second", [second.Port])], hcmExtra: "preserve_external_request_id: true\n");
        await using var legate = await InProcessLegate.StartAsync(yaml);
        var id = ("x-request-id", AnyRequestId);

        Assert.Equal("first", (await SendAsync(legate, id, ("x-split-value", "9"))).Body);      // 9 % 100 < 10
        Assert.Equal("second", (await SendAsync(legate, id, ("x-split-value", "10"))).Body);    // 10 % 100 ≥ 10
        Assert.Equal("first", (await SendAsync(legate, id, ("x-split-value", "18446744073709551605"))).Body); // (2⁶⁴ − 11) % 100 = 5
        Assert.Equal("second", (await SendAsync(legate, id, ("x-split-value", "1099"))).Body);  // 1099 % 100 = 99

        // Not a number, or given twice: the stream's own random value as Envoy (a fresh draw per
        // request, the request id plays no part; StreamRandomValueTests shows it varies).
        foreach (var fallback in new[] { (await SendAsync(legate, id, ("x-split-value", "fifty"))), await SendAsync(legate, id, ("x-split-value", "50"), ("x-split-value", "50")), await SendAsync(legate, id) })
        {
            Assert.Equal(HttpStatusCode.OK, fallback.Status);
            Assert.Contains(fallback.Body, new[] { "first", "second" });
        }
    }

    [Fact]
    public async Task RuntimeKeyPrefixReadsEachClustersWeightFromTheRuntime()
    {
        await using var first = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("first"));
        await using var second = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("second"));
        var routes = """
            - match: { prefix: "/" }
              route:
                weighted_clusters:
                  runtime_key_prefix: routing.split
                  clusters:
                  - { name: first, weight: 100 }
                  - { name: second, weight: 0 }
            """;
        var runtime = """
            layered_runtime:
              layers:
              - name: static
                static_layer: { routing.split.first: 0, routing.split.second: 5 }
              - name: admin
                admin_layer: {}

            """;
        var yaml = runtime + Build(AllDomains(routes), [("first", [first.Port]), ("second", [second.Port])]);
        await using var legate = await InProcessLegate.StartAsync(yaml);

        // The runtime's weights replace the configured ones: everything goes to "second".
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("second", (await SendAsync(legate)).Body);
        }

        // A key removed from the admin layer falls back to the lower layer; a changed one applies at once.
        await ModifyAsync(legate, "routing.split.first=7&routing.split.second=0");
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("first", (await SendAsync(legate)).Body);
        }

        // Every weight 0: no cluster can be picked, so no route (Envoy's answer: 404 NR).
        await ModifyAsync(legate, "routing.split.first=0");
        var (status, _) = await SendAsync(legate);
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal(40, first.Log.Count + second.Log.Count);
    }

    private static async Task ModifyAsync(InProcessLegate legate, string query)
    {
        using var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "runtime_modify?" + query), null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
