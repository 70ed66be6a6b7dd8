using Legate.Router.Matching;
using static Legate.Tests.Router.Matching.RouteTestSupport;

namespace Legate.Tests.Router.Matching;

public sealed class HeaderAndQueryMatchTests
{
    private static RouteMatcher HeaderRoute(string header) =>
        Routes("  - name: hit\n    match: { prefix: /, headers: [" + header + "] }\n    direct_response: { status: 200 }\n");

    private static string? Run(RouteMatcher routes, params (string Name, string Value)[] headers)
    {
        var lookup = new HeaderListLookup();
        foreach (var (name, value) in headers)
        {
            lookup.Add(name, value);
        }

        return routes.MatchName(Get("/", lookup));
    }

    [Theory]
    [InlineData("{ name: x, string_match: { exact: abc } }", "abc", "hit")]
    [InlineData("{ name: x, string_match: { exact: abc } }", "ABC", null)]
    [InlineData("{ name: x, string_match: { exact: abc, ignore_case: true } }", "ABC", "hit")]
    [InlineData("{ name: x, string_match: { prefix: ab } }", "abc", "hit")]
    [InlineData("{ name: x, string_match: { suffix: bc } }", "abc", "hit")]
    [InlineData("{ name: x, string_match: { suffix: BC, ignore_case: true } }", "abc", "hit")]
    [InlineData("{ name: x, string_match: { contains: b } }", "abc", "hit")]
    [InlineData("{ name: x, string_match: { contains: z } }", "abc", null)]
    [InlineData("{ name: x, string_match: { safe_regex: { regex: 'a.c' } } }", "abc", "hit")]
    [InlineData("{ name: x, string_match: { safe_regex: { regex: 'b' } } }", "abc", null)]
    [InlineData("{ name: x, exact_match: abc }", "abc", "hit")]
    [InlineData("{ name: x, exact_match: abc }", "abd", null)]
    [InlineData("{ name: x, exact_match: '' }", "anything", "hit")]
    [InlineData("{ name: x, prefix_match: ab }", "abc", "hit")]
    [InlineData("{ name: x, suffix_match: bc }", "abc", "hit")]
    [InlineData("{ name: x, contains_match: b }", "abc", "hit")]
    [InlineData("{ name: x, safe_regex_match: { regex: '\\d{3}' } }", "123", "hit")]
    [InlineData("{ name: x, safe_regex_match: { regex: '\\d{3}' } }", "1234", null)]
    [InlineData("{ name: x, safe_regex_match: { regex: '\\d{3}' }, invert_match: true }", "1234", "hit")]
    [InlineData("{ name: x, range_match: { start: -10, end: 0 } }", "-1", "hit")]
    [InlineData("{ name: x, range_match: { start: -10, end: 0 } }", "0", null)]
    [InlineData("{ name: x, range_match: { start: -10, end: 0 } }", "-10", "hit")]
    [InlineData("{ name: x, range_match: { start: -10, end: 0 } }", "abc", null)]
    [InlineData("{ name: x, range_match: { start: -10, end: 0 }, invert_match: true }", "-1", null)]
    [InlineData("{ name: x, present_match: true }", "", "hit")]
    [InlineData("{ name: x, present_match: false }", "v", null)]
    [InlineData("{ name: x }", "v", "hit")]
    [InlineData("{ name: X-Upper, exact_match: v }", "v", null)]
    public void HeaderForms(string matcher, string value, string? expected)
    {
        Assert.Equal(expected, Run(HeaderRoute(matcher), ("x", value)));
    }

    [Theory]
    [InlineData("{ name: x, exact_match: abc }", null)]
    [InlineData("{ name: x, exact_match: abc, invert_match: true }", null)]
    [InlineData("{ name: x, present_match: true }", null)]
    [InlineData("{ name: x, present_match: true, invert_match: true }", "hit")]
    [InlineData("{ name: x, present_match: false }", "hit")]
    [InlineData("{ name: x, present_match: false, invert_match: true }", null)]
    [InlineData("{ name: x }", null)]
    [InlineData("{ name: x, string_match: { exact: '' }, treat_missing_header_as_empty: true }", "hit")]
    [InlineData("{ name: x, string_match: { exact: a }, treat_missing_header_as_empty: true }", null)]
    [InlineData("{ name: x, range_match: { start: 0, end: 10 }, invert_match: true, treat_missing_header_as_empty: true }", "hit")]
    [InlineData("{ name: x, string_match: { prefix: a }, invert_match: true, treat_missing_header_as_empty: true }", "hit")]
    public void MissingHeader(string matcher, string? expected)
    {
        Assert.Equal(expected, Run(HeaderRoute(matcher), ("other", "v")));
    }

