using Envoy.Config.Route.V3;
using Legate.Lint;
using Legate.Tests.Harness;
using Legate.Tests.Upstream;

namespace Legate.Tests.Lint;

/// <summary>legate lint's rules on hand-written configurations.</summary>
public sealed class ConfigLinterTests
{
    private const string RoutesPath = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes";

    private static string Config(string routes, string admin = "127.0.0.1", string virtualHostExtra = "", string clusters = "") => $$"""
        admin:
          address: { socket_address: { address: {{admin}}, port_value: 9901 } }
        static_resources:
          listeners:
          - name: web
            address: { socket_address: { address: 127.0.0.1, port_value: 8080 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  route_config:
                    virtual_hosts:
                    - name: api
                      domains: ["*"]
        {{Router.RoutingConfigs.Indent(virtualHostExtra, 14)}}              routes:
        {{Router.RoutingConfigs.Indent(routes, 14)}}
                  http_filters:
                  - name: envoy.filters.http.router
        {{clusters}}
        """;

    private static List<LintFinding> Lint(string yaml) => ConfigLinter.Lint(UpstreamTestConfigs.ParseBootstrap(yaml));

    [Fact]
    public void ACatchAllPrefixShadowsEveryLaterRoute()
    {
        var findings = Lint(Config("""
            - name: everything
              match: { prefix: "/" }
              route: { cluster: web }
            - name: admin
              match: { prefix: "/api/admin" }
              route: { cluster: admin }
            """));

        var finding = Assert.Single(findings);
        Assert.Equal("LGT001", finding.Code);
        Assert.Equal(RoutesPath + "[1]", finding.Path);
        Assert.Equal("route [1] 'admin' (prefix \"/api/admin\") can never match: the earlier route [0] 'everything' (prefix \"/\") in virtual host 'api' matches every request it would", finding.Why);
        Assert.Equal("move route [1] before route [0], or narrow route [0]", finding.Fix);
    }

    [Theory]
    [InlineData("{ path: \"/a\" }", "{ path: \"/a\" }", true)]
    [InlineData("{ prefix: \"/api\" }", "{ path: \"/api/users\" }", true)]
    [InlineData("{ prefix: \"/api\" }", "{ prefix: \"/api/v2\" }", true)]
    [InlineData("{ prefix: \"/api/v2\" }", "{ prefix: \"/api\" }", false)]
    [InlineData("{ path: \"/api\" }", "{ prefix: \"/api\" }", false)]
    [InlineData("{ prefix: \"/api\" }", "{ prefix: \"/API/x\", case_sensitive: false }", false)]
    [InlineData("{ prefix: \"/API\", case_sensitive: false }", "{ path: \"/api/x\" }", true)]
    [InlineData("{ path_separated_prefix: \"/api\" }", "{ path: \"/api/x\" }", true)]
    [InlineData("{ path_separated_prefix: \"/api\" }", "{ path: \"/apis\" }", false)]
    [InlineData("{ safe_regex: { regex: \"/a.*\" } }", "{ safe_regex: { regex: \"/a.*\" } }", true)]
    [InlineData("{ safe_regex: { regex: \"/a.*\" } }", "{ path: \"/ab\" }", false)]
    [InlineData("{ prefix: \"/\", headers: [{ name: x-canary, present_match: true }] }", "{ prefix: \"/x\" }", false)]
    [InlineData("{ prefix: \"/\", headers: [{ name: x-canary, present_match: true }] }", "{ prefix: \"/x\", headers: [{ name: x-canary, present_match: true }, { name: x-b, present_match: true }] }", true)]
    [InlineData("{ prefix: \"/\", runtime_fraction: { default_value: { numerator: 50 } } }", "{ prefix: \"/x\" }", false)]
    [InlineData("{ prefix: \"/\", grpc: {} }", "{ prefix: \"/x\" }", false)]
    public void ShadowingIsReportedOnlyWhenCertain(string earlier, string later, bool shadowed)
    {
        var findings = Lint(Config($$"""
            - match: {{earlier}}
              route: { cluster: a }
            - match: {{later}}
              route: { cluster: b }
            """));

        Assert.Equal(shadowed, findings.Any(f => f.Code == "LGT001"));
    }

    private static string Template(string template) =>
        "{ path_match_policy: { name: envoy.path.match.uri_template.uri_template_matcher, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig, path_template: \"" + template + "\" } } }";

