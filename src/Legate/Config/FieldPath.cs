using System.Globalization;

namespace Legate.Config;

/// <summary>
/// Builds the field paths used in every config error: proto field names joined by dots, list
/// indices in brackets and map keys quoted, e.g. <c>clusters[2].typed_extension_protocol_options["x"]</c>.
/// </summary>
internal static class FieldPath
{
    public static string Field(string parent, string field) => parent.Length == 0 ? field : parent + "." + field;

    public static string Index(string parent, int index) => parent + "[" + index.ToString(CultureInfo.InvariantCulture) + "]";

    public static string Key(string parent, string key) => parent + "[\"" + key.Replace("\"", "\\\"", StringComparison.Ordinal) + "\"]";

    /// <summary>Length of the parent path of <paramref name="path"/>, or -1 for the root.</summary>
    public static int ParentLength(string path)
    {
        if (path.Length == 0)
        {
            return -1;
        }

        if (path[^1] == ']')
        {
            // Walk back to the matching '[' (map keys may hold '.' or ']' inside quotes).
            var inQuotes = false;
            for (var i = path.Length - 2; i >= 0; i--)
            {
                var c = path[i];
                if (c == '"' && (i == 0 || path[i - 1] != '\\'))
                {
                    inQuotes = !inQuotes;
                }
                else if (c == '[' && !inQuotes)
                {
                    return i;
                }
            }

            return 0;
        }

        var dot = path.LastIndexOf('.');
        var bracket = path.LastIndexOf(']');
        return dot > bracket ? dot : (bracket >= 0 ? bracket + 1 : 0);
    }
}
