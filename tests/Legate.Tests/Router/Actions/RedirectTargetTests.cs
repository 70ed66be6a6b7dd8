using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Router.Actions;

namespace Legate.Tests.Router.Actions;

/// <summary>Envoy's redirect location rules (RouteEntryImplBase::newUri), one rule per case.</summary>
public sealed class RedirectTargetTests
{
    private static RedirectTarget Compile(RedirectAction action, RouteMatch? match = null)
    {
        var errors = new ConfigErrors();
        var target = RedirectTarget.Compile(action, match ?? new RouteMatch { Prefix = "/" }, "redirect", errors);
        Assert.Empty(errors.Errors);
        return target;
    }

    [Fact]
    public void HttpsRedirectKeepsHostAndPathAndDropsTheDefaultHttpPort()
    {
        var target = Compile(new RedirectAction { HttpsRedirect = true });

        Assert.Equal(301, target.Status);
        Assert.Equal("https://example.com/a?b=1", target.Location("/a?b=1", "example.com", "http"));
        Assert.Equal("https://example.com/a", target.Location("/a", "example.com:80", "http"));

        // A non-default port stays: only the old scheme's default port is dropped.
        Assert.Equal("https://example.com:8080/a", target.Location("/a", "example.com:8080", "http"));
    }

    [Fact]
    public void SameSchemeKeepsThePort()
    {
        var target = Compile(new RedirectAction { PathRedirect = "/new" });

        Assert.Equal("http://example.com:80/new", target.Location("/old", "example.com:80", "http"));
    }

    [Fact]
    public void PortRedirectReplacesThePortAndSchemeRedirectIsLowerCased()
    {
        var target = Compile(new RedirectAction { SchemeRedirect = "HTTPS", PortRedirect = 8443 });

        Assert.Equal("https://example.com:8443/x", target.Location("/x", "example.com:8080", "http"));
        Assert.Equal("https://[::1]:8443/x", target.Location("/x", "[::1]:8080", "http"));
    }

    [Fact]
    public void HostRedirectReplacesTheWholeAuthority()
    {
        var target = Compile(new RedirectAction { HostRedirect = "new.example.com", ResponseCode = RedirectAction.Types.RedirectResponseCode.Found });

        Assert.Equal(302, target.Status);
        Assert.Equal("http://new.example.com/p", target.Location("/p", "old.example.com:9000", "http"));
    }

    [Fact]
    public void PathRedirectTakesTheRequestQueryUnlessItHasItsOwn()
    {
        Assert.Equal("http://h/new?q=1", Compile(new RedirectAction { PathRedirect = "/new" }).Location("/old?q=1", "h", "http"));
        Assert.Equal("http://h/new?mine=2", Compile(new RedirectAction { PathRedirect = "/new?mine=2" }).Location("/old?q=1", "h", "http"));

        // strip_query never removes the path_redirect's own query.
        Assert.Equal("http://h/new?mine=2", Compile(new RedirectAction { PathRedirect = "/new?mine=2", StripQuery = true }).Location("/old?q=1", "h", "http"));
        Assert.Equal("http://h/new", Compile(new RedirectAction { PathRedirect = "/new", StripQuery = true }).Location("/old?q=1", "h", "http"));
    }

    [Fact]
    public void PrefixRewriteSwapsTheMatchedPrefix()
    {
        var target = Compile(new RedirectAction { PrefixRewrite = "/v2/" }, new RouteMatch { Prefix = "/v1/" });

        Assert.Equal("http://h/v2/users?x=1", target.Location("/v1/users?x=1", "h", "http"));
    }

    [Fact]
    public void RegexRewriteSubstitutesInThePathOnly()
    {
        var target = Compile(new RedirectAction
        {
            RegexRewrite = new Envoy.Type.Matcher.V3.RegexMatchAndSubstitute
            {
                Pattern = new Envoy.Type.Matcher.V3.RegexMatcher { Regex = "^/service/([^/]+)(/.*)$" },
                Substitution = "\\2/instance/\\1",
            },
            ResponseCode = RedirectAction.Types.RedirectResponseCode.PermanentRedirect,
        });

        Assert.Equal(308, target.Status);
        Assert.Equal("http://h/foo/instance/bar?service=1", target.Location("/service/bar/foo?service=1", "h", "http"));
    }

    [Theory]
    [InlineData(RedirectAction.Types.RedirectResponseCode.MovedPermanently, 301)]
    [InlineData(RedirectAction.Types.RedirectResponseCode.Found, 302)]
    [InlineData(RedirectAction.Types.RedirectResponseCode.SeeOther, 303)]
    [InlineData(RedirectAction.Types.RedirectResponseCode.TemporaryRedirect, 307)]
    [InlineData(RedirectAction.Types.RedirectResponseCode.PermanentRedirect, 308)]
    public void ResponseCodes(RedirectAction.Types.RedirectResponseCode code, int status) =>
        Assert.Equal(status, Compile(new RedirectAction { ResponseCode = code }).Status);

    [Fact]
    public void ForwardedProtoIsTheDefaultScheme() =>
        Assert.Equal("https://h/a", Compile(new RedirectAction { HostRedirect = "h" }).Location("/a", "x", "https"));
}
