using System.Buffers;

namespace Legate.Http.Http1;

/// <summary>
/// The client side of the HTTP/1.1 codec: parses upstream response heads. The framing of a
/// response depends on the request it answers (HEAD, CONNECT, Upgrade), so the caller says which.
/// </summary>
/// <remarks>
/// 1xx responses other than 101 come back as separate heads (<see cref="HttpResponseHead.IsInformational"/>)
/// with no body; call again for the final response. Same PipeReader contract and allocation profile
/// as <see cref="Http1RequestParser"/>. Errors carry status 502 (what the proxy answers downstream).
/// </remarks>
internal sealed class Http1ResponseParser
{
    private readonly Http1ParserOptions _options;
    private HeadScanner _scanner;

    public Http1ResponseParser(Http1ParserOptions options)
    {
        _options = options;
    }

    public Http1ParserOptions Options => _options;

    public void Reset() => _scanner.Reset();

    /// <summary>
    /// Parses one response head. <paramref name="requestMethod"/> and <paramref name="requestWasUpgrade"/>
    /// describe the request this response answers.
    /// </summary>
    public Http1ParseStatus ParseHead(
        in ReadOnlySequence<byte> buffer,
        HttpResponseHead head,
        HttpMethodKind requestMethod,
        bool requestWasUpgrade,
        out long consumed,
        out Http1Error error)
    {
        consumed = 0;
        error = default;
        switch (_scanner.Take(buffer, _options.MaxHeadBytes, out long end, out ReadOnlySequence<byte> raw))
        {
            case HeadScanResult.NeedMoreData:
                return Http1ParseStatus.NeedMoreData;
            case HeadScanResult.TooLarge:
                error = Http1Error.Response(Http1ErrorCode.HeadersTooLarge);
                return Http1ParseStatus.Error;
        }

        consumed = end;
        head.Reset();
        int rawStart = head.Headers.AppendRaw(raw);
        Http1ErrorCode code = Parse(head, rawStart, rawStart + (int)raw.Length, requestMethod, requestWasUpgrade);
        if (code != Http1ErrorCode.None)
        {
            error = Http1Error.Response(code);
            return Http1ParseStatus.Error;
        }

        return Http1ParseStatus.Complete;
    }

    private Http1ErrorCode Parse(HttpResponseHead head, int rawStart, int rawEnd, HttpMethodKind requestMethod, bool requestWasUpgrade)
    {
        HttpHeaderMap headers = head.Headers;
        ReadOnlySpan<byte> raw = headers.ArenaSpan(rawStart, rawEnd - rawStart);
        int lf = raw.IndexOf((byte)'\n');
        int lineEnd = lf > 0 && raw[lf - 1] == (byte)'\r' ? lf - 1 : lf;
        if (!TryParseStatusLine(raw[..lineEnd], head))
        {
            return Http1ErrorCode.InvalidStatusLine;
        }

        // Envoy applies headers_with_underscores_action to requests only.
        int dropped = 0;
        Http1ErrorCode code = HeaderFieldParser.ParseSection(
            headers, rawStart + lf + 1, rawEnd, HeadersWithUnderscoresAction.Allow, _options.MaxHeadersCount, ref dropped);
        if (code != Http1ErrorCode.None)
        {
            return code;
        }

        return ApplyFraming(head, requestMethod, requestWasUpgrade);
    }

    /// <summary>
    /// HTTP-version SP 3DIGIT [SP reason-phrase]. The SP before an empty reason is optional here:
    /// servers that send "HTTP/1.1 200" exist and the status code is unambiguous. The reason phrase
    /// is HTAB / SP / VCHAR / obs-text (RFC 9112 §4).
    /// </summary>
    private static bool TryParseStatusLine(ReadOnlySpan<byte> line, HttpResponseHead head)
    {
        if (line.Length < 12 || line[8] != (byte)' ' ||
            !Http1RequestParser.TryParseVersion(line[..8], out Http1Version version))
        {
            return false;
        }

        ReadOnlySpan<byte> digits = line.Slice(9, 3);
        if (digits[0] is < (byte)'1' or > (byte)'9' ||
            digits[1..].IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0)
        {
            return false;
        }

        ReadOnlySpan<byte> reason = default;
        if (line.Length > 12)
        {
            if (line[12] != (byte)' ')
            {
                return false;
            }

            reason = line[13..];
            if (!HttpChars.IsValidFieldValue(reason))
            {
                return false;
            }
        }

        head.Version = version;
        head.StatusCode = ((digits[0] - '0') * 100) + ((digits[1] - '0') * 10) + (digits[2] - '0');
        head.SetReason(reason);
        return true;
    }

