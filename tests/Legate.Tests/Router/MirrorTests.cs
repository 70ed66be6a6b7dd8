using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>request_mirror_policies end to end: the shadow gets a copy, the main request never waits for it.</summary>
public sealed class MirrorTests
{
    [Fact]
    public async Task TheShadowClusterGetsACopyWithAShadowAuthority()
    {
        await using var main = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("main"));
        await using var shadow = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("shadow"));
        var routes = """
            - match: { prefix: "/" }
              route:
                cluster: main
                request_mirror_policies:
                - cluster: shadow
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("main", [main.Port]), ("shadow", [shadow.Port])]));
        using var request = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("web", "/orders?id=7")) { Content = new StringContent("payload") };
        request.Headers.Host = "shop.example:8080";

        using var response = await legate.Http.SendAsync(request);

        Assert.Equal("main", await response.Content.ReadAsStringAsync());
        var copy = Assert.Single(await shadow.Log.WaitForRequestsAsync(1));
        Assert.Equal("POST", copy.Method);
        Assert.Equal("/orders?id=7", copy.RawTarget);
        Assert.Equal("payload", copy.BodyText);
        Assert.Equal("shop.example-shadow:8080", copy.Header("host"));
        Assert.Equal("shop.example:8080", Assert.Single(main.Log.Requests).Header("host"));
        await WaitUntilAsync(() => Counter(legate, "cluster.shadow.upstream_rq_completed") == 1);
    }

    [Fact]
    public async Task AHangingShadowNeitherDelaysNorFailsTheMainRequest()
    {
        var release = new TaskCompletionSource();
        await using var main = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("main"));
        await using var shadow = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("never") with { HoldUntil = release.Task });
        var routes = """
            - match: { prefix: "/" }
              route:
                cluster: main
                timeout: 60s
            """;
        var virtualHost = "request_mirror_policies:\n- cluster: shadow\n  disable_shadow_host_suffix_append: true\n";
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes, virtualHost), [("main", [main.Port]), ("shadow", [shadow.Port])]));

        for (var i = 0; i < 5; i++)
        {
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("main", await response.Content.ReadAsStringAsync());
        }

        // Every shadow is still held by the upstream while every main request has been answered.
        await WaitUntilAsync(() => shadow.Log.ActiveRequests == 5, "five shadows in flight");
        Assert.Equal(5, main.Log.Count);
        Assert.All(shadow.Log.Requests, r => Assert.DoesNotContain("-shadow", r.Header("host")));
        release.SetResult();
        await WaitUntilAsync(() => Counter(legate, "cluster.shadow.upstream_rq_completed") == 5);
    }

    [Fact]
    public async Task RuntimeFractionDecidesTheShare()
    {
        await using var main = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("main"));
        await using var never = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("never"));
        await using var always = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("always"));
        var routes = """
            - match: { prefix: "/" }
              route:
                cluster: main
                request_mirror_policies:
                - cluster: never
                  runtime_fraction: { default_value: { numerator: 0 } }
                - cluster: always
                  runtime_fraction: { default_value: { numerator: 100 } }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("main", [main.Port]), ("never", [never.Port]), ("always", [always.Port])]));

        for (var i = 0; i < 10; i++)
        {
            (await legate.Http.GetAsync(legate.ListenerUri("web", "/"))).Dispose();
        }

        await always.Log.WaitForRequestsAsync(10);

        // Both policies are decided together for each request, before either shadow is sent.
        Assert.Equal(0, never.Log.Count);
    }
}
