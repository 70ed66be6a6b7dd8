using System.Text;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Legate.Config;
using Legate.Router.Matching;

namespace Legate.Tests.Router.Matching;

public sealed class RouteIndexTests
{
    private static readonly string[] s_regexes = { "/(api|v1)/.*", "/api/.*", "/ap?i.*", "/v1/[a-z]+", "/a|/b", "(?i)/API/.*", "/a+b?/?", "/API/users", ".*" };

    private static readonly string[] s_segments = { "api", "API", "v1", "v2", "users", "a", "ab", "b", "" };

    private static string RandomPath(Random random)
    {
        var sb = new StringBuilder();
        var segments = random.Next(0, 4);
        for (var i = 0; i < segments; i++)
        {
            sb.Append('/').Append(s_segments[random.Next(s_segments.Length)]);
        }

        if (sb.Length == 0 || random.Next(4) == 0)
        {
            sb.Append('/');
        }

        if (random.Next(4) == 0)
        {
            sb.Append("?q=").Append(s_segments[random.Next(s_segments.Length)]);
        }

        return sb.ToString();
    }

    private static Route RandomRoute(Random random, int i)
    {
        var match = new RouteMatch();
        var literal = RandomPath(random).Split('?')[0];
        switch (random.Next(6))
        {
            case 0:
                match.Prefix = literal.Length > 1 && random.Next(3) == 0 ? literal[..^1] : literal;
                break;
            case 1:
                match.Path = literal;
                break;
            case 2:
                var trimmed = literal.TrimEnd('/');
                match.PathSeparatedPrefix = trimmed.Length > 0 ? trimmed : "/a";
                break;
            case 3:
                match.SafeRegex = new RegexMatcher { Regex = s_regexes[random.Next(s_regexes.Length)] };
                break;
            case 4:
                match.Prefix = string.Empty;
                match.Headers.Add(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Exact = "1" } });
                break;
            default:
                match.Prefix = literal;
                break;
        }

        if (random.Next(3) == 0)
        {
            match.CaseSensitive = false;
        }

        return new Route { Name = "r" + i, Match = match };
    }

    private static RouteMatcher Build(IReadOnlyList<Route> routes)
    {
        var errors = new ConfigErrors();
        var matcher = RouteMatcher.Create(routes, errors, "routes");
        Assert.Empty(errors.Errors);
        Assert.Equal(routes.Count, matcher.Routes.Count);
        return matcher;
    }

    [Fact]
    public void RandomTablesAgreeWithTheLinearScan()
    {
        var random = new Random(20240601);
        var matched = 0;
        var missed = 0;
        for (var table = 0; table < 200; table++)
        {
            var routes = new List<Route>();
            var count = random.Next(1, 40);
            for (var i = 0; i < count; i++)
            {
                routes.Add(RandomRoute(random, i));
            }

            var matcher = Build(routes);
            for (var p = 0; p < 50; p++)
            {
                var headers = new HeaderListLookup();
                if (random.Next(2) == 0)
                {
                    headers.Add("x", "1");
                }

                var input = new RouteMatchInput("GET", RandomPath(random), "h", headers);
                var expected = matcher.MatchLinear(input);
                Assert.Same(expected, matcher.Match(input));
                if (expected is null)
                {
                    missed++;
                }
                else
                {
                    matched++;
                }
            }
        }

        // Both outcomes must be exercised for the comparison to mean anything.
        Assert.True(matched > 1000, "matched " + matched);
        Assert.True(missed > 500, "missed " + missed);
    }

    [Fact]
    public void TenThousandRoutes()
    {
        var routes = new List<Route>();
        for (var i = 0; i < 10_000; i++)
        {
            var match = (i % 4) switch
            {
                0 => new RouteMatch { Path = "/svc" + i + "/exact" },
                1 => new RouteMatch { Prefix = "/svc" + i + "/" },
                2 => new RouteMatch { PathSeparatedPrefix = "/Tenant" + i, CaseSensitive = false },
                _ => new RouteMatch { SafeRegex = new RegexMatcher { Regex = "/re" + i + "/[0-9]+" } },
            };
            routes.Add(new Route { Name = "r" + i, Match = match });
        }

        routes.Add(new Route { Name = "fallback", Match = new RouteMatch { Prefix = "/" } });
        var matcher = Build(routes);

        Assert.Equal("r0", matcher.Match(Get("/svc0/exact"))?.Name);
        Assert.Equal("r4", matcher.Match(Get("/svc4/exact?x=1"))?.Name);
        Assert.Equal("r9997", matcher.Match(Get("/svc9997/anything"))?.Name);
        Assert.Equal("r1", matcher.Match(Get("/svc1/"))?.Name);

        // "/svc1" is a literal prefix of "/svc10..." but the trailing '/' keeps them apart.
        Assert.Equal("r101", matcher.Match(Get("/svc101/x"))?.Name);
        Assert.Equal("r9998", matcher.Match(Get("/tenant9998/a"))?.Name);
        Assert.Equal("r9998", matcher.Match(Get("/TENANT9998"))?.Name);
        Assert.Equal("fallback", matcher.Match(Get("/tenant9998x"))?.Name);
        Assert.Equal("r9999", matcher.Match(Get("/re9999/42"))?.Name);
        Assert.Equal("fallback", matcher.Match(Get("/re9999/x"))?.Name);
        Assert.Equal("fallback", matcher.Match(Get("/svc0/other"))?.Name);
        Assert.Equal("fallback", matcher.Match(Get("/nothing"))?.Name);

        var paths = new[] { "/svc0/exact", "/svc5/x", "/tenant6", "/re7/1", "/svc8/exact", "/x" };
        foreach (var path in paths)
        {
            Assert.Same(matcher.MatchLinear(Get(path)), matcher.Match(Get(path)));
        }
    }

    [Fact]
    public void EarlierRouteWinsOverLongerLaterPrefix()
    {
        var matcher = Build(new[]
        {
            new Route { Name = "short", Match = new RouteMatch { Prefix = "/a" } },
            new Route { Name = "long", Match = new RouteMatch { Prefix = "/a/b/c" } },
            new Route { Name = "regex", Match = new RouteMatch { SafeRegex = new RegexMatcher { Regex = "/a.*" } } },
        });
        Assert.Equal("short", matcher.Match(Get("/a/b/c/d"))?.Name);

        var reversed = Build(new[]
        {
            new Route { Name = "regex", Match = new RouteMatch { SafeRegex = new RegexMatcher { Regex = "/a.*" } } },
            new Route { Name = "long", Match = new RouteMatch { Prefix = "/a/b/c" } },
        });
        Assert.Equal("regex", reversed.Match(Get("/a/b/c/d"))?.Name);
    }

    [Theory]
    [InlineData("/api/.*", "/api/")]
    [InlineData("/v1/users/[0-9]+", "/v1/users/")]
    [InlineData("/ab?c", "/a")]
    [InlineData("/ab*", "/a")]
    [InlineData("/ab{2}", "/a")]
    [InlineData("/a.b", "/a")]
    [InlineData("/a\\.b", "/a")]
    [InlineData("/a|/b", null)]
    [InlineData("(?i)/api", null)]
    [InlineData("^/api", null)]
    [InlineData(".*", null)]
    [InlineData("a?", null)]
    public void RegexLiteralPrefix(string regex, string? expected)
    {
        Assert.Equal(expected, RouteRegex.LiteralPrefix(regex));
    }

    private static RouteMatchInput Get(string path) => new("GET", path, "h");
}
