using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Legate.Config;
using Legate.Router.Actions;

namespace Legate.Tests.Router.Actions;

public sealed class PathRewriteTests
{
    [Theory]
    [InlineData("/api/", "/", "/api/users?x=1", "/users?x=1")]
    [InlineData("/api", "/v2", "/api/users", "/v2/users")]
    [InlineData("/API/", "/", "/api/users", "/users")] // case-insensitive match: the matched length is replaced
    public void PrefixRewriteOfAPrefixMatch(string prefix, string replacement, string path, string expected) =>
        Assert.Equal(expected, PathRewrite.ForPrefix(replacement, new RouteMatch { Prefix = prefix }).Apply(path));

    [Fact]
    public void PrefixRewriteOfAPathMatchReplacesTheWholePathAndKeepsTheQuery() =>
        Assert.Equal("/new?q=1", PathRewrite.ForPrefix("/new", new RouteMatch { Path = "/old" }).Apply("/old?q=1"));

    [Fact]
    public void PrefixRewriteOfARegexMatchReplacesTheWholePath() =>
        Assert.Equal("/fixed", PathRewrite.ForPrefix("/fixed", new RouteMatch { SafeRegex = new RegexMatcher { Regex = "/a.*" } }).Apply("/abc"));

    [Fact]
    public void RegexRewriteReplacesEveryMatchInThePathButNotInTheQuery()
    {
        var errors = new ConfigErrors();
        var rewrite = PathRewrite.ForRegex(new RegexMatchAndSubstitute { Pattern = new RegexMatcher { Regex = "one" }, Substitution = "two" }, "r", errors)!;

        Assert.Empty(errors.Errors);
        Assert.Equal("/two/two/x?one=1", rewrite.Apply("/one/one/x?one=1"));
    }

    [Fact]
    public void Re2SubstitutionSyntaxBecomesDotNets()
    {
        Assert.Equal("${2}/x/${1}", PathRewrite.ToDotNetSubstitution("\\2/x/\\1"));
        Assert.Equal("$$1\\", PathRewrite.ToDotNetSubstitution("$1\\\\"));
    }

    [Fact]
    public void AnInvalidRegexIsAConfigErrorWithItsPath()
    {
        var errors = new ConfigErrors();
        Assert.Null(PathRewrite.ForRegex(new RegexMatchAndSubstitute { Pattern = new RegexMatcher { Regex = "(a)\\1" }, Substitution = "" }, "route.regex_rewrite", errors));
        Assert.Equal("route.regex_rewrite.pattern.regex", Assert.Single(errors.Errors).Path);
    }
}
