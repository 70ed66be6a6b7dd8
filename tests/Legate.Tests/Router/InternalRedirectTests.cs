using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// internal_redirect_policy end to end: the router follows an upstream 3xx itself (re-routing the
/// request to the location, x-envoy-original-url, the new route's cluster), within
/// max_internal_redirects, redirect_response_codes, the scheme rule and the predicates; every
/// redirect it does not follow reaches the client unchanged. Stats on the answering cluster.
/// </summary>
public sealed class InternalRedirectTests
{
    private static UpstreamResponse Redirect(int status, string location) => UpstreamResponse.Text("moved", status).WithHeader("location", location);

    private static async Task<(InProcessLegate Legate, ScriptedUpstream Origin, ScriptedUpstream Target)> StartAsync(UpstreamScript originScript, string policy, string extraRoutes = "", bool http2 = false)
    {
        var protocols = http2 ? UpstreamProtocols.Http2 : UpstreamProtocols.Http1;
        var origin = await ScriptedUpstream.StartAsync(originScript, protocols);
        var target = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()), protocols);
        var routes = $$"""
            - name: start
              match: { prefix: "/start" }
              route:
                cluster: origin
                internal_redirect_policy: {{policy}}
            {{extraRoutes}}
            - name: final
              match: { prefix: "/final" }
              route: { cluster: target }
            - name: other
              match: { prefix: "/other" }
              route: { cluster: target }
            """;
        var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("origin", [origin.Port]), ("target", [target.Port])], clusterExtra: http2 ? "http2_protocol_options: {}\n" : string.Empty));
        return (legate, origin, target);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A302IsFollowedToTheLocationsRoute(bool http2)
    {
        var (legate, origin, target) = await StartAsync(new UpstreamScript(Redirect(302, "http://redirected.example/final/page?x=1#top")), "{}", http2: http2);
        await using var _ = legate;
        await using var o = origin;
        await using var t = target;

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/start/here"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echoed = await EchoedRequest.ReadAsync(response);
        Assert.Equal("/final/page?x=1", echoed.Target);
        Assert.Equal("redirected.example", echoed.Header("host"));
        Assert.Equal("http://" + legate.ListenerEndpoint("web") + "/start/here", echoed.Header("x-envoy-original-url"));
        Assert.Equal("/start/here", Assert.Single(origin.Log.Requests).RawTarget);
        Assert.Equal(1, Counter(legate, "cluster.origin.upstream_internal_redirect_succeeded_total"));
        Assert.Equal(0, Counter(legate, "cluster.origin.upstream_internal_redirect_failed_total"));
    }

    [Fact]
    public async Task RedirectsTheRouterDoesNotFollowReachTheClient()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("?"))
            .OnPath("/start/relative", Redirect(302, "/final"))
            .OnPath("/start/https", Redirect(302, "https://redirected.example/final"))
            .OnPath("/start/moved", Redirect(301, "http://redirected.example/final"))
            .OnPath("/start/nowhere", Redirect(302, "http://redirected.example/no/route"));
        var (legate, origin, target) = await StartAsync(script, "{}");
        await using var _ = legate;
        await using var o = origin;
        await using var t = target;
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false });

        foreach (var path in new[] { "/start/relative", "/start/https", "/start/moved", "/start/nowhere" })
        {
            using var response = await client.GetAsync(legate.ListenerUri("web", path));
            Assert.True(response.StatusCode is HttpStatusCode.Found or HttpStatusCode.MovedPermanently, path);
            Assert.Equal("moved", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(0, target.Log.Count);

        // The 301 was never a candidate (only 302 by default); the other three failed (no route matches /no/route).
        Assert.Equal(3, Counter(legate, "cluster.origin.upstream_internal_redirect_failed_total"));
        Assert.Equal(0, Counter(legate, "cluster.origin.upstream_internal_redirect_succeeded_total"));

        // And the router says why, as Envoy's: a relative location, a scheme change, no route.
        Assert.Equal(1, Counter(legate, "http.web.passthrough_internal_redirect_bad_location"));
        Assert.Equal(1, Counter(legate, "http.web.passthrough_internal_redirect_unsafe_scheme"));
        Assert.Equal(1, Counter(legate, "http.web.passthrough_internal_redirect_no_route"));
        Assert.Equal(0, Counter(legate, "http.web.passthrough_internal_redirect_too_many_redirects"));
        Assert.Equal(0, Counter(legate, "http.web.passthrough_internal_redirect_predicate"));

        // A failed redirect leaves the request as it was: the next one on the connection is routed afresh.
        using var again = await client.GetAsync(legate.ListenerUri("web", "/final/again"));
        Assert.Equal("/final/again", (await EchoedRequest.ReadAsync(again)).Target);
    }

    [Fact]
    public async Task MaxInternalRedirectsBoundsAChain()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("?"))
            .OnPath("/start", Redirect(307, "http://a.example/hop1"))
            .OnPath("/hop1", Redirect(307, "http://a.example/hop2"))
            .OnPath("/hop2", Redirect(307, "http://a.example/final"));
        var hops = """
            - name: hop
              match: { prefix: "/hop" }
              route:
                cluster: origin
                internal_redirect_policy: { max_internal_redirects: 2, redirect_response_codes: [307] }
            """;
        var (legate, origin, target) = await StartAsync(script, "{ max_internal_redirects: 2, redirect_response_codes: [307] }", hops);
        await using var _ = legate;
        await using var o = origin;
        await using var t = target;
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false });

        // Two redirects are followed (/start → /hop1 → /hop2); the third is relayed.
        using var response = await client.GetAsync(legate.ListenerUri("web", "/start"));
        Assert.Equal(HttpStatusCode.TemporaryRedirect, response.StatusCode);
        Assert.Equal("http://a.example/final", response.Headers.Location?.OriginalString);
        Assert.Equal(["/start", "/hop1", "/hop2"], origin.Log.Requests.Select(r => r.RawTarget));
        Assert.Equal("http://a.example/hop1", origin.Log.Requests[2].Header("x-envoy-original-url"));
        Assert.Equal(2, Counter(legate, "cluster.origin.upstream_internal_redirect_succeeded_total"));
        Assert.Equal(1, Counter(legate, "cluster.origin.upstream_internal_redirect_failed_total"));
        Assert.Equal(0, target.Log.Count);
        Assert.Equal(1, Counter(legate, "http.web.passthrough_internal_redirect_too_many_redirects"));
    }

    [Fact]
    public async Task PredicatesAndSeeOther()
    {
        const string PreviousRoutes = "{ name: envoy.internal_redirect_predicates.previous_routes, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.internal_redirect.previous_routes.v3.PreviousRoutesConfig } }";
        const string AllowListed = "{ name: envoy.internal_redirect_predicates.allow_listed_routes, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.internal_redirect.allow_listed_routes.v3.AllowListedRoutesConfig, allowed_route_names: [final, loop] } }";
        var script = new UpstreamScript(UpstreamResponse.Text("?"))
            .OnPath("/start/other", Redirect(302, "http://a.example/other"))
            .OnPath("/start/post", Redirect(303, "http://a.example/final/posted"))
            .OnPath("/start/loop", Redirect(302, "http://a.example/loop"))
            .OnPath("/loop", Redirect(302, "http://a.example/loop"));
        var policy = $"{{ max_internal_redirects: 5, redirect_response_codes: [302, 303], predicates: [{PreviousRoutes}, {AllowListed}] }}";
        var loop = $"- name: loop\n  match: {{ prefix: \"/loop\" }}\n  route:\n    cluster: origin\n    internal_redirect_policy: {policy}";
        var (legate, origin, target) = await StartAsync(script, policy, loop);
        await using var _ = legate;
        await using var o = origin;
        await using var t = target;
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false });

        // allow_listed_routes: "other" is not on the list.
        using (var response = await client.GetAsync(legate.ListenerUri("web", "/start/other")))
        {
            Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        }

        // previous_routes: /start → loop is followed, loop → loop again is not.
        using (var response = await client.GetAsync(legate.ListenerUri("web", "/start/loop")))
        {
            Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        }

        Assert.Equal(2, origin.Log.Requests.Count(r => r.RawTarget is "/start/loop" or "/loop"));

        // 303: a POST without a body continues as a GET.
        using (var response = await client.PostAsync(legate.ListenerUri("web", "/start/post"), null))
        {
            var echoed = await EchoedRequest.ReadAsync(response);
            Assert.Equal("GET", echoed.Method);
            Assert.Equal("/final/posted", echoed.Target);
        }

        Assert.Equal(2, Counter(legate, "cluster.origin.upstream_internal_redirect_succeeded_total"));
        Assert.Equal(2, Counter(legate, "cluster.origin.upstream_internal_redirect_failed_total"));
        Assert.Equal(2, Counter(legate, "http.web.passthrough_internal_redirect_predicate"));
    }

    [Fact]
    public async Task ARedirectToADirectResponseOrRedirectRouteIsAnsweredByThatRoute()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("?"))
            .OnPath("/start/direct", Redirect(302, "http://a.example/canned"))
            .OnPath("/start/redirect", Redirect(302, "http://a.example/elsewhere/page"));
        var extra = """
            - name: canned
              match: { prefix: "/canned" }
              direct_response: { status: 202, body: { inline_string: "canned answer" } }
              response_headers_to_add:
              - header: { key: x-route, value: "%ROUTE_NAME%" }
            - name: elsewhere
              match: { prefix: "/elsewhere" }
              redirect: { host_redirect: other.example }
            """;
        var (legate, origin, target) = await StartAsync(script, "{}", extra);
        await using var _ = legate;
        await using var o = origin;
        await using var t = target;
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false });

        // As Envoy's recreated stream: the redirected request gets the target route's own answer.
        using (var response = await client.GetAsync(legate.ListenerUri("web", "/start/direct")))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            Assert.Equal("canned answer", await response.Content.ReadAsStringAsync());
            Assert.Equal("canned", Assert.Single(response.Headers.GetValues("x-route")));
        }

        using (var response = await client.GetAsync(legate.ListenerUri("web", "/start/redirect")))
        {
            Assert.Equal(HttpStatusCode.MovedPermanently, response.StatusCode);
            Assert.Equal("http://other.example/elsewhere/page", response.Headers.Location?.OriginalString);
        }

        Assert.Equal(2, Counter(legate, "cluster.origin.upstream_internal_redirect_succeeded_total"));
        Assert.Equal(1, Counter(legate, "http.web.rq_direct_response"));
        Assert.Equal(1, Counter(legate, "http.web.rq_redirect"));
        Assert.Equal(0, target.Log.Count);
    }

    [Fact]
    public async Task ARequestBodyBufferedWholeGoesAlongAndA303DropsIt()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("?"))
            .OnPath("/start/found", Redirect(302, "http://a.example/final/found"))
            .OnPath("/start/chunked", Redirect(307, "http://a.example/final/chunked"))
            .OnPath("/start/see-other", Redirect(303, "http://a.example/final/see-other"));
        var (legate, origin, target) = await StartAsync(script, "{ redirect_response_codes: [302, 303, 307] }");
        await using var _ = legate;
        await using var o = origin;
        await using var t = target;

        // With a content-length: the origin and the target both get the body.
        using (var response = await legate.Http.PostAsync(legate.ListenerUri("web", "/start/found"), new StringContent("payload")))
        {
            var echoed = await EchoedRequest.ReadAsync(response);
            Assert.Equal("POST", echoed.Method);
            Assert.Equal("/final/found", echoed.Target);
            Assert.Equal("payload", echoed.Body);
        }

        // Streamed (chunked) in pieces: buffered as it passes, replayed whole.
        var streamed = new StreamContent(new RetryTests.SlowStream("a chunked payload"u8.ToArray(), 5));
        using (var response = await legate.Http.PutAsync(legate.ListenerUri("web", "/start/chunked"), streamed))
        {
            var echoed = await EchoedRequest.ReadAsync(response);
            Assert.Equal("PUT", echoed.Method);
            Assert.Equal("a chunked payload", echoed.Body);
        }

        // 303: the method becomes GET and the body is dropped (Envoy drains the buffered body).
        using (var response = await legate.Http.PostAsync(legate.ListenerUri("web", "/start/see-other"), new StringContent("dropped")))
        {
            var echoed = await EchoedRequest.ReadAsync(response);
            Assert.Equal("GET", echoed.Method);
            Assert.Equal(string.Empty, echoed.Body);
            Assert.Null(echoed.Header("content-length"));
        }

        Assert.Equal(["payload", "a chunked payload", "dropped"], origin.Log.Requests.Select(r => r.BodyText));
        Assert.Equal("chunked", origin.Log.Requests[1].Header("transfer-encoding"));
        Assert.Equal(3, Counter(legate, "cluster.origin.upstream_internal_redirect_succeeded_total"));
    }

    [Fact]
    public async Task ABodyBeyondTheBufferLimitIsNotRedirected()
    {
        var origin = await ScriptedUpstream.StartAsync(new UpstreamScript(Redirect(302, "http://a.example/final")));
        await using var o = origin;
        await using var target = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()));
        var routes = """
            - name: start
              match: { prefix: "/start" }
              route: { cluster: origin, internal_redirect_policy: {} }
            - name: final
              match: { prefix: "/final" }
              route: { cluster: target }
            """;
        var yaml = Build(AllDomains(routes), [("origin", [origin.Port]), ("target", [target.Port])])
            .Replace("    filter_chains:", "    per_connection_buffer_limit_bytes: 1024\n    filter_chains:", StringComparison.Ordinal);
        await using var legate = await InProcessLegate.StartAsync(yaml);
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false });

        using var response = await client.PostAsync(legate.ListenerUri("web", "/start"), new ByteArrayContent(new byte[8192]));

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal(0, target.Log.Count);
        Assert.Equal(1, Counter(legate, "cluster.origin.upstream_internal_redirect_failed_total"));
        Assert.Equal(1, Counter(legate, "cluster.origin.retry_or_shadow_abandoned"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheFiltersBeforeTheRouterRunAgainForTheRedirectedRequest(bool http2)
    {
        // The fault filter delays every request (so its counter shows each pass) and aborts one that
        // carries x-envoy-fault-abort-request: the origin's 302 hands that header to the redirected
        // request (response_headers_to_copy), so only a second pass through the filter can abort it.
        var protocols = http2 ? UpstreamProtocols.Http2 : UpstreamProtocols.Http1;
        var script = new UpstreamScript(UpstreamResponse.Text("?"))
            .OnPath("/start/pass", Redirect(302, "http://redirected.example/final/pass"))
            .OnPath("/start/abort", Redirect(302, "http://redirected.example/final/abort").WithHeader("x-envoy-fault-abort-request", "418"));
        await using var origin = await ScriptedUpstream.StartAsync(script, protocols);
        await using var target = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Echo()), protocols);
        var routes = """
            - name: start
              match: { prefix: "/start" }
              route:
                cluster: origin
                internal_redirect_policy: { response_headers_to_copy: [x-envoy-fault-abort-request] }
            - name: final
              match: { prefix: "/final" }
              route: { cluster: target }
            """;
        var yaml = Build(AllDomains(routes), [("origin", [origin.Port]), ("target", [target.Port])], clusterExtra: http2 ? "http2_protocol_options: {}\n" : string.Empty);
        const string router = "          http_filters:\n          - name: envoy.filters.http.router\n";
        Assert.Contains(router, yaml, StringComparison.Ordinal);
        yaml = yaml.Replace(router, """
                      http_filters:
                      - name: envoy.filters.http.fault
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                          delay: { fixed_delay: 0.001s, percentage: { numerator: 100 } }
                          abort: { header_abort: {}, percentage: { numerator: 100 } }
                      - name: envoy.filters.http.router

            """, StringComparison.Ordinal);
        await using var legate = await InProcessLegate.StartAsync(yaml);

        using (var passed = await legate.Http.GetAsync(legate.ListenerUri("web", "/start/pass")))
        {
            Assert.Equal(HttpStatusCode.OK, passed.StatusCode);
            Assert.Equal("/final/pass", (await EchoedRequest.ReadAsync(passed)).Target);
        }

        // Both the original and the redirected request went through the fault filter.
        Assert.Equal(2, Counter(legate, "http.web.fault.delays_injected"));
        Assert.Equal(0, Counter(legate, "http.web.fault.aborts_injected"));

        using (var aborted = await legate.Http.GetAsync(legate.ListenerUri("web", "/start/abort")))
        {
            Assert.Equal((HttpStatusCode)418, aborted.StatusCode);
            Assert.Equal("fault filter abort", await aborted.Content.ReadAsStringAsync());
        }

        Assert.Equal(4, Counter(legate, "http.web.fault.delays_injected"));
        Assert.Equal(1, Counter(legate, "http.web.fault.aborts_injected"));
        Assert.Equal(["/final/pass"], target.Log.Requests.Select(r => r.RawTarget));
        Assert.Equal(["/start/pass", "/start/abort"], origin.Log.Requests.Select(r => r.RawTarget));
        Assert.Equal(2, Counter(legate, "cluster.origin.upstream_internal_redirect_succeeded_total"));
        Assert.Equal(0, Counter(legate, "cluster.origin.upstream_internal_redirect_failed_total"));
    }
}
