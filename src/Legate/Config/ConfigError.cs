namespace Legate.Config;

/// <summary>
/// One problem found in a configuration: the field path in proto (snake_case) names, e.g.
/// <c>static_resources.clusters[1].connect_timeout</c>, where it was written when known, and what is wrong.
/// </summary>
internal sealed record ConfigError(string Path, string Message, SourcePosition? Position = null)
{
    public override string ToString()
    {
        var where = Path.Length == 0 ? "(root)" : Path;
        return Position is { } p ? $"{where} ({p}): {Message}" : $"{where}: {Message}";
    }
}
