using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>Route actions end to end: redirects, rewrites, cluster_header, weighted clusters, direct_response files, route idle_timeout.</summary>
public sealed class RouteActionsTests
{
    private static HttpClient NoRedirects() => new(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false });

    [Fact]
    public async Task RedirectAnswersWithItsLocationAndCountsRqRedirect()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("upstream"));
        var routes = """
            - name: to-https
              match: { prefix: "/old/" }
              redirect: { https_redirect: true, prefix_rewrite: "/new/", response_code: PERMANENT_REDIRECT }
            - match: { prefix: "/" }
              route: { cluster: backend }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])]));
        using var client = NoRedirects();
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/old/page?x=1"));
        request.Headers.Host = "example.com";

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.PermanentRedirect, response.StatusCode);
        Assert.Equal("https://example.com/new/page?x=1", response.Headers.Location?.OriginalString);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(1, Counter(legate, "http.web.rq_redirect"));
        Assert.Equal(0, upstream.Log.Count);
    }

    [Fact]
    public async Task PrefixRewriteReachesTheUpstreamWithTheOriginalPathHeader()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var routes = """
            - match: { prefix: "/api/" }
              route: { cluster: backend, prefix_rewrite: "/" }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])]));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/api/users?page=2"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(upstream.Log.Requests);
        Assert.Equal("/users?page=2", seen.RawTarget);
        Assert.Equal("/api/users?page=2", seen.Header("x-envoy-original-path"));
    }

    [Fact]
    public async Task RegexRewriteAndHostRewriteLiteral()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var routes = """
            - match: { prefix: "/service/" }
              route:
                cluster: backend
                host_rewrite_literal: internal.example
                append_x_forwarded_host: true
                regex_rewrite:
                  pattern: { regex: "^/service/([^/]+)(/.*)$" }
                  substitution: "\\2/instance/\\1"
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])]));
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/service/foo/bar?q=1"));
        request.Headers.Host = "public.example";

        using var response = await legate.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(upstream.Log.Requests);
        Assert.Equal("/bar/instance/foo?q=1", seen.RawTarget);
        Assert.Equal("internal.example", seen.Header("host"));
        Assert.Equal("public.example", seen.Header("x-forwarded-host"));
    }

    [Fact]
    public async Task HostRewriteFromAHeaderAndFromThePath()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var routes = """
            - match: { prefix: "/by-header" }
              route: { cluster: backend, host_rewrite_header: x-target-host }
            - match: { prefix: "/" }
              route:
                cluster: backend
                host_rewrite_path_regex:
                  pattern: { regex: "^/([^/]+)/.*$" }
                  substitution: "\\1.svc"
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])]));
        using var byHeader = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/by-header"));
        byHeader.Headers.Add("x-target-host", "chosen.example");

        (await legate.Http.SendAsync(byHeader)).Dispose();
        (await legate.Http.GetAsync(legate.ListenerUri("web", "/orders/list?x=1"))).Dispose();

        var requests = await upstream.Log.WaitForRequestsAsync(2);
        Assert.Equal("chosen.example", requests[0].Header("host"));
        Assert.Equal("orders.svc", requests[1].Header("host"));
    }

    [Fact]
    public async Task AutoHostRewriteUsesTheEndpointHostname()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var routes = """
            - match: { prefix: "/" }
              route: { cluster: backend, auto_host_rewrite: true }
            """;
        var yaml = Build(AllDomains(routes), [("backend", [upstream.Port])]).Replace("- endpoint: { address:", "- endpoint: { hostname: backend.internal, address:", StringComparison.Ordinal);
        await using var legate = await InProcessLegate.StartAsync(yaml);

        (await legate.Http.GetAsync(legate.ListenerUri("web", "/"))).Dispose();

        Assert.Equal("backend.internal", Assert.Single(upstream.Log.Requests).Header("host"));
    }

    [Fact]
    public async Task ClusterHeaderPicksTheClusterAndAMissingHeaderIsNc()
    {
        await using var one = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("one"));
        await using var two = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("two"));
        var routes = """
            - match: { prefix: "/" }
              route: { cluster_header: x-cluster }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("one", [one.Port]), ("two", [two.Port])]));

        foreach (var (cluster, expected) in new[] { ("two", "two"), ("one", "one") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
            request.Headers.Add("x-cluster", cluster);
            using var response = await legate.Http.SendAsync(request);
            Assert.Equal(expected, await response.Content.ReadAsStringAsync());
        }

        using var missing = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, missing.StatusCode);
        Assert.Equal(1, Counter(legate, "http.web.no_cluster"));
    }

    [Fact]
    public async Task WeightedClustersSplitTrafficByWeight()
    {
        await using var heavy = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("heavy"));
        await using var light = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("light"));
        var routes = """
            - match: { prefix: "/" }
              route:
                weighted_clusters:
                  clusters:
                  - { name: heavy, weight: 75 }
                  - { name: light, weight: 25 }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("heavy", [heavy.Port]), ("light", [light.Port])]));

        // Every request gets a fresh random value (Envoy's stream id), which picks the cluster.
        const int total = 400;
        for (var i = 0; i < total; i++)
        {
            (await legate.Http.GetAsync(legate.ListenerUri("web", "/"))).Dispose();
        }

        // 75% of 400 = 300, standard deviation ≈ 8.7: ±50 is more than 5 deviations.
        Assert.Equal(total, heavy.Log.Count + light.Log.Count);
        Assert.InRange(heavy.Log.Count, 250, 350);
    }

    [Fact]
    public async Task WeightedClusterChoiceIsDeterministicForAGivenHeaderValue()
    {
        await using var heavy = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("heavy"));
        await using var light = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("light").WithHeader("x-from", "light"));
        var routes = """
            - match: { prefix: "/" }
              route:
                weighted_clusters:
                  total_weight: 100
                  header_name: x-split
                  clusters:
                  - { name: heavy, weight: 75 }
                  - name: light
                    weight: 25
                    host_rewrite_literal: light.internal
            """;
        var yaml = Build(AllDomains(routes), [("heavy", [heavy.Port]), ("light", [light.Port])]);
        await using var legate = await InProcessLegate.StartAsync(yaml);

        async Task<string> SendAsync(string value)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
            request.Headers.Add("x-split", value);
            using var response = await legate.Http.SendAsync(request);
            return await response.Content.ReadAsStringAsync();
        }

        // Envoy's deterministic selection "when asked": header_name's value % total_weight against the weights.
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("heavy", await SendAsync("0"));
            Assert.Equal("light", await SendAsync("95"));
        }

        Assert.Equal("heavy", await SendAsync("74"));
        Assert.Equal("light", await SendAsync("75"));
        Assert.Equal("heavy", await SendAsync("100"));

        // The weighted cluster's own host_rewrite_literal applies to it only.
        Assert.All(light.Log.Requests, r => Assert.Equal("light.internal", r.Header("host")));
        Assert.All(heavy.Log.Requests, r => Assert.NotEqual("light.internal", r.Header("host")));
        Assert.Equal(6, light.Log.Count);
    }

    [Fact]
    public async Task DirectResponseBodyFromAFile()
    {
        var file = Path.Combine(Path.GetTempPath(), $"legate-body-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, "from a file\n");
        try
        {
            var routes = $$"""
                - match: { prefix: "/" }
                  direct_response: { status: 200, body: { filename: "{{file}}" } }
                """;
            await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), []));

            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

            Assert.Equal("from a file\n", await response.Content.ReadAsStringAsync());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task RouteIdleTimeoutOverridesTheStreamIdleTimeout()
    {
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("late") with { HoldUntil = never.Task });
        var routes = """
            - match: { prefix: "/" }
              route: { cluster: backend, idle_timeout: 0.3s }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])]));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/"));

        Assert.Equal(HttpStatusCode.RequestTimeout, response.StatusCode);
        Assert.Equal("stream timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, Counter(legate, "http.web.downstream_rq_idle_timeout"));
        never.SetResult();
    }
}
