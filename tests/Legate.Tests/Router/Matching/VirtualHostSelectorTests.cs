using Legate.Router.Matching;
using static Legate.Tests.Router.Matching.RouteTestSupport;

namespace Legate.Tests.Router.Matching;

public sealed class VirtualHostSelectorTests
{
    private const string Hosts = """
        name: rc
        virtual_hosts:
        - name: exact
          domains: [www.example.com, "api.example.com:8443"]
        - name: suffix-short
          domains: ["*.example.com"]
        - name: suffix-long
          domains: ["*-bar.example.com"]
        - name: prefix-short
          domains: ["foo.*"]
        - name: prefix-long
          domains: ["foo.bar.*"]
        - name: default
          domains: ["*"]
        """;

    [Theory]
    [InlineData("www.example.com", "exact")]
    [InlineData("WWW.Example.COM", "exact")]
    [InlineData("api.example.com:8443", "exact")]
    [InlineData("api.example.com", "suffix-short")]
    [InlineData("api.example.com:9000", "default")]
    [InlineData("x.example.com", "suffix-short")]
    [InlineData("foo-bar.example.com", "suffix-long")]
    [InlineData("-bar.example.com", "suffix-short")]
    [InlineData(".example.com", "default")]
    [InlineData("foo.bar.baz", "prefix-long")]
    [InlineData("foo.baz", "prefix-short")]
    [InlineData("foo.", "default")]
    [InlineData("foo.example.com", "suffix-short")]
    [InlineData("other.org", "default")]
    [InlineData("", "default")]
    public void Precedence(string authority, string expected)
    {
        var selector = Compile(Hosts).VirtualHosts;
        Assert.Equal(expected, selector.Select(authority)?.Name);
    }

    [Fact]
    public void LongAuthorityIsSelectedToo()
    {
        var selector = Compile(Hosts).VirtualHosts;
        Assert.Equal("suffix-short", selector.Select(new string('A', 300) + ".EXAMPLE.com")?.Name);
    }

    [Fact]
    public void WithoutDefaultHostNothingMatches()
    {
        var selector = Compile("name: rc\nvirtual_hosts:\n- name: a\n  domains: [a.com]\n").VirtualHosts;
        Assert.Equal("a", selector.Select("A.com")?.Name);
        Assert.Null(selector.Select("b.com"));
        Assert.Null(selector.Select("a.com:80"));
    }

    [Theory]
    [InlineData("a.com:80", "a")]
    [InlineData("a.com", "a")]
    [InlineData("x.b.com:1234", "b")]
    [InlineData("[::1]:8080", "v6")]
    [InlineData("[::1]", "v6")]
    [InlineData("c.com:", "default")]
    public void IgnorePortInHostMatching(string authority, string expected)
    {
        var selector = Compile("""
            name: rc
            ignore_port_in_host_matching: true
            virtual_hosts:
            - name: a
              domains: [a.com]
            - name: b
              domains: ["*.b.com"]
            - name: v6
              domains: ["[::1]"]
            - name: default
              domains: ["*"]
            """).VirtualHosts;
        Assert.Equal(expected, selector.Select(authority)?.Name);
    }

    [Fact]
    public void PortStartIgnoresColonsInsideIpv6Brackets()
    {
        Assert.Equal(5, VirtualHostSelector.PortStart("a.com:80"));
        Assert.Equal(-1, VirtualHostSelector.PortStart("[::1]"));
        Assert.Equal(5, VirtualHostSelector.PortStart("[::1]:443"));
        Assert.Equal(-1, VirtualHostSelector.PortStart("a.com"));
    }

    [Fact]
    public void DuplicateDomainsAreErrorsWithFieldPaths()
    {
        var errors = Errors("""
            name: rc
            virtual_hosts:
            - name: a
              domains: [a.com, "*.b.com", "c.*"]
            - name: b
              domains: [A.COM, "*.B.com", "c.*", "*"]
            - name: c
              domains: ["*", "a.*.com", "**.d.com"]
            """);
        Assert.Equal(
            new[]
            {
                ("virtual_hosts[1].domains[0]", "Only unique values for domains are permitted. Duplicate entry of domain a.com in route rc"),
                ("virtual_hosts[1].domains[1]", "Only unique values for domains are permitted. Duplicate entry of domain *.b.com in route rc"),
                ("virtual_hosts[1].domains[2]", "Only unique values for domains are permitted. Duplicate entry of domain c.* in route rc"),
                ("virtual_hosts[2].domains[0]", "Only a single wildcard domain is permitted in route rc"),
                ("virtual_hosts[2].domains[1]", "Wildcard '*' is only permitted at the start or the end of domain a.*.com in route rc"),
                ("virtual_hosts[2].domains[2]", "Wildcard '*' is only permitted at the start or the end of domain **.d.com in route rc"),
            },
            errors.Errors.Select(e => (e.Path, e.Message)).ToArray());
    }

    [Fact]
    public void CompiledRouteConfigurationSelectsHostThenRoute()
    {
        var config = Compile("""
            name: rc
            virtual_hosts:
            - name: a
              domains: [a.com]
              routes:
              - name: a-root
                match: { prefix: / }
                direct_response: { status: 200 }
            - name: b
              domains: [b.com]
              routes:
              - name: b-api
                match: { prefix: /api }
                direct_response: { status: 200 }
            """);
        var (host, route) = config.Match(new RouteMatchInput("GET", "/api/x", "b.com"));
        Assert.Equal("b", host?.Name);
        Assert.Equal("b-api", route?.Name);
        (host, route) = config.Match(new RouteMatchInput("GET", "/other", "b.com"));
        Assert.Equal("b", host?.Name);
        Assert.Null(route);
        (host, route) = config.Match(new RouteMatchInput("GET", "/", "c.com"));
        Assert.Null(host);
        Assert.Null(route);
    }
}