    /// <summary>
    /// Response framing, RFC 9112 §6.3 with Envoy's checks: Content-Length syntax, Content-Length with
    /// Transfer-Encoding (error unless allow_chunked_length), only "chunked" as transfer coding, no
    /// Transfer-Encoding and no non-zero Content-Length on 1xx/204 (a zero one is dropped); then no
    /// body for HEAD, 1xx, 204 and 304; a tunnel after 101 to an Upgrade or 2xx to CONNECT; else
    /// chunked, Content-Length, or read until close.
    /// </summary>
    private Http1ErrorCode ApplyFraming(HttpResponseHead head, HttpMethodKind requestMethod, bool requestWasUpgrade)
    {
        HttpHeaderMap headers = head.Headers;
        int status = head.StatusCode;
        bool http11 = head.Version == Http1Version.Http11;

        Http1ErrorCode code = FramingHeaders.ReadContentLength(headers, out long contentLength, out _);
        if (code != Http1ErrorCode.None)
        {
            return code;
        }

        TransferCoding coding = FramingHeaders.ReadTransferEncoding(headers);
        if (coding != TransferCoding.Absent && contentLength >= 0)
        {
            if (coding != TransferCoding.Chunked || !_options.AllowChunkedLength)
            {
                return Http1ErrorCode.ContentLengthAndChunked;
            }

            headers.Remove(KnownHeader.ContentLength);
            contentLength = -1;
        }

        if (coding == TransferCoding.Unsupported)
        {
            return Http1ErrorCode.InvalidTransferEncoding;
        }

        if (coding == TransferCoding.Chunked && !http11)
        {
            return Http1ErrorCode.TransferEncodingInHttp10;
        }

        if (status < 200 || status == 204)
        {
            if (coding != TransferCoding.Absent)
            {
                return Http1ErrorCode.TransferEncodingNotAllowed;
            }

            if (contentLength > 0)
            {
                return Http1ErrorCode.ContentLengthNotAllowed;
            }

            if (contentLength == 0)
            {
                headers.Remove(KnownHeader.ContentLength);
                contentLength = -1;
            }
        }

        ConnectionOptions connection = ConnectionTokens.Read(headers);
        head.KeepAlive = (connection & ConnectionOptions.Close) == 0 &&
            (http11 || (connection & ConnectionOptions.KeepAlive) != 0);

        if (status == 101)
        {
            if (!requestWasUpgrade)
            {
                return Http1ErrorCode.UnexpectedSwitchingProtocols;
            }

            SetFraming(head, Http1BodyFraming.Tunnel, -1);
        }
        else if (status < 200)
        {
            SetFraming(head, Http1BodyFraming.None, -1);
            head.KeepAlive = true;
        }
        else if (requestMethod == HttpMethodKind.Connect && status < 300)
        {
            SetFraming(head, Http1BodyFraming.Tunnel, -1);
        }
        else if (requestMethod == HttpMethodKind.Head || status == 204 || status == 304)
        {
            // The Content-Length of a HEAD or 304 response describes the representation, not a body.
            SetFraming(head, Http1BodyFraming.None, contentLength);
        }
        else if (coding == TransferCoding.Chunked)
        {
            SetFraming(head, Http1BodyFraming.Chunked, -1);
        }
        else if (contentLength >= 0)
        {
            SetFraming(head, contentLength == 0 ? Http1BodyFraming.None : Http1BodyFraming.ContentLength, contentLength);
        }
        else
        {
            SetFraming(head, Http1BodyFraming.CloseDelimited, -1);
        }

        return Http1ErrorCode.None;
    }

    private static void SetFraming(HttpResponseHead head, Http1BodyFraming framing, long contentLength)
    {
        head.Framing = framing;
        head.ContentLength = contentLength;
        if (framing is Http1BodyFraming.Tunnel or Http1BodyFraming.CloseDelimited)
        {
            head.KeepAlive = false;
        }
    }
}
