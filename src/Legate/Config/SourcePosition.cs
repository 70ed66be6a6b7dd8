namespace Legate.Config;

/// <summary>Where a config value was written: 1-based line and column in a YAML or JSON file.</summary>
internal readonly record struct SourcePosition(int Line, int Column)
{
    public override string ToString() => $"line {Line}, col {Column}";
}
