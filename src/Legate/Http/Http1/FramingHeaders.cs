using System.Text;

namespace Legate.Http.Http1;

/// <summary>
/// Reads the two framing headers, Content-Length and Transfer-Encoding, with the strictness that
/// keeps request smuggling out: one reading of the framing, or an error.
/// </summary>
internal static class FramingHeaders
{
    /// <summary>
    /// The Content-Length of the message, or -1. A value must be 1*DIGIT fitting in a signed 64-bit
    /// integer: no sign, no whitespace inside, no comma list. More than one Content-Length field is
    /// an error even when the values agree: Envoy's Balsa parser runs with
    /// <c>disallow_multiple_content_length</c> (and http-parser rejected duplicates too), which is
    /// stricter than RFC 9110 §8.6's permission to collapse identical values.
    /// </summary>
    public static Http1ErrorCode ReadContentLength(HttpHeaderMap headers, out long contentLength, out int index)
    {
        contentLength = -1;
        index = headers.IndexOf(KnownHeader.ContentLength);
        if (index < 0)
        {
            return Http1ErrorCode.None;
        }

        if (headers.IndexOf(KnownHeader.ContentLength, index + 1) >= 0)
        {
            return Http1ErrorCode.MultipleContentLength;
        }

        return TryParseContentLength(headers.GetValueBytes(index), out contentLength)
            ? Http1ErrorCode.None
            : Http1ErrorCode.InvalidContentLength;
    }

    public static bool TryParseContentLength(ReadOnlySpan<byte> value, out long length)
    {
        length = 0;
        if (value.IsEmpty)
        {
            return false;
        }

        foreach (byte b in value)
        {
            uint digit = (uint)(b - '0');
            if (digit > 9 || length > (long.MaxValue - digit) / 10)
            {
                length = 0;
                return false;
            }

            length = (length * 10) + digit;
        }

        return true;
    }

    /// <summary>
    /// Envoy accepts exactly one transfer coding, <c>chunked</c>: any other value, a list such as
    /// <c>gzip, chunked</c> or <c>chunked, identity</c>, or a second Transfer-Encoding field (which
    /// Envoy's header map would join into <c>chunked,chunked</c>) is unsupported (501). Leading and
    /// trailing whitespace is optional whitespace and was already stripped from the value.
    /// </summary>
    public static TransferCoding ReadTransferEncoding(HttpHeaderMap headers)
    {
        int i = headers.IndexOf(KnownHeader.TransferEncoding);
        if (i < 0)
        {
            return TransferCoding.Absent;
        }

        if (headers.IndexOf(KnownHeader.TransferEncoding, i + 1) >= 0)
        {
            return TransferCoding.Unsupported;
        }

        return Ascii.EqualsIgnoreCase(headers.GetValueBytes(i), "chunked"u8) ? TransferCoding.Chunked : TransferCoding.Unsupported;
    }
}
