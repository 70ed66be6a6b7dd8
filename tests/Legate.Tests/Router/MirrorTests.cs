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

    [Fact]
    public async Task RuntimeFractionIsDecidedByTheRequestIdNotAFreshDraw()
    {
        await using var main = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("main"));
        await using var half = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("half"));
        await using var runtime = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("runtime"));
        var routes = """
            - match: { prefix: "/" }
              route:
                cluster: main
                request_mirror_policies:
                - cluster: half
                  runtime_fraction: { default_value: { numerator: 50 } }
                - cluster: runtime
                  runtime_fraction: { default_value: { numerator: 0 }, runtime_key: mirror.share }
            """;
        var yaml = Build(AllDomains(routes), [("main", [main.Port]), ("half", [half.Port]), ("runtime", [runtime.Port])], hcmExtra: "preserve_external_request_id: true\n");
        await using var legate = await InProcessLegate.StartAsync(yaml);

        // The first 8 hex digits of the request id, modulo 100, against the numerator (Envoy's featureEnabled on the stream id).
        string[] mirrored = ["00000031-0000-4000-8000-000000000001", "000000c8-0000-4000-8000-000000000002"]; // 49, 200 % 100 = 0
        string[] skipped = ["00000032-0000-4000-8000-000000000003", "000000c7-0000-4000-8000-000000000004"]; // 50, 199 % 100 = 99
        async Task SendAllAsync()
        {
            for (var round = 0; round < 3; round++)
            {
                foreach (var id in mirrored.Concat(skipped))
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
                    request.Headers.Add("x-request-id", id);
                    (await legate.Http.SendAsync(request)).Dispose();
                }
            }
        }

        await SendAllAsync();
        var copies = await half.Log.WaitForRequestsAsync(6);
        Assert.Equal(mirrored.SelectMany(id => Enumerable.Repeat(id, 3)).Order(), copies.Select(c => c.Header("x-request-id")!).Order());
        Assert.Equal(0, runtime.Log.Count);

        // The runtime's value under runtime_key replaces the default, decided on the same value.
        using (var modify = await legate.Http.PostAsync(new Uri(legate.AdminUri, "/runtime_modify?mirror.share=50"), null))
        {
            Assert.Equal(HttpStatusCode.OK, modify.StatusCode);
        }

        await SendAllAsync();
        var runtimeCopies = await runtime.Log.WaitForRequestsAsync(6);
        Assert.Equal(mirrored.SelectMany(id => Enumerable.Repeat(id, 3)).Order(), runtimeCopies.Select(c => c.Header("x-request-id")!).Order());
    }
}
