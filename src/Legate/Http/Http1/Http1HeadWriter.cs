using System.Buffers;
using System.Text;

namespace Legate.Http.Http1;

/// <summary>
/// Writes request and response heads straight into an <see cref="IBufferWriter{T}"/>: the exact
/// size is computed first, then one span is filled, so there is no intermediate string or buffer.
/// </summary>
/// <remarks>
/// The writer emits the header map as it is: removing hop-by-hop fields and choosing the framing
/// header (Content-Length or <c>transfer-encoding: chunked</c>) is the caller's decision, made before
/// writing. Values in a map were validated when they entered it (parsed or added), so nothing here
/// can inject a line break.
/// </remarks>
internal static class Http1HeadWriter
{
    private const int CrLfLength = 2;

    /// <summary>
    /// Writes <c>method SP target SP HTTP/1.x CRLF</c>, the fields and the empty line. Envoy always
    /// speaks HTTP/1.1 upstream; <paramref name="version"/> exists for tests and local clients.
    /// </summary>
    public static void WriteRequestHead(
        IBufferWriter<byte> output,
        ReadOnlySpan<byte> method,
        ReadOnlySpan<byte> target,
        HttpHeaderMap headers,
        HeaderKeyFormat format = HeaderKeyFormat.Default,
        Http1Version version = Http1Version.Http11)
    {
        int size = method.Length + 1 + target.Length + 1 + 8 + CrLfLength + FieldsSize(headers) + CrLfLength;
        Span<byte> span = output.GetSpan(size);
        int pos = 0;
        method.CopyTo(span);
        pos += method.Length;
        span[pos++] = (byte)' ';
        target.CopyTo(span[pos..]);
        pos += target.Length;
        span[pos++] = (byte)' ';
        WriteVersion(span[pos..], version);
        pos += 8;
        pos = WriteCrLf(span, pos);
        pos = WriteFields(span, pos, headers, format);
        pos = WriteCrLf(span, pos);
        output.Advance(pos);
    }

    /// <summary>
    /// Writes a request head from a <see cref="HttpRequestHead"/>: the target is the path, or for
    /// CONNECT the authority (Host), as Envoy's encoder does.
    /// </summary>
    public static void WriteRequestHead(IBufferWriter<byte> output, HttpRequestHead head, HeaderKeyFormat format = HeaderKeyFormat.Default)
    {
        ReadOnlySpan<byte> target = head.MethodKind == HttpMethodKind.Connect ? head.Authority : head.PathBytes;
        string method = head.Method;
        Span<byte> methodBytes = method.Length <= 64 ? stackalloc byte[method.Length] : new byte[method.Length];
        Encoding.ASCII.GetBytes(method, methodBytes);
        WriteRequestHead(output, methodBytes, target, head.Headers, format, head.Version);
    }

    /// <summary>
    /// Writes <c>HTTP/1.x SP code SP reason CRLF</c>, the fields and the empty line. An empty
    /// <paramref name="reason"/> writes the standard phrase for the code (Envoy never forwards the
    /// upstream's reason phrase).
    /// </summary>
    public static void WriteResponseHead(
        IBufferWriter<byte> output,
        int statusCode,
        HttpHeaderMap headers,
        HeaderKeyFormat format = HeaderKeyFormat.Default,
        Http1Version version = Http1Version.Http11,
        ReadOnlySpan<byte> reason = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(statusCode, 100);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(statusCode, 999);
        if (reason.IsEmpty)
        {
            reason = ReasonPhrases.Get(statusCode);
        }
        else if (!HttpChars.IsValidFieldValue(reason))
        {
            throw new ArgumentException("A reason phrase may not contain CTL characters.", nameof(reason));
        }

        int size = 8 + 1 + 3 + 1 + reason.Length + CrLfLength + FieldsSize(headers) + CrLfLength;
        Span<byte> span = output.GetSpan(size);
        WriteVersion(span, version);
        int pos = 8;
        span[pos++] = (byte)' ';
        span[pos++] = (byte)('0' + (statusCode / 100));
        span[pos++] = (byte)('0' + (statusCode / 10 % 10));
        span[pos++] = (byte)('0' + (statusCode % 10));
        span[pos++] = (byte)' ';
        reason.CopyTo(span[pos..]);
        pos += reason.Length;
        pos = WriteCrLf(span, pos);
        pos = WriteFields(span, pos, headers, format);
        pos = WriteCrLf(span, pos);
        output.Advance(pos);
    }

