using System.Buffers;

namespace Legate.Http.Http1;

/// <summary>
/// Writes chunked transfer coding (RFC 9112 §7.1): <c>size-in-hex CRLF data CRLF</c> per chunk,
/// then <c>0 CRLF</c>, the trailer fields and an empty line. No chunk extensions are ever written.
/// </summary>
internal static class ChunkedEncoder
{
    /// <summary>The longest chunk-size line: 16 hex digits and CRLF.</summary>
    private const int MaxChunkHeaderLength = 18;

    /// <summary>
    /// Writes one chunk. An empty <paramref name="data"/> writes nothing: a zero-size chunk would
    /// end the body.
    /// </summary>
    public static void WriteChunk(IBufferWriter<byte> output, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        Span<byte> span = output.GetSpan(MaxChunkHeaderLength + data.Length + 2);
        int pos = WriteSize(span, data.Length);
        data.CopyTo(span[pos..]);
        pos += data.Length;
        span[pos++] = (byte)'\r';
        span[pos++] = (byte)'\n';
        output.Advance(pos);
    }

    /// <summary>Writes one chunk from a (possibly multi-segment) sequence, e.g. a body slice from <see cref="Http1BodyReader"/>.</summary>
    public static void WriteChunk(IBufferWriter<byte> output, in ReadOnlySequence<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        WriteChunkHeader(output, data.Length);
        foreach (ReadOnlyMemory<byte> segment in data)
        {
            output.Write(segment.Span);
        }

        WriteChunkEnd(output);
    }

    /// <summary>Writes <c>size CRLF</c>, for callers that send the chunk data themselves (then <see cref="WriteChunkEnd"/>).</summary>
    public static void WriteChunkHeader(IBufferWriter<byte> output, long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Span<byte> span = output.GetSpan(MaxChunkHeaderLength);
        output.Advance(WriteSize(span, size));
    }

    /// <summary>The CRLF that closes a chunk's data.</summary>
    public static void WriteChunkEnd(IBufferWriter<byte> output) => output.Write("\r\n"u8);

    /// <summary>Writes the last chunk, the trailers if any, and the empty line that ends the message.</summary>
    public static void WriteLastChunk(IBufferWriter<byte> output, HttpHeaderMap? trailers = null, HeaderKeyFormat format = HeaderKeyFormat.Default)
    {
        output.Write("0\r\n"u8);
        if (trailers is { Count: > 0 })
        {
            Http1HeadWriter.WriteFields(output, trailers, format);
        }

        output.Write("\r\n"u8);
    }

    private static int WriteSize(Span<byte> span, long size)
    {
        int digits = 1;
        for (long rest = size >> 4; rest != 0; rest >>= 4)
        {
            digits++;
        }

        for (int i = digits - 1; i >= 0; i--)
        {
            span[i] = (byte)"0123456789abcdef"[(int)(size & 0xF)];
            size >>= 4;
        }

        span[digits] = (byte)'\r';
        span[digits + 1] = (byte)'\n';
        return digits + 2;
    }
}
