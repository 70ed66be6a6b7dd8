using System.Buffers;
using System.Text;

namespace Legate.Http.Http1;

/// <summary>
/// The server side of the HTTP/1.1 codec: parses request heads from downstream bytes, hardened
/// against request smuggling, with Envoy's behaviour and response code details.
/// </summary>
/// <remarks>
/// <para>
/// Use with a PipeReader: <c>ParseHead(buffer, head, out consumed, out error)</c>; on
/// <see cref="Http1ParseStatus.NeedMoreData"/> call <c>AdvanceTo(buffer.Start, buffer.End)</c> and
/// call again with the grown buffer (the parser remembers how far it looked); on
/// <see cref="Http1ParseStatus.Complete"/> advance by <c>consumed</c> and read the body with an
/// <see cref="Http1BodyReader"/> started from the head. One parser per connection.
/// </para>
/// <para>
/// Allocation: none per request in the steady state for known methods and headers. The head's
/// bytes are copied once into the head's header arena (reused), fields are offsets into it. What
/// still allocates: a custom method string (only with <c>allow_custom_methods</c>), header value or
/// unknown-name strings when a caller asks for them, <see cref="HttpRequestHead.Path"/> as a string,
/// rewriting Connection for h2c, and arena growth on an unusually large head.
/// </para>
/// </remarks>
internal sealed class Http1RequestParser
{
    private readonly Http1ParserOptions _options;
    private HeadScanner _scanner;

    public Http1RequestParser(Http1ParserOptions options)
    {
        _options = options;
    }

    public Http1ParserOptions Options => _options;

    /// <summary>Forgets a partially scanned head (a new connection, or after an error).</summary>
    public void Reset() => _scanner.Reset();

    /// <summary>
    /// Parses one request head from the start of <paramref name="buffer"/> into <paramref name="head"/>.
    /// Never throws on bad input: every problem comes back as <see cref="Http1ParseStatus.Error"/>.
    /// </summary>
    public Http1ParseStatus ParseHead(in ReadOnlySequence<byte> buffer, HttpRequestHead head, out long consumed, out Http1Error error)
    {
        consumed = 0;
        error = default;
        switch (_scanner.Take(buffer, _options.MaxHeadBytes, out long end, out ReadOnlySequence<byte> raw))
        {
            case HeadScanResult.NeedMoreData:
                return Http1ParseStatus.NeedMoreData;
            case HeadScanResult.TooLarge:
                error = Http1Error.Request(Http1ErrorCode.HeadersTooLarge);
                return Http1ParseStatus.Error;
        }

        consumed = end;
        head.Reset();
        int rawStart = head.Headers.AppendRaw(raw);
        Http1ErrorCode code = Parse(head, rawStart, rawStart + (int)raw.Length);
        if (code != Http1ErrorCode.None)
        {
            error = Http1Error.Request(code);
            return Http1ParseStatus.Error;
        }

        return Http1ParseStatus.Complete;
    }

    private Http1ErrorCode Parse(HttpRequestHead head, int rawStart, int rawEnd)
    {
        HttpHeaderMap headers = head.Headers;

        // The request line: the scanner guarantees an LF and a non-empty first line.
        ReadOnlySpan<byte> raw = headers.ArenaSpan(rawStart, rawEnd - rawStart);
        int lf = raw.IndexOf((byte)'\n');
        int lineEnd = lf > 0 && raw[lf - 1] == (byte)'\r' ? lf - 1 : lf;
        Http1ErrorCode code = ParseRequestLine(raw[..lineEnd], head, out int targetOffset, out int targetLength);
        if (code != Http1ErrorCode.None)
        {
            return code;
        }

        int dropped = 0;
        code = HeaderFieldParser.ParseSection(
            headers, rawStart + lf + 1, rawEnd, _options.HeadersWithUnderscoresAction, _options.MaxHeadersCount, ref dropped);
        head.DroppedHeadersWithUnderscores = dropped;
        if (code != Http1ErrorCode.None)
        {
            return code;
        }

        // The raw bytes stay valid even if the arena grows below: the old array is not reused.
        ReadOnlySpan<byte> target = raw.Slice(targetOffset, targetLength);
        code = ApplyFraming(head);
        if (code != Http1ErrorCode.None)
        {
            return code;
        }

        code = ApplyTarget(head, target);
        if (code != Http1ErrorCode.None)
        {
            return code;
        }

        if (head.Version == Http1Version.Http10 && !_options.AcceptHttp10)
        {
            return Http1ErrorCode.Http10NotAllowed;
        }

        return ApplyHost(head);
    }

