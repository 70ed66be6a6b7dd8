using System.Net;
using Legate.Config;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// path_match_policy (envoy.path.match.uri_template.uri_template_matcher) and path_rewrite_policy
/// (envoy.path.rewrite.uri_template.uri_template_rewriter) end to end: which route a request
/// takes, the rewritten path the upstream receives (query kept, x-envoy-original-path), and the
/// load errors for bad templates.
/// </summary>
public sealed class UriTemplateRoutingTests
{
    private const string MatchType = "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig";
    private const string RewriteType = "type.googleapis.com/envoy.extensions.path.rewrite.uri_template.v3.UriTemplateRewriteConfig";

    private static string Routes(string matchTemplate, string rewriteTemplate) => $$"""
        - name: objects
          match:
            path_match_policy:
              name: envoy.path.match.uri_template.uri_template_matcher
              typed_config:
                "@type": {{MatchType}}
                path_template: "{{matchTemplate}}"
          route:
            cluster: backend
            path_rewrite_policy:
              name: envoy.path.rewrite.uri_template.uri_template_rewriter
              typed_config:
                "@type": {{RewriteType}}
                path_template_rewrite: "{{rewriteTemplate}}"
        - name: css
          match:
            path_match_policy:
              name: envoy.path.match.uri_template.uri_template_matcher
              typed_config:
                "@type": {{MatchType}}
                path_template: "/static/*.css"
          direct_response: { status: 200, body: { inline_string: css } }
        - name: fallback
          match: { prefix: "/" }
          direct_response: { status: 404, body: { inline_string: fallback } }
        """;

    [Fact]
    public async Task TemplatesRouteAndRewriteWithTheirVariables()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        var yaml = Build(AllDomains(Routes("/v1/{bucket}/objects/{path=**}", "/storage/{path}/in/{bucket}")), [("backend", [upstream.Port])]);
        await using var legate = await InProcessLegate.StartAsync(yaml);

        var echoed = await ForwardedAsync(legate, "/v1/photos/objects/2024/cat.jpg?size=1");
        Assert.Equal("/storage/2024/cat.jpg/in/photos?size=1", echoed.Target);
        Assert.Equal("/v1/photos/objects/2024/cat.jpg?size=1", echoed.Header("x-envoy-original-path"));

        // '**' may be empty: the variable is too.
        Assert.Equal("/storage//in/photos", (await ForwardedAsync(legate, "/v1/photos/objects/")).Target);

        Assert.Equal((HttpStatusCode.OK, "css"), await GetAsync(legate, "/static/site.css"));

        // Not matched: no trailing '/objects/', '*' spans one segment only, templates are case-sensitive.
        Assert.Equal((HttpStatusCode.NotFound, "fallback"), await GetAsync(legate, "/v1/photos/objects"));
        Assert.Equal((HttpStatusCode.NotFound, "fallback"), await GetAsync(legate, "/static/a/site.css"));
        Assert.Equal((HttpStatusCode.NotFound, "fallback"), await GetAsync(legate, "/V1/photos/objects/x"));
        Assert.Equal(2, upstream.Log.Count);
    }

    [Theory]
    [InlineData("/v1/{bucket}/{bucket}", "/x", "path_match_policy.typed_config.path_template", "invalid path_template '/v1/{bucket}/{bucket}': variable 'bucket' is repeated")]
    [InlineData("/v1/{bucket}/**", "/storage/{path}", "path_rewrite_policy.typed_config.path_template_rewrite", "invalid path_template_rewrite '/storage/{path}': variable 'path' is not captured by path_match_policy's path_template '/v1/{bucket}/**'")]
    [InlineData("/v1/{bucket}/**", "storage/{bucket}", "path_rewrite_policy.typed_config.path_template_rewrite", "invalid path_template_rewrite 'storage/{bucket}': it must start with '/'")]
    [InlineData("/v1/{bucket}/**", "/a//{bucket}", "path_rewrite_policy.typed_config.path_template_rewrite", "invalid path_template_rewrite '/a//{bucket}': '//' is not allowed")]
    public async Task BadTemplatesFailTheLoadWithTheFieldPath(string matchTemplate, string rewriteTemplate, string pathEnd, string message)
    {
        var yaml = Build(AllDomains(Routes(matchTemplate, rewriteTemplate)), [("backend", [1])]);
        var exception = await Assert.ThrowsAsync<ConfigException>(async () => await InProcessLegate.StartAsync(yaml));
        var error = Assert.Single(exception.Errors);
        Assert.EndsWith(".virtual_hosts[0].routes[0]." + (pathEnd.StartsWith("path_match", StringComparison.Ordinal) ? "match." : "route.") + pathEnd, error.Path);
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public async Task TheRewriterNeedsTheTemplateMatcher()
    {
        var routes = $$"""
            - match: { prefix: "/" }
              route:
                cluster: backend
                path_rewrite_policy:
                  name: envoy.path.rewrite.uri_template.uri_template_rewriter
                  typed_config:
                    "@type": {{RewriteType}}
                    path_template_rewrite: "/x"
            """;
        var exception = await Assert.ThrowsAsync<ConfigException>(async () => await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [1])])));
        var error = Assert.Single(exception.Errors);
        Assert.EndsWith(".routes[0].route.path_rewrite_policy", error.Path);
        Assert.Equal("envoy.path.rewrite.uri_template.uri_template_rewriter needs the route's match to be path_match_policy with envoy.path.match.uri_template.uri_template_matcher", error.Message);
    }

    private static async Task<EchoedRequest> ForwardedAsync(InProcessLegate legate, string path)
    {
        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", path));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await EchoedRequest.ReadAsync(response);
    }

    private static async Task<(HttpStatusCode, string)> GetAsync(InProcessLegate legate, string path)
    {
        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", path));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
