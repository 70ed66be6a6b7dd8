namespace Legate.Config;

/// <summary>
/// Maps field paths (<c>static_resources.clusters[1].name</c>) to where they were written in the
/// source document, so that errors found after parsing (validation, semantic checks) can still
/// point at a line and column.
/// </summary>
internal sealed class SourceMap
{
    private readonly Dictionary<string, SourcePosition> _positions = new(StringComparer.Ordinal);

    public int Count => _positions.Count;

    public void Record(string path, SourcePosition position) => _positions.TryAdd(path, position);

    /// <summary>
    /// The position of <paramref name="path"/>, or of its nearest written ancestor (a default
    /// value has no position of its own, but the message holding it does).
    /// </summary>
    public SourcePosition? Find(string path)
    {
        var p = path;
        while (true)
        {
            if (_positions.TryGetValue(p, out var pos))
            {
                return pos;
            }

            var cut = FieldPath.ParentLength(p);
            if (cut < 0)
            {
                return null;
            }

            p = p[..cut];
        }
    }
}