    /// <summary>
    /// method SP request-target SP HTTP-version, with exactly one SP between the parts: RFC 9112 §3
    /// says a recipient of an invalid request line MUST NOT try to autocorrect it, and parsers that
    /// split on "any whitespace" disagree with each other (Balsa accepts several spaces; we refuse).
    /// </summary>
    private Http1ErrorCode ParseRequestLine(ReadOnlySpan<byte> line, HttpRequestHead head, out int targetOffset, out int targetLength)
    {
        targetOffset = 0;
        targetLength = 0;
        int sp1 = line.IndexOf((byte)' ');
        if (sp1 <= 0)
        {
            return sp1 == 0 ? Http1ErrorCode.InvalidRequestLine : MethodOrLineError(line);
        }

        ReadOnlySpan<byte> method = line[..sp1];
        int sp2 = line[(sp1 + 1)..].IndexOf((byte)' ');
        if (sp2 <= 0)
        {
            // No version (HTTP/0.9 style) or two spaces in a row.
            return Http1ErrorCode.InvalidRequestLine;
        }

        sp2 += sp1 + 1;
        ReadOnlySpan<byte> target = line[(sp1 + 1)..sp2];
        ReadOnlySpan<byte> version = line[(sp2 + 1)..];
        if (version.Contains((byte)' '))
        {
            return Http1ErrorCode.InvalidRequestLine;
        }

        if (HttpMethods.TryGetKnown(method, out string name, out HttpMethodKind kind))
        {
            head.Method = name;
            head.MethodKind = kind;
        }
        else if (_options.AllowCustomMethods && HttpChars.IsToken(method))
        {
            head.Method = Encoding.ASCII.GetString(method);
            head.MethodKind = HttpMethodKind.Other;
        }
        else
        {
            return Http1ErrorCode.InvalidMethod;
        }

        if (!HttpChars.IsValidTarget(target))
        {
            return Http1ErrorCode.InvalidRequestTarget;
        }

        if (!TryParseVersion(version, out Http1Version parsed))
        {
            return Http1ErrorCode.InvalidVersion;
        }

        head.Version = parsed;
        targetOffset = sp1 + 1;
        targetLength = target.Length;
        return Http1ErrorCode.None;
    }

    private static Http1ErrorCode MethodOrLineError(ReadOnlySpan<byte> line)
        => HttpChars.IsToken(line) ? Http1ErrorCode.InvalidRequestLine : Http1ErrorCode.InvalidMethod;

    /// <summary>
    /// "HTTP/1.0" or "HTTP/1.1" (case-sensitive, RFC 9112 §2.3). A higher 1.x minor is served as 1.1
    /// (RFC 9110 §2.5: same major version, the recipient uses the highest minor it supports).
    /// Anything else, including HTTP/0.9 (no version) and HTTP/2.0 over this codec, is refused.
    /// </summary>
    internal static bool TryParseVersion(ReadOnlySpan<byte> version, out Http1Version parsed)
    {
        parsed = Http1Version.Http11;
        if (version.Length != 8 || !version.StartsWith("HTTP/1."u8) || !char.IsAsciiDigit((char)version[7]))
        {
            return false;
        }

        parsed = version[7] == (byte)'0' ? Http1Version.Http10 : Http1Version.Http11;
        return true;
    }

