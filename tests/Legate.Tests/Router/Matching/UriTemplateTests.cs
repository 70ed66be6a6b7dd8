using Legate.Config;
using Legate.Router.Matching;

namespace Legate.Tests.Router.Matching;

/// <summary>Envoy's URI template grammar (path_match_policy): what each template matches and why bad ones are refused.</summary>
public sealed class UriTemplateTests
{
    [Theory]
    [InlineData("/a/b", "/a/b", true)]
    [InlineData("/a/b", "/a/b/", false)]
    [InlineData("/a/b/", "/a/b/", true)]
    [InlineData("/a/b/", "/a/b", false)]
    [InlineData("/a/*", "/a/x", true)]
    [InlineData("/a/*", "/a/", false)]          // '*' is one non-empty segment
    [InlineData("/a/*", "/a/x/y", false)]
    [InlineData("/a/**", "/a/", true)]          // '**' may be empty…
    [InlineData("/a/**", "/a/x/y/z", true)]     // …or span segments
    [InlineData("/a/**", "/a", false)]
    [InlineData("/{x}/c", "/b/c", true)]
    [InlineData("/{x}/c", "/b/d/c", false)]
    [InlineData("/{x=b/*}/c", "/b/q/c", true)]
    [InlineData("/{x=b/*}/c", "/z/q/c", false)]
    [InlineData("/files/{name}.txt", "/files/notes.txt", true)]
    [InlineData("/files/{name}.txt", "/files/notes.md", false)]
    [InlineData("/files/*.txt", "/files/a.b.txt", true)]
    [InlineData("/A/*", "/a/x", false)]         // case-sensitive
    [InlineData("/a/*", "/a/x%2Fy", true)]      // an escaped slash is a literal character
    [InlineData("/a/*", "/a/x*y", false)]       // '*' and '=' are not path characters here
    [InlineData("/", "/", true)]
    [InlineData("/", "/a", false)]
    public void MatchesAsEnvoy(string template, string path, bool expected)
    {
        var errors = new ConfigErrors();
        var compiled = UriTemplate.Compile(template, "t", errors);
        Assert.Empty(errors.Errors);
        Assert.Equal(expected, compiled!.IsMatch(path));
    }

    [Fact]
    public void CapturesNamedVariables()
    {
        var compiled = UriTemplate.Compile("/v1/{bucket}/objects/{path=**}", "t", new ConfigErrors())!;
        var match = compiled.Capture("/v1/photos/objects/2024/cat.jpg")!;
        Assert.Equal("photos", match.Groups["bucket"].Value);
        Assert.Equal("2024/cat.jpg", match.Groups["path"].Value);
        Assert.Equal(["bucket", "path"], compiled.Variables);
        Assert.Equal("/v1/", compiled.LiteralPrefix);
    }

    [Theory]
    [InlineData("a/b", "it must start with '/'")]
    [InlineData("/a b", "only printable ASCII characters without spaces are allowed")]
    [InlineData("/a//b", "empty path segment ('//')")]
    [InlineData("/a{x}", "'{' is not allowed in the segment 'a{x}'")]
    [InlineData("/{x", "unmatched '{'")]
    [InlineData("/{1x}", "invalid variable name '1x'")]
    [InlineData("/{abcdefghijklmnopq}", "variable name 'abcdefghijklmnopq' is longer than 16 characters")]
    [InlineData("/{x}/{x}", "variable 'x' is repeated")]
    [InlineData("/{a}/{b}/{c}/{d}/{e}/{f}", "more than 5 variables")]
    [InlineData("/{x=}", "variable 'x' has an empty match after '='")]
    [InlineData("/{x=a/}", "variable 'x' has an empty segment in its match 'a/'")]
    [InlineData("/**/*", "no operator or variable may follow '**'")]
    [InlineData("/{x=**}/{y}", "no operator or variable may follow '**'")]
    [InlineData("/***", "'*' is not allowed in the suffix '*'")]
    [InlineData("/*.txt/a", "'.txt/a' follows an operator or variable without a '/': only a literal suffix of the last segment is allowed")]
    public void BadTemplatesArePreciseErrors(string template, string reason)
    {
        var errors = new ConfigErrors();
        Assert.Null(UriTemplate.Compile(template, "match.path_match_policy.typed_config.path_template", errors));
        var error = Assert.Single(errors.Errors);
        Assert.Equal("match.path_match_policy.typed_config.path_template", error.Path);
        Assert.StartsWith("invalid path_template '" + template + "': " + reason, error.Message, StringComparison.Ordinal);
    }
}
