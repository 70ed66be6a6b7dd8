using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Http;
using Legate.Router.Matching;

namespace Legate.Tests.Http;

public sealed class RouteTableTests
{
    [Theory]
    [InlineData("www.example.com", "exact")]
    [InlineData("WWW.Example.COM", "exact")]
    [InlineData("api.example.com", "suffix")]
    [InlineData("x.api.example.com", "long-suffix")]
    [InlineData("foo.example.com", "suffix")]
    [InlineData("foo-bar.net", "suffix-dash")]
    [InlineData("-bar.net", "default")]
    [InlineData("example.com", "default")]
    [InlineData("static.cdn.org", "prefix-long")]
    [InlineData("static.other", "prefix")]
    [InlineData("static.", "default")]
    [InlineData("other.org", "default")]
    [InlineData("www.example.com:8080", "default")]
    public void VirtualHostSearchOrderIsEnvoys(string host, string expected)
    {
        var table = Compile(
            VirtualHost("default", "*"),
            VirtualHost("prefix", "static.*"),
            VirtualHost("prefix-long", "static.cdn.*"),
            VirtualHost("suffix", "*.example.com"),
            VirtualHost("long-suffix", "*.api.example.com"),
            VirtualHost("suffix-dash", "*-bar.net"),
            VirtualHost("exact", "www.example.com"));

        Assert.Equal(expected, Match(table, host, "/").VirtualHost);
    }

    [Fact]
    public void NoDefaultVirtualHostMeansNoMatch()
    {
        var table = Compile(VirtualHost("only", "a.com"));

        Assert.Null(Match(table, "b.com", "/").VirtualHost);
    }

    [Fact]
    public void PortIsPartOfTheHostUnlessIgnored()
    {
        var config = new RouteConfiguration { VirtualHosts = { VirtualHost("a", "a.com"), VirtualHost("a-port", "a.com:81") } };
        var strict = RouteTable.Compile(config, "rc", new ConfigErrors());
        config.IgnorePortInHostMatching = true;
        var ignoring = RouteTable.Compile(config, "rc", new ConfigErrors());

        Assert.Equal("a-port", Match(strict, "a.com:81", "/").VirtualHost);
        Assert.Null(Match(strict, "a.com:82", "/").VirtualHost);
        Assert.Equal("a", Match(ignoring, "a.com:82", "/").VirtualHost);
    }

    [Theory]
    [InlineData("a.com:80", "a.com")]
    [InlineData("a.com", "a.com")]
    [InlineData("[::1]:80", "[::1]")]
    [InlineData("[::1]", "[::1]")]
    [InlineData("::1", "::1")]
    public void HostWithoutPort(string host, string expected)
    {
        Assert.Equal(expected, RouteTable.HostWithoutPort(host));
    }

    [Fact]
    public void DuplicateDomainsAreErrorsWithTheirPath()
    {
        var errors = new ConfigErrors();
        RouteTable.Compile(new RouteConfiguration { VirtualHosts = { VirtualHost("a", "x.com", "*"), VirtualHost("b", "X.com") } }, "rc", errors);

        var error = Assert.Single(errors.Errors);
        Assert.Equal("rc.virtual_hosts[1].domains[0]", error.Path);
        Assert.Contains("x.com", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("/", "root")]
    [InlineData("/api", "api-exact")]
    [InlineData("/api/v1", "api-sep")]
    [InlineData("/apix", "api-prefix")]
    [InlineData("/API/users", "users-nocase")]
    [InlineData("/img/a.png", "regex")]
    [InlineData("/img/a.gif", "catch-all")]
    [InlineData("/other", "catch-all")]
    public void FirstMatchingRouteWins(string path, string expected)
    {
        var vh = VirtualHost("v", "*");
        vh.Routes.Add(Direct("root", new RouteMatch { Path = "/" }));
        vh.Routes.Add(Direct("users-nocase", new RouteMatch { Prefix = "/api/users", CaseSensitive = false }));
        vh.Routes.Add(Direct("api-exact", new RouteMatch { Path = "/api" }));
        vh.Routes.Add(Direct("api-sep", new RouteMatch { PathSeparatedPrefix = "/api" }));
        vh.Routes.Add(Direct("api-prefix", new RouteMatch { Prefix = "/api" }));
        vh.Routes.Add(Direct("regex", new RouteMatch { SafeRegex = new Envoy.Type.Matcher.V3.RegexMatcher { Regex = "/img/[a-z]+\\.png" } }));
        vh.Routes.Add(Direct("catch-all", new RouteMatch { Prefix = "/" }));
        var table = Compile(vh);

        Assert.Equal(expected, Match(table, "h", path).Route?.Name);
    }

    [Fact]
    public void HeaderGatedRouteMatchesOnlyWithTheHeader()
    {
        var vh = VirtualHost("v", "*");
        var gated = Direct("canary", new RouteMatch { Prefix = "/" });
        gated.Match.Headers.Add(new HeaderMatcher { Name = "x-canary", PresentMatch = true });
        vh.Routes.Add(gated);
        vh.Routes.Add(Direct("stable", new RouteMatch { Prefix = "/" }));
        var table = Compile(vh);

        Assert.Equal("stable", Match(table, "h", "/").Route?.Name);
        Assert.Equal("canary", table.Match(new RouteMatchInput("GET", "/", "h", new HeaderListLookup().Add("x-canary", "1"))).Route?.Name);
    }

    [Fact]
    public void DirectResponseBodyOverTheLimitIsAnError()
    {
        var vh = VirtualHost("v", "*");
        var route = Direct("big", new RouteMatch { Prefix = "/" });
        route.DirectResponse.Body = new Envoy.Config.Core.V3.DataSource { InlineString = new string('x', 11) };
        vh.Routes.Add(route);
        var errors = new ConfigErrors();
        RouteTable.Compile(new RouteConfiguration { VirtualHosts = { vh }, MaxDirectResponseBodySizeBytes = 10 }, "rc", errors);

        var error = Assert.Single(errors.Errors);
        Assert.Equal("rc.virtual_hosts[0].routes[0].direct_response.body", error.Path);
        Assert.Equal("direct response body is 11 bytes, more than max_direct_response_body_size_bytes (10)", error.Message);
    }

    [Fact]
    public void InvalidRegexIsAnErrorWithItsPath()
    {
        var vh = VirtualHost("v", "*");
        vh.Routes.Add(Direct("bad", new RouteMatch { SafeRegex = new Envoy.Type.Matcher.V3.RegexMatcher { Regex = "(" } }));
        var errors = new ConfigErrors();
        RouteTable.Compile(new RouteConfiguration { VirtualHosts = { vh } }, "rc", errors);

        Assert.Equal("rc.virtual_hosts[0].routes[0].match.safe_regex.regex", Assert.Single(errors.Errors).Path);
    }

    private static (string? VirtualHost, RouteEntry? Route) Match(RouteTable table, string host, string path) =>
        table.Match(new RouteMatchInput("GET", path, host));

    private static RouteTable Compile(params VirtualHost[] hosts)
    {
        var errors = new ConfigErrors();
        var table = RouteTable.Compile(new RouteConfiguration { VirtualHosts = { hosts } }, "rc", errors);
        Assert.Empty(errors.Errors);
        return table;
    }

    private static VirtualHost VirtualHost(string name, params string[] domains) => new() { Name = name, Domains = { domains } };

    private static Route Direct(string name, RouteMatch match) =>
        new() { Name = name, Match = match, DirectResponse = new DirectResponseAction { Status = 200 } };
}