    /// <summary>
    /// Connection options, upgrade and the body framing, in Envoy's order: Content-Length syntax,
    /// CONNECT and its body, Content-Length with Transfer-Encoding, the transfer coding itself.
    /// </summary>
    private Http1ErrorCode ApplyFraming(HttpRequestHead head)
    {
        HttpHeaderMap headers = head.Headers;
        bool http11 = head.Version == Http1Version.Http11;
        bool isConnect = head.MethodKind == HttpMethodKind.Connect;
        ConnectionOptions connection = ConnectionTokens.Read(headers);

        // Upgrade needs both the Upgrade field and the "upgrade" Connection option (RFC 9110 §7.8),
        // and is ignored on HTTP/1.0 (a server MUST ignore Upgrade received in an HTTP/1.0 request).
        // h2c is not supported: like Envoy, strip it and serve the request as HTTP/1.1.
        if (http11 && !isConnect && (connection & ConnectionOptions.Upgrade) != 0 &&
            headers.TryGetValue(KnownHeader.Upgrade, out ReadOnlySpan<byte> upgrade))
        {
            if (Ascii.EqualsIgnoreCase(upgrade, "h2c"u8))
            {
                headers.Remove(KnownHeader.Upgrade);
                headers.Remove(KnownHeader.Http2Settings);
                ConnectionTokens.RemoveH2cTokens(headers);
                connection &= ~ConnectionOptions.Upgrade;
            }
            else
            {
                head.IsUpgrade = true;
            }
        }

        Http1ErrorCode code = FramingHeaders.ReadContentLength(headers, out long contentLength, out _);
        if (code != Http1ErrorCode.None)
        {
            return code;
        }

        TransferCoding coding = FramingHeaders.ReadTransferEncoding(headers);

        // RFC 9110 §9.3.6: a CONNECT body has no defined semantics. Envoy drops "Content-Length: 0"
        // and refuses any other length.
        if (isConnect && contentLength >= 0)
        {
            if (contentLength != 0)
            {
                return Http1ErrorCode.BodyNotAllowed;
            }

            headers.Remove(KnownHeader.ContentLength);
            contentLength = -1;
        }

        // RFC 9112 §6.3: both framings at once "ought to be handled as an error" (smuggling);
        // Envoy answers 400 unless allow_chunked_length, and then only a chunked TE wins.
        if (coding != TransferCoding.Absent && contentLength >= 0)
        {
            if (coding != TransferCoding.Chunked || !_options.AllowChunkedLength)
            {
                return Http1ErrorCode.ContentLengthAndChunked;
            }

            headers.Remove(KnownHeader.ContentLength);
            contentLength = -1;
        }

        if (coding == TransferCoding.Unsupported || (coding == TransferCoding.Chunked && isConnect))
        {
            return Http1ErrorCode.InvalidTransferEncoding;
        }

        // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
        if (coding == TransferCoding.Chunked && !http11)
        {
            return Http1ErrorCode.TransferEncodingInHttp10;
        }

        if (isConnect || head.IsUpgrade)
        {
            head.Framing = Http1BodyFraming.Tunnel;
            head.ContentLength = -1;
        }
        else if (coding == TransferCoding.Chunked)
        {
            head.Framing = Http1BodyFraming.Chunked;
        }
        else if (contentLength > 0)
        {
            head.Framing = Http1BodyFraming.ContentLength;
            head.ContentLength = contentLength;
        }
        else
        {
            head.Framing = Http1BodyFraming.None;
            head.ContentLength = contentLength;
        }

        head.KeepAlive = head.Framing != Http1BodyFraming.Tunnel &&
            (connection & ConnectionOptions.Close) == 0 &&
            (http11 || (connection & ConnectionOptions.KeepAlive) != 0);

        head.ExpectContinue = http11 && headers.TryGetValue(KnownHeader.Expect, out ReadOnlySpan<byte> expect) &&
            Ascii.EqualsIgnoreCase(expect, "100-continue"u8);
        return Http1ErrorCode.None;
    }

    /// <summary>
    /// The request-target forms (RFC 9112 §3.2) and Envoy's <c>:path</c>, <c>:scheme</c> and Host.
    /// A fragment ('#') is refused in every form: it is not part of a request-target.
    /// </summary>
    private Http1ErrorCode ApplyTarget(HttpRequestHead head, ReadOnlySpan<byte> target)
    {
        if (target.Contains((byte)'#'))
        {
            return Http1ErrorCode.InvalidUrl;
        }

        if (head.MethodKind == HttpMethodKind.Connect)
        {
            // authority-form, host ":" port, and the only form CONNECT may use (§3.2.3). Its
            // authority replaces any Host field, as Envoy does.
            if (!IsAuthorityForm(target))
            {
                return Http1ErrorCode.InvalidUrl;
            }

            head.TargetForm = RequestTargetForm.Authority;
            head.Headers.Set(KnownHeader.Host, target);
            return Http1ErrorCode.None;
        }

        if (target[0] == (byte)'/')
        {
            head.TargetForm = RequestTargetForm.Origin;
            head.SetPath(target);
            return Http1ErrorCode.None;
        }

        if (target.SequenceEqual("*"u8))
        {
            // asterisk-form is for a server-wide OPTIONS only (§3.2.4).
            if (head.MethodKind != HttpMethodKind.Options)
            {
                return Http1ErrorCode.InvalidUrl;
            }

            head.TargetForm = RequestTargetForm.Asterisk;
            head.SetPath(target);
            return Http1ErrorCode.None;
        }

        if (!_options.AllowAbsoluteUrl)
        {
            return Http1ErrorCode.AbsoluteUrlNotAllowed;
        }

        return ApplyAbsoluteForm(head, target);
    }

