namespace Legate.Tls;

/// <summary>DNS name comparison as certificates use it (RFC 6125: a wildcard stands for exactly one leftmost label).</summary>
internal static class DnsNames
{
    /// <summary>True when <paramref name="pattern"/> (a name or <c>*.suffix</c>) covers <paramref name="name"/>.</summary>
    public static bool Match(string pattern, string name) =>
        string.Equals(pattern, name, StringComparison.OrdinalIgnoreCase) || WildcardMatch(pattern, name);

    /// <summary>True when <paramref name="pattern"/> is <c>*.suffix</c> and <paramref name="name"/> is one label followed by <c>.suffix</c>.</summary>
    public static bool WildcardMatch(string pattern, string name)
    {
        if (pattern.Length < 3 || pattern[0] != '*' || pattern[1] != '.')
        {
            return false;
        }

        var suffix = pattern.AsSpan(1);
        var dot = name.IndexOf('.');
        return dot > 0 && name.AsSpan(dot).Equals(suffix, StringComparison.OrdinalIgnoreCase);
    }
}
