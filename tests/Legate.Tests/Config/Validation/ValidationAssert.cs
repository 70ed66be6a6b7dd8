using Google.Protobuf;
using Legate.Config;
using Legate.Config.Validation;

namespace Legate.Tests.Config.Validation;

/// <summary>Runs the validator and renders each error as <c>path: message</c> for exact comparison.</summary>
internal static class ValidationAssert
{
    public static string[] Errors(IMessage message, string path = "")
    {
        var errors = new ConfigErrors();
        PgvValidator.Validate(message, path, errors);
        return errors.Errors.Select(e => $"{e.Path}: {e.Message}").ToArray();
    }

    public static void Valid(IMessage message) => Assert.Empty(Errors(message));

    public static void Single(IMessage message, string expected, string path = "") => Assert.Equal([expected], Errors(message, path));

    /// <summary>Runs one rule directly on a value, as the walk would for a field of that type.</summary>
    public static string[] Check(ValueRule? rule, object value)
    {
        Assert.NotNull(rule);
        var errors = new ConfigErrors();
        rule.Check(value, "f", errors);
        return errors.Errors.Select(e => e.Message).ToArray();
    }
}