    /// <summary>
    /// absolute-form: scheme "://" authority [path-abempty] ["?" query]. RFC 9112 §3.2.2 and §7.2:
    /// the Host field is replaced by the target's authority (a proxy MUST ignore the received Host),
    /// as Envoy does; <c>:scheme</c> is the lowercased scheme, which must be http or https
    /// (<c>http1.invalid_scheme</c>); <c>:path</c> is the path and query, "/" when the path is empty.
    /// No userinfo ('@'), and a non-empty authority.
    /// </summary>
    private static Http1ErrorCode ApplyAbsoluteForm(HttpRequestHead head, ReadOnlySpan<byte> target)
    {
        int schemeEnd = target.IndexOf("://"u8);
        if (schemeEnd <= 0 || !char.IsAsciiLetter((char)target[0]) ||
            target[1..schemeEnd].IndexOfAnyExcept(HttpChars.SchemeTail) >= 0)
        {
            return Http1ErrorCode.InvalidUrl;
        }

        ReadOnlySpan<byte> scheme = target[..schemeEnd];
        ReadOnlySpan<byte> rest = target[(schemeEnd + 3)..];
        int pathStart = rest.IndexOfAny((byte)'/', (byte)'?');
        ReadOnlySpan<byte> authority = pathStart < 0 ? rest : rest[..pathStart];
        if (authority.IsEmpty || authority.IndexOfAnyExcept(HttpChars.Authority) >= 0)
        {
            return Http1ErrorCode.InvalidUrl;
        }

        if (Ascii.EqualsIgnoreCase(scheme, "http"u8))
        {
            head.Scheme = "http";
        }
        else if (Ascii.EqualsIgnoreCase(scheme, "https"u8))
        {
            head.Scheme = "https";
        }
        else
        {
            return Http1ErrorCode.InvalidScheme;
        }

        ReadOnlySpan<byte> path = pathStart < 0 ? default : rest[pathStart..];
        if (path.IsEmpty)
        {
            head.SetPath("/"u8);
        }
        else if (path[0] == (byte)'?')
        {
            Span<byte> withSlash = path.Length < 1024 ? stackalloc byte[path.Length + 1] : new byte[path.Length + 1];
            withSlash[0] = (byte)'/';
            path.CopyTo(withSlash[1..]);
            head.SetPath(withSlash);
        }
        else
        {
            head.SetPath(path);
        }

        head.TargetForm = RequestTargetForm.Absolute;
        head.Headers.Set(KnownHeader.Host, authority);
        return Http1ErrorCode.None;
    }

    /// <summary>host ":" port with a non-empty host and a decimal port (CONNECT needs the port).</summary>
    private static bool IsAuthorityForm(ReadOnlySpan<byte> target)
    {
        int colon = target.LastIndexOf((byte)':');
        if (colon <= 0 || colon == target.Length - 1 || target.IndexOfAnyExcept(HttpChars.Authority) >= 0)
        {
            return false;
        }

        ReadOnlySpan<byte> port = target[(colon + 1)..];
        if (port.Length > 5 || port.IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0)
        {
            return false;
        }

        // An IPv6 literal must be bracketed: "[::1]:443", not "::1:443".
        ReadOnlySpan<byte> host = target[..colon];
        return host[0] == (byte)'[' ? host[^1] == (byte)']' : !host.Contains((byte)':');
    }

    /// <summary>
    /// RFC 9112 §3.2: an HTTP/1.1 request without Host, or any request with more than one Host or an
    /// invalid one, gets 400. HTTP/1.0 without Host takes <c>default_host_for_http_10</c> when set,
    /// else 400 as in Envoy's connection manager (it cannot route without an authority). An empty
    /// Host value is allowed (RFC 9110 §7.2 has clients send it for targets without authority);
    /// routing then finds no virtual host unless a "*" domain exists.
    /// </summary>
    private Http1ErrorCode ApplyHost(HttpRequestHead head)
    {
        if (head.TargetForm is RequestTargetForm.Absolute or RequestTargetForm.Authority)
        {
            // Host was replaced from the target and validated with it.
            return Http1ErrorCode.None;
        }

        HttpHeaderMap headers = head.Headers;
        int host = headers.IndexOf(KnownHeader.Host);
        if (host < 0)
        {
            if (head.Version == Http1Version.Http10 && _options.DefaultHostForHttp10 is { Length: > 0 } defaultHost)
            {
                headers.Add(KnownHeader.Host, defaultHost);
                return Http1ErrorCode.None;
            }

            return Http1ErrorCode.MissingHost;
        }

        if (headers.IndexOf(KnownHeader.Host, host + 1) >= 0 ||
            headers.GetValueBytes(host).IndexOfAnyExcept(HttpChars.Authority) >= 0)
        {
            return Http1ErrorCode.InvalidHost;
        }

        return Http1ErrorCode.None;
    }
}