    /// <summary>Writes a response head from a <see cref="HttpResponseHead"/> (standard reason phrase).</summary>
    public static void WriteResponseHead(IBufferWriter<byte> output, HttpResponseHead head, HeaderKeyFormat format = HeaderKeyFormat.Default)
        => WriteResponseHead(output, head.StatusCode, head.Headers, format, head.Version);

    /// <summary>Writes just the field lines (no empty line): used for trailers.</summary>
    public static void WriteFields(IBufferWriter<byte> output, HttpHeaderMap headers, HeaderKeyFormat format)
    {
        int size = FieldsSize(headers);
        if (size == 0)
        {
            return;
        }

        Span<byte> span = output.GetSpan(size);
        output.Advance(WriteFields(span, 0, headers, format));
    }

    internal static int FieldsSize(HttpHeaderMap headers)
    {
        int size = 0;
        for (int i = 0; i < headers.Count; i++)
        {
            size += headers.GetNameBytes(i).Length + 2 + headers.GetValueBytes(i).Length + CrLfLength;
        }

        return size;
    }

    private static int WriteFields(Span<byte> span, int pos, HttpHeaderMap headers, HeaderKeyFormat format)
    {
        for (int i = 0; i < headers.Count; i++)
        {
            pos += WriteName(span[pos..], headers, i, format);
            span[pos++] = (byte)':';
            span[pos++] = (byte)' ';
            ReadOnlySpan<byte> value = headers.GetValueBytes(i);
            value.CopyTo(span[pos..]);
            pos += value.Length;
            pos = WriteCrLf(span, pos);
        }

        return pos;
    }

    private static int WriteName(Span<byte> destination, HttpHeaderMap headers, int index, HeaderKeyFormat format)
    {
        KnownHeader known = headers.GetKnown(index);
        ReadOnlySpan<byte> name = format == HeaderKeyFormat.Default && known != KnownHeader.None
            ? KnownHeaders.GetNameBytes(known)
            : headers.GetNameBytes(index);
        name.CopyTo(destination);
        Span<byte> written = destination[..name.Length];
        switch (format)
        {
            case HeaderKeyFormat.Default:
                if (known == KnownHeader.None)
                {
                    ToLower(written);
                }

                break;
            case HeaderKeyFormat.ProperCaseWords:
                ToProperCase(written);
                break;
            case HeaderKeyFormat.PreserveCase:
                break;
        }

        return name.Length;
    }

    private static void ToLower(Span<byte> name)
    {
        for (int i = 0; i < name.Length; i++)
        {
            if (name[i] is >= (byte)'A' and <= (byte)'Z')
            {
                name[i] |= 0x20;
            }
        }
    }

    /// <summary>Envoy's proper_case_words on the lowercase name: capitalise letters that start the name or follow a non-alphanumeric.</summary>
    private static void ToProperCase(Span<byte> name)
    {
        bool capitalize = true;
        for (int i = 0; i < name.Length; i++)
        {
            byte b = name[i];
            bool letter = (uint)((b | 0x20) - 'a') <= 'z' - 'a';
            if (letter)
            {
                name[i] = capitalize ? (byte)(b & ~0x20) : (byte)(b | 0x20);
            }

            capitalize = !letter && !char.IsAsciiDigit((char)b);
        }
    }

    private static void WriteVersion(Span<byte> span, Http1Version version)
    {
        (version == Http1Version.Http10 ? "HTTP/1.0"u8 : "HTTP/1.1"u8).CopyTo(span);
    }

    private static int WriteCrLf(Span<byte> span, int pos)
    {
        span[pos] = (byte)'\r';
        span[pos + 1] = (byte)'\n';
        return pos + 2;
    }
}
