using Legate.Config;
using Legate.Router.Matching;
using static Legate.Tests.Router.Matching.RouteTestSupport;

namespace Legate.Tests.Router.Matching;

public sealed class RouteMatchKindTests
{
    private static string Route(string name, string match) =>
        "  - name: " + name + "\n    match: " + match + "\n    direct_response: { status: 200 }\n";

    [Theory]
    [InlineData("/api/users", "api")]
    [InlineData("/api", "api")]
    [InlineData("/apix", "api")]
    [InlineData("/API/users", "root")]
    [InlineData("/api?x=1", "api")]
    [InlineData("/other", "root")]
    public void Prefix_CaseSensitiveByDefault(string path, string expected)
    {
        var routes = Routes(Route("api", "{ prefix: /api }") + Route("root", "{ prefix: / }"));
        Assert.Equal(expected, routes.MatchName(Get(path)));
    }

    [Theory]
    [InlineData("/API/users", "api")]
    [InlineData("/Api", "api")]
    [InlineData("/ap", null)]
    public void Prefix_CaseInsensitive(string path, string? expected)
    {
        var routes = Routes(Route("api", "{ prefix: /api, case_sensitive: false }"));
        Assert.Equal(expected, routes.MatchName(Get(path)));
    }

    [Fact]
    public void EmptyPrefixMatchesEverything()
    {
        var routes = Routes(Route("all", "{ prefix: '' }"));
        Assert.Equal("all", routes.MatchName(Get("/anything")));
        Assert.Equal("all", routes.MatchName(Get("*", method: "OPTIONS")));
    }

    [Theory]
    [InlineData("/exact", "exact")]
    [InlineData("/exact?q=1", "exact")]
    [InlineData("/exact#frag", "exact")]
    [InlineData("/exact/", null)]
    [InlineData("/exac", null)]
    [InlineData("/EXACT", null)]
    public void Path_IsExactAndIgnoresQueryString(string path, string? expected)
    {
        var routes = Routes(Route("exact", "{ path: /exact }"));
        Assert.Equal(expected, routes.MatchName(Get(path)));
    }

    [Fact]
    public void Path_CaseInsensitive()
    {
        var routes = Routes(Route("exact", "{ path: /Exact, case_sensitive: false }"));
        Assert.Equal("exact", routes.MatchName(Get("/eXACT?a")));
        Assert.Null(routes.MatchName(Get("/exact/")));
    }

    [Theory]
    [InlineData("/api", "psp")]
    [InlineData("/api/", "psp")]
    [InlineData("/api/v1", "psp")]
    [InlineData("/api?x", "psp")]
    [InlineData("/apiv1", null)]
    [InlineData("/ap", null)]
    public void PathSeparatedPrefix(string path, string? expected)
    {
        var routes = Routes(Route("psp", "{ path_separated_prefix: /api }"));
        Assert.Equal(expected, routes.MatchName(Get(path)));
    }

    [Theory]
    [InlineData("/v1/users/42", "regex")]
    [InlineData("/v1/users/42?x=1", "regex")]
    [InlineData("/v1/users/42/extra", null)]
    [InlineData("/prefix/v1/users/42", null)]
    [InlineData("/v1/users/abc", null)]
    [InlineData("/v1/users/42\n", null)]
    public void SafeRegex_IsAFullMatchOnThePathWithoutQuery(string path, string? expected)
    {
        var routes = Routes(Route("regex", "{ safe_regex: { regex: '/v1/users/\\d+$' } }"));
        Assert.Equal(expected, routes.MatchName(Get(path)));
    }

    [Fact]
    public void SafeRegex_AlternationIsAnchoredAsAWhole()
    {
        var routes = Routes(Route("regex", "{ safe_regex: { regex: '/a|/b' } }"));
        Assert.Equal("regex", routes.MatchName(Get("/a")));
        Assert.Equal("regex", routes.MatchName(Get("/b")));
        Assert.Null(routes.MatchName(Get("/ab")));
        Assert.Null(routes.MatchName(Get("/a/b")));
    }

