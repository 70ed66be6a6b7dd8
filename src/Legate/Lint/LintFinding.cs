namespace Legate.Lint;

/// <summary>
/// One lint finding: a stable code (documented in docs/lint.md, never reused), the field path it is
/// about, a one-line why, and the fix.
/// </summary>
internal sealed record LintFinding(string Code, string Path, string Why, string Fix)
{
    public override string ToString() => $"{Code} {Path}: {Why} (fix: {Fix})";
}
