using System.Buffers;

namespace Legate.Http.Http1;

/// <summary>
/// Character classes of RFC 9110/9112 as vectorised <see cref="SearchValues{T}"/>, so validating a
/// header line is one or two SIMD scans instead of a loop with a branch per byte.
/// </summary>
internal static class HttpChars
{
    /// <summary>tchar (RFC 9110 §5.6.2): the characters of a token (method, header name).</summary>
    public static readonly SearchValues<byte> Token = SearchValues.Create(
        "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    /// <summary>
    /// Bytes that may not appear in a field value (RFC 9110 §5.5): every CTL except HTAB, i.e. NUL,
    /// CR and LF among others, and DEL. obs-text (0x80-0xFF) is allowed, as Envoy allows it.
    /// </summary>
    public static readonly SearchValues<byte> InvalidFieldValue = SearchValues.Create(
    [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
        0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x7F,
    ]);

    /// <summary>
    /// The characters of a Host value / URI authority (RFC 3986 §3.2): unreserved, pct-encoded,
    /// sub-delims, ':' for the port and '[' ']' for IP literals. Not '@': userinfo has no place in
    /// an http(s) authority (RFC 9110 §4.2.4) and is a classic host-confusion vector.
    /// </summary>
    public static readonly SearchValues<byte> Authority = SearchValues.Create(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:[]"u8);

    /// <summary>scheme (RFC 3986 §3.1) after its first ALPHA.</summary>
    public static readonly SearchValues<byte> SchemeTail = SearchValues.Create(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-."u8);

    public static bool IsToken(ReadOnlySpan<byte> value) => value.Length > 0 && value.IndexOfAnyExcept(Token) < 0;

    public static bool IsValidFieldValue(ReadOnlySpan<byte> value) => value.IndexOfAny(InvalidFieldValue) < 0;

    /// <summary>
    /// A request-target byte: visible ASCII only (RFC 9112 §3.2 and RFC 3986 allow no SP, CTL or
    /// non-ASCII there). Stricter than http-parser/Balsa, which also let HTAB and FF through.
    /// </summary>
    public static bool IsValidTarget(ReadOnlySpan<byte> target) => target.IndexOfAnyExceptInRange((byte)0x21, (byte)0x7E) < 0;

    public static bool IsWhitespace(byte b) => b == (byte)' ' || b == (byte)'\t';

    /// <summary>Strips optional whitespace (SP / HTAB) from both ends.</summary>
    public static ReadOnlySpan<byte> TrimOws(ReadOnlySpan<byte> value)
    {
        int start = 0;
        while (start < value.Length && IsWhitespace(value[start]))
        {
            start++;
        }

        int end = value.Length;
        while (end > start && IsWhitespace(value[end - 1]))
        {
            end--;
        }

        return value[start..end];
    }
}