    [Fact]
    public void SafeRegex_DigitClassIsAsciiOnly()
    {
        var routes = Routes(Route("regex", "{ safe_regex: { regex: '/\\d+' } }"));
        Assert.Equal("regex", routes.MatchName(Get("/123")));
        Assert.Null(routes.MatchName(Get("/\u0663")));
    }

    [Fact]
    public void SafeRegex_HostilePatternCompletesOnALongInput()
    {
        var routes = Routes(Route("evil", "{ safe_regex: { regex: '/(a+)+$' } }"));
        var longPath = "/" + new string('a', 50_000) + "!";
        Assert.Null(routes.MatchName(Get(longPath)));
        Assert.Equal("evil", routes.MatchName(Get("/" + new string('a', 50_000))));
    }

    [Theory]
    [InlineData("(?=x)/a", "invalid perl operator: (?=")]
    [InlineData("(?!x)/a", "invalid perl operator: (?!")]
    [InlineData("/(?<=a)b", "invalid perl operator: (?<=")]
    [InlineData("/(?<!a)b", "invalid perl operator: (?<!")]
    [InlineData("/(a)\\1", "invalid escape sequence: \\1")]
    [InlineData("/(?>a)", "invalid perl operator: (?>")]
    [InlineData("/a++", "bad repetition operator: ++")]
    public void SafeRegex_UnsupportedConstructsAreConfigErrors(string regex, string reason)
    {
        var errors = Errors("name: rc\nvirtual_hosts:\n- name: vh\n  domains: ['*']\n  routes:\n  - match: { prefix: / }\n    direct_response: { status: 200 }\n" +
                            "  - match: { safe_regex: { regex: '" + regex + "' } }\n    direct_response: { status: 200 }\n");
        var error = Assert.Single(errors.Errors);
        Assert.Equal("virtual_hosts[0].routes[1].match.safe_regex.regex", error.Path);
        Assert.Equal("invalid regex '" + regex + "': " + reason, error.Message);
    }

    [Fact]
    public void SafeRegex_ClassesAndEscapedParensAreNotMistakenForUnsupportedConstructs()
    {
        Assert.Null(RouteRegex.Unsupported("/[(?=]x"));
        Assert.Null(RouteRegex.Unsupported("/\\(\\?=x\\)"));
        Assert.Null(RouteRegex.Unsupported("/[\\1]"));
        Assert.Null(RouteRegex.Unsupported("/(?i)abc(?:x|y)+"));
    }

