using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>request/response_headers_to_add/remove at every level, with formatter variables, on the wire.</summary>
public sealed class HeaderMutationEndToEndTests
{
    [Fact]
    public async Task RequestAndResponseHeadersAreMutatedAtEveryLevel()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok").WithHeader("x-internal", "secret").WithHeader("x-upstream", "1"));
        var routeConfig = """
            request_headers_to_add:
            - header: { key: x-level, value: config }
              append_action: OVERWRITE_IF_EXISTS_OR_ADD
            response_headers_to_add:
            - header: { key: x-served-by, value: legate }
            response_headers_to_remove: [x-internal]
            """;
        var virtualHost = """
            request_headers_to_add:
            - header: { key: x-level, value: vhost }
              append_action: OVERWRITE_IF_EXISTS_OR_ADD
            - header: { key: x-client, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" }
            """;
        var routes = """
            - match: { prefix: "/" }
              route: { cluster: backend }
              request_headers_to_add:
              - header: { key: x-level, value: route }
                append_action: OVERWRITE_IF_EXISTS_OR_ADD
              - header: { key: x-copied, value: "in=%REQ(x-in)% proto=%PROTOCOL%" }
              - header: { key: x-year, value: "%START_TIME(%Y)%" }
              - header: { key: x-version, value: "%UPSTREAM_METADATA([\"envoy.lb\", \"version\"])%" }
              - header: { key: x-missing, value: "%REQ(x-absent)%" }
              - header: { key: x-host, value: "%HOSTNAME%" }
              request_headers_to_remove: [x-remove-me]
              response_headers_to_add:
              - header: { key: x-route, value: "%RESPONSE_CODE%" }
            """;
        var yaml = Build(AllDomains(routes, virtualHost), [("backend", [upstream.Port])], routeConfig)
            .Replace("- endpoint: { address:", "- metadata: { filter_metadata: { envoy.lb: { version: v7 } } }\n          endpoint: { address:", StringComparison.Ordinal);
        await using var legate = await InProcessLegate.StartAsync(yaml);
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("x-in", "hello");
        request.Headers.Add("x-remove-me", "1");

        using var response = await legate.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(upstream.Log.Requests);

        // Default order: route, virtual host, route configuration — the least specific overwrite wins.
        Assert.Equal("config", seen.Header("x-level"));
        Assert.Equal("127.0.0.1", seen.Header("x-client"));
        Assert.Equal("in=hello proto=HTTP/1.1", seen.Header("x-copied"));
        Assert.Equal(DateTime.UtcNow.Year.ToString(System.Globalization.CultureInfo.InvariantCulture), seen.Header("x-year"));
        Assert.Equal("v7", seen.Header("x-version"));
        Assert.Null(seen.Header("x-missing"));
        Assert.Equal(System.Net.Dns.GetHostName(), seen.Header("x-host"));
        Assert.Null(seen.Header("x-remove-me"));

        Assert.Equal("legate", Assert.Single(response.Headers.GetValues("x-served-by")));
        Assert.Equal("200", Assert.Single(response.Headers.GetValues("x-route")));
        Assert.False(response.Headers.Contains("x-internal"));
        Assert.True(response.Headers.Contains("x-upstream"));
    }

    [Fact]
    public async Task MostSpecificHeaderMutationsWinsReversesTheOrder()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var routeConfig = """
            most_specific_header_mutations_wins: true
            request_headers_to_add:
            - header: { key: x-level, value: config }
              append_action: OVERWRITE_IF_EXISTS_OR_ADD
            """;
        var routes = """
            - match: { prefix: "/" }
              route:
                weighted_clusters:
                  clusters:
                  - name: backend
                    weight: 1
                    request_headers_to_add:
                    - header: { key: x-level, value: cluster }
                      append_action: OVERWRITE_IF_EXISTS_OR_ADD
              request_headers_to_add:
              - header: { key: x-level, value: route }
                append_action: OVERWRITE_IF_EXISTS_OR_ADD
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])], routeConfig));

        (await legate.Http.GetAsync(legate.ListenerUri("web", "/"))).Dispose();

        Assert.Equal("cluster", Assert.Single(upstream.Log.Requests).Header("x-level"));
    }

    [Fact]
    public async Task DirectResponsesAndRedirectsGetResponseHeaders()
    {
        var routes = """
            - match: { prefix: "/moved" }
              redirect: { path_redirect: "/here" }
              response_headers_to_add:
              - header: { key: x-why, value: moved }
            - match: { prefix: "/" }
              direct_response: { status: 200, body: { inline_string: "hi" } }
              response_headers_to_add:
              - header: { key: cache-control, value: no-store }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), []));
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false });

        using var direct = await client.GetAsync(legate.ListenerUri("web", "/"));
        using var redirect = await client.GetAsync(legate.ListenerUri("web", "/moved"));

        Assert.Equal("no-store", direct.Headers.CacheControl?.ToString());
        Assert.Equal(HttpStatusCode.MovedPermanently, redirect.StatusCode);
        Assert.Equal("moved", Assert.Single(redirect.Headers.GetValues("x-why")));
    }
}