    [Theory]
    [InlineData("{ prefix: \"/api\" }", "t:/api/{id}", true)]
    [InlineData("{ prefix: \"/apix\" }", "t:/api/{id}", false)]
    [InlineData("{ prefix: \"/API\", case_sensitive: false }", "t:/api/{id}", true)]
    [InlineData("{ path_separated_prefix: \"/api\" }", "t:/api/{id}", true)]
    [InlineData("t:/api/**", "t:/api/{id}/details", true)]
    [InlineData("t:/api/{id}/details", "t:/api/**", false)]
    [InlineData("t:/api/{id}", "t:/api/v1", true)]
    [InlineData("t:/api/v1", "t:/api/{id}", false)]
    [InlineData("t:/api/{id}", "t:/api/{id}/", false)]
    [InlineData("t:/api/**", "t:/api/{rest=**}", true)]
    [InlineData("t:/api/**", "t:/api", false)]
    [InlineData("t:/files/*", "t:/files/{name}.txt", true)]
    [InlineData("t:/files/{name}.txt", "t:/files/*", false)]
    [InlineData("t:/files/{name}.txt", "t:/files/{name}.old.txt", true)]
    [InlineData("t:/a/{x=b/*}", "t:/a/b/c", true)]
    [InlineData("t:/api/{id}", "{ path: \"/api/users?x=1\" }", true)]
    [InlineData("t:/api/{id}", "{ path: \"/api/users/x\" }", false)]
    [InlineData("t:/api/{id}", "{ path: \"/API/users\", case_sensitive: false }", false)]
    [InlineData("t:/api/**", "{ prefix: \"/api/v2\" }", true)]
    [InlineData("t:/api/**", "{ prefix: \"/api\" }", false)]
    [InlineData("t:/api/{id}", "{ prefix: \"/api/x\" }", false)]
    public void TemplateRoutesAreReportedShadowedOnlyWhenCertain(string earlier, string later, bool shadowed)
    {
        static string Match(string m) => m.StartsWith("t:", StringComparison.Ordinal) ? Template(m[2..]) : m;
        var findings = Lint(Config($$"""
            - match: {{Match(earlier)}}
              route: { cluster: a }
            - match: {{Match(later)}}
              route: { cluster: b }
            """));

        Assert.Equal(shadowed, findings.Any(f => f.Code == "LGT001"));
    }

    [Fact]
    public void AShadowedTemplateRouteNamesBothTemplates()
    {
        var findings = Lint(Config($$"""
            - name: any-user
              match: {{Template("/users/{id}/**")}}
              route: { cluster: a }
            - name: user-photos
              match: {{Template("/users/{id}/photos/{photo}")}}
              route: { cluster: b }
            """));

        var finding = Assert.Single(findings);
        Assert.Equal(RoutesPath + "[1]", finding.Path);
        Assert.Equal("route [1] 'user-photos' (path_template \"/users/{id}/photos/{photo}\") can never match: the earlier route [0] 'any-user' (path_template \"/users/{id}/**\") in virtual host 'api' matches every request it would", finding.Why);
    }

    [Fact]
    public void RetryPoliciesWithoutPerTryTimeoutOrOutlastingTheRouteTimeout()
    {
        var findings = Lint(Config("""
            - match: { prefix: "/no-per-try" }
              route: { cluster: a, retry_policy: { retry_on: connect-failure } }
            - match: { prefix: "/too-long" }
              route: { cluster: a, timeout: 15s, retry_policy: { retry_on: connect-failure, num_retries: 3, per_try_timeout: 5s } }
            - match: { prefix: "/fine" }
              route: { cluster: a, timeout: 15s, retry_policy: { retry_on: connect-failure, num_retries: 2, per_try_timeout: 5s } }
            """));

        Assert.Equal(["LGT002", "LGT003"], findings.Select(f => f.Code));
        Assert.Equal(RoutesPath + "[0].route.retry_policy", findings[0].Path);
        Assert.Equal(RoutesPath + "[1].route.retry_policy.per_try_timeout", findings[1].Path);
        Assert.StartsWith("per_try_timeout 5s × 4 attempts = 20s is more than the route timeout 15s", findings[1].Why);
    }

    [Fact]
    public void AVirtualHostRetryPolicyIsCheckedAgainstEachRouteTimeout()
    {
        var findings = Lint(Config(
            """
            - match: { prefix: "/short" }
              route: { cluster: a, timeout: 1s }
            """,
            virtualHostExtra: "retry_policy: { retry_on: 5xx, per_try_timeout: 2s }"));

        var finding = Assert.Single(findings);
        Assert.Equal("LGT003", finding.Code);
        Assert.Contains("of " + RoutesPath + "[0]", finding.Why);
    }

    [Theory]
    [InlineData("POST", "5xx", true)]
    [InlineData("PATCH", "reset", true)]
    [InlineData("POST", "connect-failure,refused-stream", false)]
    [InlineData("GET", "5xx", false)]
    public void RetriesOnNonIdempotentMethods(string method, string retryOn, bool reported)
    {
        var findings = Lint(Config($$"""
            - match:
                prefix: "/orders"
                headers: [{ name: ":method", string_match: { exact: {{method}} } }]
              route: { cluster: a, retry_policy: { retry_on: "{{retryOn}}", per_try_timeout: 1s } }
            """));

        Assert.Equal(reported, findings.Any(f => f.Code == "LGT004"));
    }

    [Theory]
    [InlineData("0.0.0.0", true)]
    [InlineData("10.0.0.1", true)]
    [InlineData("127.0.0.1", false)]
    [InlineData("::1", false)]
    public void AdminOnANonLoopbackAddress(string address, bool reported)
    {
        var findings = Lint(Config("- match: { prefix: \"/\" }\n  route: { cluster: a }\n", admin: address));

        Assert.Equal(reported, findings.Any(f => f.Code == "LGT005" && f.Path == "admin.address.socket_address.address"));
    }

    [Fact]
    public void OutlierDetectionThatMayEjectEveryHost()
    {
        var clusters = """
              clusters:
              - name: a
                connect_timeout: 1s
                outlier_detection: { max_ejection_percent: 100 }
              - name: b
                connect_timeout: 1s
                outlier_detection: { max_ejection_percent: 50 }
            """;
        var findings = Lint(Config("- match: { prefix: \"/\" }\n  route: { cluster: a }\n", clusters: clusters));

        var finding = Assert.Single(findings);
        Assert.Equal("LGT006", finding.Code);
        Assert.Equal("static_resources.clusters[0].outlier_detection.max_ejection_percent", finding.Path);
    }
}