    [Fact]
    public void SafeRegex_SyntaxErrorIsAConfigError()
    {
        var errors = new ConfigErrors();
        Assert.Null(RouteRegex.Compile("/(a", errors, "p"));
        var error = Assert.Single(errors.Errors);
        Assert.Equal("p", error.Path);
        Assert.StartsWith("invalid regex '/(a': ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConnectMatcher_MatchesOnlyConnect()
    {
        var routes = Routes(Route("connect", "{ connect_matcher: {} }") + Route("root", "{ prefix: / }"));
        Assert.Equal("connect", routes.MatchName(new RouteMatchInput("CONNECT", string.Empty, "example.com:443")));
        Assert.Equal("root", routes.MatchName(Get("/")));
    }

    [Theory]
    [InlineData("application/grpc", "grpc")]
    [InlineData("application/grpc+proto", "grpc")]
    [InlineData("application/grpc-web", "plain")]
    [InlineData("application/json", "plain")]
    [InlineData(null, "plain")]
    public void Grpc_RequiresGrpcContentType(string? contentType, string expected)
    {
        var routes = Routes(Route("grpc", "{ prefix: /, grpc: {} }") + Route("plain", "{ prefix: / }"));
        var headers = new HeaderListLookup();
        if (contentType is not null)
        {
            headers.Add("content-type", contentType);
        }

        Assert.Equal(expected, routes.MatchName(Get("/svc/Method", headers)));
    }

    [Theory]
    [InlineData(0ul, "canary")]
    [InlineData(24ul, "canary")]
    [InlineData(25ul, "stable")]
    [InlineData(99ul, "stable")]
    [InlineData(124ul, "canary")]
    [InlineData(125ul, "stable")]
    public void RuntimeFraction_UsesDefaultValueAndTheRandomValueModuloDenominator(ulong random, string expected)
    {
        var routes = Routes(Route("canary", "{ prefix: /, runtime_fraction: { default_value: { numerator: 25 }, runtime_key: k } }") + Route("stable", "{ prefix: / }"));
        Assert.Equal(expected, routes.MatchName(Get("/", random: random)));
    }

    [Theory]
    [InlineData("TEN_THOUSAND", 2500ul, 2499ul, 2500ul)]
    [InlineData("MILLION", 250000ul, 1_249_999ul, 1_250_000ul)]
    public void RuntimeFraction_Denominators(string denominator, ulong numerator, ulong hit, ulong miss)
    {
        var routes = Routes(Route("canary", "{ prefix: /, runtime_fraction: { default_value: { numerator: " + numerator + ", denominator: " + denominator + " }, runtime_key: k } }"));
        Assert.Equal("canary", routes.MatchName(Get("/", random: hit)));
        Assert.Null(routes.MatchName(Get("/", random: miss)));
    }

    [Fact]
    public void RuntimeFraction_SeededRandomSourceIsRepeatable()
    {
        var routes = Routes(Route("canary", "{ prefix: /, runtime_fraction: { default_value: { numerator: 50 }, runtime_key: k } }"));
        var first = new RouteRandom(7);
        var second = new RouteRandom(7);
        for (var i = 0; i < 200; i++)
        {
            var value = first.Next();
            Assert.Equal(value, second.Next());
            Assert.Equal(value % 100 < 50 ? "canary" : null, routes.MatchName(Get("/", random: value)));
        }
    }

    [Fact]
    public void TlsContext_ChecksPresentedAndValidated()
    {
        var routes = Routes(Route("mtls", "{ prefix: /, tls_context: { presented: true, validated: true } }") + Route("anon", "{ prefix: / }"));
        Assert.Equal("mtls", routes.MatchName(Get("/") with { PeerCertificatePresented = true, PeerCertificateValidated = true }));
        Assert.Equal("anon", routes.MatchName(Get("/") with { PeerCertificatePresented = true }));
        Assert.Equal("anon", routes.MatchName(Get("/")));
    }

    [Fact]
    public void InvalidMatchesAreConfigErrors()
    {
        var errors = Errors("""
            name: rc
            virtual_hosts:
            - name: vh
              domains: ['*']
              routes:
              - match: { path_separated_prefix: /api/ }
                direct_response: { status: 200 }
              - match: { prefix: /, headers: [{ name: x, string_match: { safe_regex: { regex: a }, ignore_case: true } }] }
                direct_response: { status: 200 }
              - match: { prefix: /, runtime_fraction: { runtime_key: k } }
                direct_response: { status: 200 }
              - match: { prefix: /, query_parameters: [{ name: '' }] }
                direct_response: { status: 200 }
            """);
        Assert.Equal(
            new[]
            {
                "virtual_hosts[0].routes[0].match.path_separated_prefix",
                "virtual_hosts[0].routes[1].match.headers[0].string_match.ignore_case",
                "virtual_hosts[0].routes[2].match.runtime_fraction.default_value",
                "virtual_hosts[0].routes[3].match.query_parameters[0].name",
            },
            errors.Errors.Select(e => e.Path).ToArray());
        Assert.Equal("ignore_case has no effect for safe_regex.", errors.Errors[1].Message);
    }
}