    [Fact]
    public void MultipleValuesAreJoinedWithComma()
    {
        Assert.Equal("hit", Run(HeaderRoute("{ name: x, string_match: { exact: 'a,b' } }"), ("x", "a"), ("X", "b")));
        Assert.Null(Run(HeaderRoute("{ name: x, string_match: { exact: a } }"), ("x", "a"), ("x", "b")));
    }

    [Fact]
    public void AllHeaderMatchersMustMatch()
    {
        var routes = HeaderRoute("{ name: a, exact_match: '1' }, { name: b, exact_match: '2' }");
        Assert.Equal("hit", Run(routes, ("a", "1"), ("b", "2")));
        Assert.Null(Run(routes, ("a", "1"), ("b", "3")));
        Assert.Null(Run(routes, ("a", "1")));
    }

    [Fact]
    public void PseudoHeadersComeFromTheInput()
    {
        var routes = HeaderRoute("{ name: ':method', exact_match: POST }, { name: ':authority', string_match: { suffix: .com } }");
        Assert.Equal("hit", routes.MatchName(new RouteMatchInput("POST", "/", "example.com")));
        Assert.Null(routes.MatchName(new RouteMatchInput("GET", "/", "example.com")));
        Assert.Null(routes.MatchName(new RouteMatchInput("POST", "/", "example.org")));
    }

    private static RouteMatcher QueryRoute(string matcher) =>
        Routes("  - name: hit\n    match: { prefix: /, query_parameters: [" + matcher + "] }\n    direct_response: { status: 200 }\n");

    [Theory]
    [InlineData("{ name: debug, string_match: { exact: 'on' } }", "/p?debug=on", "hit")]
    [InlineData("{ name: debug, string_match: { exact: 'on' } }", "/p?x=1&debug=on#f", "hit")]
    [InlineData("{ name: debug, string_match: { exact: 'on' } }", "/p?debug=off", null)]
    [InlineData("{ name: debug, string_match: { exact: 'on' } }", "/p?debug=off&debug=on", null)]
    [InlineData("{ name: debug, string_match: { exact: 'on' } }", "/p", null)]
    [InlineData("{ name: debug, string_match: { exact: 'on' } }", "/p#debug=on", null)]
    [InlineData("{ name: debug, string_match: { exact: 'a b' } }", "/p?debug=a%20b", "hit")]
    [InlineData("{ name: debug, string_match: { exact: 'a+b' } }", "/p?debug=a+b", "hit")]
    [InlineData("{ name: debug, string_match: { exact: 'ON', ignore_case: true } }", "/p?debug=on", "hit")]
    [InlineData("{ name: debug, string_match: { exact: '' } }", "/p?debug", "hit")]
    [InlineData("{ name: debug, present_match: true }", "/p?debug", "hit")]
    [InlineData("{ name: debug, present_match: true }", "/p?debugx=1", null)]
    [InlineData("{ name: debug, present_match: false }", "/p?debug=1", null)]
    [InlineData("{ name: debug, present_match: false }", "/p", null)]
    [InlineData("{ name: debug }", "/p?debug=1", "hit")]
    [InlineData("{ name: 'a b' }", "/p?a%20b=1", "hit")]
    public void QueryParameters(string matcher, string path, string? expected)
    {
        Assert.Equal(expected, QueryRoute(matcher).MatchName(Get(path)));
    }

    [Fact]
    public void PercentDecodeKeepsMalformedEscapesAndDecodesUtf8()
    {
        Assert.Equal("100%", CompiledQueryParameterMatcher.PercentDecode("100%"));
        Assert.Equal("%zz", CompiledQueryParameterMatcher.PercentDecode("%zz"));
        Assert.Equal("é", CompiledQueryParameterMatcher.PercentDecode("%C3%A9"));
        Assert.Equal("a%zzAé😀%", CompiledQueryParameterMatcher.PercentDecode("a%zz%41é😀%"));
    }
}
