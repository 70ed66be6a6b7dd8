using Legate.Http.Http1;
using Legate.Http.Http2;

namespace Legate.Tests.Http.Http2;

/// <summary>The header strings a pooled HTTP/2 stream hands to Kestrel: remembered by position, small numbers from a table.</summary>
public sealed class Http2HeaderStringsTests
{
    [Fact]
    public void TheSameBytesAtTheSamePositionGiveTheSameStrings()
    {
        var strings = new Http2HeaderStrings();
        var first = Headers(("content-type", "text/plain"), ("X-Custom", "abc"));
        var second = Headers(("content-type", "text/plain"), ("x-custom", "abc"));

        Assert.Same(strings.Value(first, 0), strings.Value(second, 0));
        Assert.Same(strings.Name(first, 1), strings.Name(second, 1));
        Assert.Equal("x-custom", strings.Name(second, 1));
        Assert.Same(strings.Value(first, 1), strings.Value(second, 1));

        var changed = Headers(("content-type", "text/html"), ("x-other", "abc"));
        Assert.Equal("text/html", strings.Value(changed, 0));
        Assert.Equal("x-other", strings.Name(changed, 1));
    }

    [Fact]
    public void SmallNumbersComeFromATableButNotWithLeadingZeros()
    {
        var strings = new Http2HeaderStrings();
        var fortyTwo = strings.Value(Headers(("x-envoy-upstream-service-time", "42")), 0);
        Assert.Equal("7", strings.Value(Headers(("x-envoy-upstream-service-time", "7")), 0));
        Assert.Same(fortyTwo, strings.Value(Headers(("x-envoy-upstream-service-time", "42")), 0));
        Assert.Same(fortyTwo, new Http2HeaderStrings().Value(Headers(("x-n", "42")), 0));

        Assert.Equal("007", strings.Value(Headers(("x-n", "007")), 0));
        Assert.Equal("0", strings.Value(Headers(("x-n", "0")), 0));
        Assert.Equal("1000", strings.Value(Headers(("x-n", "1000")), 0));
        Assert.Equal("4a", strings.Value(Headers(("x-n", "4a")), 0));
    }

    private static HttpHeaderMap Headers(params (string Name, string Value)[] fields)
    {
        var map = new HttpHeaderMap();
        foreach (var (name, value) in fields)
        {
            map.Add(name, value);
        }

        return map;
    }
}
