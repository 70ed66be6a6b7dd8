using Legate.Config.Validation;

namespace Legate.Tests.Config.Validation;

public sealed class Re2RegexTests
{
    [Theory]
    [InlineData("^[a-z]+$", "^[a-z]+\\z")]
    [InlineData("^a\\$b$", "^a\\$b\\z")]
    [InlineData("[$]", "[$]")]
    [InlineData("(?m)^a$", "(?m)^a$")]
    [InlineData("\\d+\\w\\s", "[0-9]+[0-9A-Za-z_][\\t\\n\\f\\r ]")]
    [InlineData("[\\d.]", "[0-9.]")]
    [InlineData("(?P<year>\\d{4})", "(?<year>[0-9]{4})")]
    [InlineData("\\pL\\PN", "\\p{L}\\P{N}")]
    [InlineData("\\x{41}", "\\u0041")]
    [InlineData("[[:alpha:]_]", "[A-Za-z_]")]
    [InlineData("[^[0-9]", "[^\\[0-9]")]
    [InlineData("[]a]", "[\\]a]")]
    [InlineData("\\Qa.b\\E+", "a\\.b+")]
    public void TranslatesRe2Syntax(string re2, string dotnet) => Assert.Equal(dotnet, Re2Regex.Translate(re2));

    [Fact]
    public void DollarDoesNotMatchBeforeTrailingNewline()
    {
        var regex = Re2Regex.Get("^[a-z]+$");
        Assert.NotNull(regex);
        Assert.Matches(regex, "abc");
        Assert.DoesNotMatch(regex, "abc\n");
    }

    [Fact]
    public void ShorthandClassesAreAsciiOnly()
    {
        var regex = Re2Regex.Get("^\\d+$");
        Assert.NotNull(regex);
        Assert.Matches(regex, "0123");
        Assert.DoesNotMatch(regex, "٠١٢"); // Arabic-Indic digits are \d in .NET, not in RE2
    }

    [Fact]
    public void CompiledPatternsAreCachedAndInvalidOnesAreNull()
    {
        Assert.Same(Re2Regex.Get("^x+$"), Re2Regex.Get("^x+$"));
        Assert.Null(Re2Regex.Get("(unclosed"));
    }
}
