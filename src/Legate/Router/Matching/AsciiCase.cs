namespace Legate.Router.Matching;

/// <summary>
/// Case folding as Envoy does it (absl::AsciiStrToLower): only A-Z fold, so matching never
/// depends on culture or Unicode tables.
/// </summary>
internal static class AsciiCase
{
    public static char Lower(char c) => c is >= 'A' and <= 'Z' ? (char)(c + 32) : c;

    public static string Lower(string s)
    {
        return string.Create(s.Length, s, static (span, src) =>
        {
            for (var i = 0; i < src.Length; i++)
            {
                span[i] = Lower(src[i]);
            }
        });
    }

    public static bool Equals(ReadOnlySpan<char> a, ReadOnlySpan<char> b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (Lower(a[i]) != Lower(b[i]))
            {
                return false;
            }
        }

        return true;
    }

    public static bool StartsWith(ReadOnlySpan<char> s, ReadOnlySpan<char> prefix) =>
        s.Length >= prefix.Length && Equals(s[..prefix.Length], prefix);

    public static bool EndsWith(ReadOnlySpan<char> s, ReadOnlySpan<char> suffix) =>
        s.Length >= suffix.Length && Equals(s[(s.Length - suffix.Length)..], suffix);

    public static bool Contains(ReadOnlySpan<char> s, ReadOnlySpan<char> needle)
    {
        for (var i = 0; i + needle.Length <= s.Length; i++)
        {
            if (Equals(s.Slice(i, needle.Length), needle))
            {
                return true;
            }
        }

        return false;
    }
}
