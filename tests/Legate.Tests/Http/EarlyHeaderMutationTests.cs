using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Http;

/// <summary>
/// <c>early_header_mutation_extensions</c> (envoy.http.early_header_mutation.header_mutation):
/// removals and appends in the order configured, before the client address is decided, before
/// routing and before the filters.
/// </summary>
public sealed class EarlyHeaderMutationTests
{
    [Fact]
    public async Task MutationsRunInOrderBeforeRoutingAndAddressDetection()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, """
            - name: envoy.http.early_header_mutation.header_mutation
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation
                mutations:
                - remove: x-forwarded-for
                - append: { header: { key: x-early, value: "%REQ(x-client)%-seen" }, append_action: OVERWRITE_IF_EXISTS_OR_ADD }
                - append: { header: { key: x-kept, value: ours }, append_action: ADD_IF_ABSENT }
                - append: { header: { key: x-doomed, value: soon-gone } }
            - name: second
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation
                mutations:
                - remove: x-doomed
                - append: { header: { key: x-tenant, value: gold } }
            """));

        using (var routed = await legate.GetAsync("web", "/gold"))
        {
            // x-tenant was added early: the route that matches on it answers.
            Assert.Equal(HttpStatusCode.OK, routed.StatusCode);
            Assert.Equal("gold route", await routed.Content.ReadAsStringAsync());
        }

        using var response = await legate.GetAsync("web", "/upstream", ("x-forwarded-for", "203.0.113.7"), ("x-client", "alice"), ("x-kept", "theirs"), ("x-route-to-upstream", "1"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var request = Assert.Single(await upstream.Log.WaitForRequestsAsync(1));
        Assert.Equal("alice-seen", request.Header("x-early"));
        Assert.Equal("theirs", request.Header("x-kept"));
        Assert.Null(request.Header("x-doomed"));
        Assert.Equal("gold", request.Header("x-tenant"));

        // x-forwarded-for was gone before the client address was decided: the peer is the client.
        Assert.Null(request.Header("x-forwarded-for"));
        Assert.StartsWith("127.0.0.1:", request.Header("x-remote"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnotherExtensionTypeIsAConfigError()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => InProcessLegate.StartAsync(Config(1, """
            - name: wrong
              typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """)));

        Assert.Contains("early_header_mutation_extensions[0].typed_config", error.Message, StringComparison.Ordinal);
        Assert.Contains("is not an early header mutation extension", error.Message, StringComparison.Ordinal);
    }

    private static string Config(int upstreamPort, string extensions) => new ProxyConfig(upstreamPort)
    {
        Hcm = "early_header_mutation_extensions:\n" + extensions,
        RouteConfig = """request_headers_to_add: [{ header: { key: x-remote, value: "%DOWNSTREAM_REMOTE_ADDRESS%" } }]""",
        Routes = """
            - match: { prefix: "/", headers: [{ name: x-route-to-upstream, present_match: true }] }
              route: { cluster: backend }
            - match: { prefix: "/", headers: [{ name: x-tenant, string_match: { exact: gold } }] }
              direct_response: { status: 200, body: { inline_string: "gold route" } }
            """,
    }.Build();
}
