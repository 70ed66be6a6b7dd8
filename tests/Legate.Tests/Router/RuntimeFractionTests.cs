using System.Net;
using Legate.Runtime;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// <c>runtime_fraction</c> on route matches and on <c>request_mirror_policies</c> reads the live
/// runtime as Envoy's featureEnabled: the runtime key's value (an integer percentage, or a
/// FractionalPercent as JSON/YAML or as a static-layer struct) replaces <c>default_value</c>, and
/// <c>/runtime_modify</c> changes matching for the next request.
/// </summary>
public sealed class RuntimeFractionTests
{
    private const string Runtime = """
        layered_runtime:
          layers:
          - name: static
            static_layer:
              routing: { canary: { numerator: 100, denominator: HUNDRED } }
          - name: admin
            admin_layer: {}

        """;

    [Fact]
    public async Task RouteRuntimeFractionFollowsTheRuntimeKey()
    {
        await using var canary = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("canary"));
        await using var stable = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("stable"));
        var routes = """
            - match:
                prefix: "/"
                runtime_fraction: { default_value: { numerator: 0 }, runtime_key: routing.canary }
              route: { cluster: canary }
            - match:
                prefix: "/"
                runtime_fraction: { default_value: { numerator: 100 }, runtime_key: routing.unset }
              route: { cluster: stable }
            """;
        var yaml = Runtime + Build(AllDomains(routes), [("canary", [canary.Port]), ("stable", [stable.Port])]);
        await using var legate = await InProcessLegate.StartAsync(yaml);

        // The stream's random value is a fresh draw per request (Envoy's stream id), so end to end
        // only 0% and 100% are certain; the boundaries are checked on FeatureEnabled below.
        // The static layer's FractionalPercent struct (100/100) replaces the default 0.
        Assert.Equal("canary", await SendAsync(legate));

        // An integer is a percentage of 100: 0 never, above 100 always.
        await ModifyAsync(legate, "routing.canary=0");
        Assert.Equal("stable", await SendAsync(legate));
        await ModifyAsync(legate, "routing.canary=101");
        Assert.Equal("canary", await SendAsync(legate));

        // A FractionalPercent written as JSON or YAML.
        await ModifyAsync(legate, "routing.canary=" + Uri.EscapeDataString("{\"numerator\": 10000, \"denominator\": \"TEN_THOUSAND\"}"));
        Assert.Equal("canary", await SendAsync(legate));
        await ModifyAsync(legate, "routing.canary=" + Uri.EscapeDataString("{numerator: 0, denominator: TEN_THOUSAND}"));
        Assert.Equal("stable", await SendAsync(legate));

        // Neither: the default value (0%) applies.
        await ModifyAsync(legate, "routing.canary=often");
        Assert.Equal("stable", await SendAsync(legate));

        // Removing the admin override uncovers the static layer again.
        await ModifyAsync(legate, "routing.canary=");
        Assert.Equal("canary", await SendAsync(legate));
        Assert.Equal(4, canary.Log.Count);
        Assert.Equal(3, stable.Log.Count);
    }

    [Fact]
    public async Task MirrorRuntimeFractionFollowsTheRuntimeKey()
    {
        await using var main = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("main"));
        await using var shadow = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("shadow"));
        await using var witness = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("witness"));
        var routes = """
            - match: { prefix: "/" }
              route:
                cluster: main
                request_mirror_policies:
                - cluster: shadow
                  runtime_fraction: { default_value: { numerator: 100 }, runtime_key: mirror.share }
                - cluster: witness
            """;
        var runtime = "layered_runtime:\n  layers:\n  - name: admin\n    admin_layer: {}\n";
        await using var legate = await InProcessLegate.StartAsync(runtime + Build(AllDomains(routes), [("main", [main.Port]), ("shadow", [shadow.Port]), ("witness", [witness.Port])]));

        // The runtime turns the default 100% off: the witness (always mirrored, decided after
        // the runtime policy) sees every request, the shadow none.
        await ModifyAsync(legate, "mirror.share=0");
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("main", await GetAsync(legate, "/off-" + i));
        }

        await witness.Log.WaitForRequestsAsync(5);
        Assert.Equal(0, Counter(legate, "cluster.shadow.upstream_rq_total"));

        // A FractionalPercent of 1 000 000/MILLION: every request again.
        await ModifyAsync(legate, "mirror.share=" + Uri.EscapeDataString("{numerator: 1000000, denominator: MILLION}"));
        Assert.Equal("main", await GetAsync(legate, "/on"));
        var copy = Assert.Single(await shadow.Log.WaitForRequestsAsync(1));
        Assert.Equal("/on", copy.RawTarget);
        Assert.All(shadow.Log.Requests, r => Assert.StartsWith("/on", r.RawTarget));
    }

    [Fact]
    public void FeatureEnabledReadsPercentagesAndFractionalPercents()
    {
        var snapshot = new RuntimeSnapshot(new Dictionary<string, string>
        {
            ["int"] = "25",
            ["big"] = "250",
            ["json"] = "{\"numerator\": 3, \"denominator\": \"TEN_THOUSAND\"}",
            ["yaml"] = "numerator: 7\ndenominator: MILLION",
            ["bad"] = "{numerator: -1}",
            ["text"] = "numerator",
        });

        Assert.True(snapshot.FeatureEnabled("int", 0, 100, 24));
        Assert.False(snapshot.FeatureEnabled("int", 100, 100, 25));
        Assert.True(snapshot.FeatureEnabled("big", 0, 100, 99));
        Assert.True(snapshot.FeatureEnabled("json", 0, 100, 10_002));
        Assert.False(snapshot.FeatureEnabled("json", 100, 100, 10_003));
        Assert.True(snapshot.FeatureEnabled("yaml", 0, 100, 2_000_006));
        Assert.False(snapshot.FeatureEnabled("yaml", 0, 100, 2_000_007));

        // Not a value Envoy can read as a percentage: the default applies.
        Assert.True(snapshot.FeatureEnabled("bad", 1, 100, 0));
        Assert.False(snapshot.FeatureEnabled("text", 0, 100, 0));
        Assert.True(snapshot.FeatureEnabled("missing", 1, 100, 100));
    }

    private static async Task<string> SendAsync(InProcessLegate legate)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        using var response = await legate.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    private static async Task<string> GetAsync(InProcessLegate legate, string path)
    {
        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", path));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    private static async Task ModifyAsync(InProcessLegate legate, string query)
    {
        using var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "runtime_modify?" + query), null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
