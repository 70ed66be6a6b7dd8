namespace Legate.Http.Http1;

/// <summary>
/// A codec error: what was wrong (<see cref="Code"/>), the status a server sends back for it and
/// Envoy's <c>%RESPONSE_CODE_DETAILS%</c> string. Errors in upstream responses carry 502, the status
/// a proxy answers downstream with; the details stay the codec's. No allocation: all strings are constants.
/// </summary>
internal readonly struct Http1Error
{
    private Http1Error(Http1ErrorCode code, int statusCode)
    {
        Code = code;
        StatusCode = statusCode;
    }

    public Http1ErrorCode Code { get; }

    /// <summary>The HTTP status to answer with; 0 when there is no error.</summary>
    public int StatusCode { get; }

    public bool IsError => Code != Http1ErrorCode.None;

    /// <summary>Envoy's <c>%RESPONSE_CODE_DETAILS%</c> for this error.</summary>
    public string Details => DetailsOf(Code);

    /// <summary>A short human-readable description, for debug logs.</summary>
    public string Message => MessageOf(Code);

    /// <summary>An error found in a request (server side): status per Envoy's codec.</summary>
    public static Http1Error Request(Http1ErrorCode code) => new(code, RequestStatusOf(code));

    /// <summary>An error found in an upstream response (client side): 502 downstream.</summary>
    public static Http1Error Response(Http1ErrorCode code) => new(code, 502);

    public override string ToString() => IsError ? $"{StatusCode} {Details}: {Message}" : "none";

    private static int RequestStatusOf(Http1ErrorCode code) => code switch
    {
        Http1ErrorCode.None => 0,
        Http1ErrorCode.HeadersTooLarge or Http1ErrorCode.TooManyHeaders => 431,
        Http1ErrorCode.InvalidTransferEncoding => 501,
        Http1ErrorCode.Http10NotAllowed => 426,
        Http1ErrorCode.AbsoluteUrlNotAllowed => 404,
        _ => 400,
    };

    private static string DetailsOf(Http1ErrorCode code) => code switch
    {
        Http1ErrorCode.None => "",
        Http1ErrorCode.Http10NotAllowed => Http1Details.LowVersion,
        Http1ErrorCode.InvalidUrl => Http1Details.InvalidUrl,
        Http1ErrorCode.InvalidScheme => Http1Details.InvalidScheme,
        Http1ErrorCode.AbsoluteUrlNotAllowed => Http1Details.AbsolutePath,
        Http1ErrorCode.ObsoleteLineFolding or Http1ErrorCode.InvalidHeaderValue => Http1Details.InvalidCharacters,
        Http1ErrorCode.HeadersTooLarge => Http1Details.HeadersTooLarge,
        Http1ErrorCode.TooManyHeaders => Http1Details.TooManyHeaders,
        Http1ErrorCode.UnderscoreInHeaderName => Http1Details.UnexpectedUnderscore,
        Http1ErrorCode.MissingHost => Http1Details.MissingHost,
        Http1ErrorCode.InvalidHost => Http1Details.InvalidAuthority,
        Http1ErrorCode.ContentLengthAndChunked => Http1Details.ChunkedContentLength,
        Http1ErrorCode.InvalidTransferEncoding or Http1ErrorCode.TransferEncodingInHttp10 => Http1Details.InvalidTransferEncoding,
        Http1ErrorCode.BodyNotAllowed => Http1Details.BodyDisallowed,
        Http1ErrorCode.TransferEncodingNotAllowed => Http1Details.TransferEncodingNotAllowed,
        Http1ErrorCode.ContentLengthNotAllowed => Http1Details.ContentLengthNotAllowed,
        _ => Http1Details.CodecError,
    };

    private static string MessageOf(Http1ErrorCode code) => code switch
    {
        Http1ErrorCode.None => "no error",
        Http1ErrorCode.InvalidRequestLine => "malformed request line",
        Http1ErrorCode.InvalidMethod => "invalid or unknown method",
        Http1ErrorCode.InvalidRequestTarget => "invalid characters in the request-target",
        Http1ErrorCode.InvalidVersion => "unsupported or malformed HTTP version",
        Http1ErrorCode.Http10NotAllowed => "HTTP/1.0 is not enabled (accept_http_10)",
        Http1ErrorCode.InvalidUrl => "invalid request-target for this method",
        Http1ErrorCode.InvalidScheme => "absolute-form scheme is neither http nor https",
        Http1ErrorCode.AbsoluteUrlNotAllowed => "absolute-form request-target while allow_absolute_url is off",
        Http1ErrorCode.InvalidStatusLine => "malformed status line",
        Http1ErrorCode.InvalidHeaderLine => "header line without a colon",
        Http1ErrorCode.InvalidHeaderName => "header name is not a token",
        Http1ErrorCode.WhitespaceBeforeColon => "whitespace between header name and colon",
        Http1ErrorCode.ObsoleteLineFolding => "obsolete line folding (obs-fold) in the header section",
        Http1ErrorCode.InvalidHeaderValue => "header value contains invalid characters",
        Http1ErrorCode.HeadersTooLarge => "header section exceeds the size limit",
        Http1ErrorCode.TooManyHeaders => "header section exceeds the field count limit",
        Http1ErrorCode.UnderscoreInHeaderName => "header name contains an underscore",
        Http1ErrorCode.MissingHost => "HTTP/1.1 request without Host",
        Http1ErrorCode.InvalidHost => "more than one Host, or an invalid Host value",
        Http1ErrorCode.InvalidContentLength => "Content-Length is not a non-negative decimal integer",
        Http1ErrorCode.MultipleContentLength => "more than one Content-Length",
        Http1ErrorCode.ContentLengthAndChunked => "both Content-Length and Transfer-Encoding",
        Http1ErrorCode.InvalidTransferEncoding => "Transfer-Encoding other than exactly chunked",
        Http1ErrorCode.TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 message",
        Http1ErrorCode.BodyNotAllowed => "CONNECT request with a body",
        Http1ErrorCode.TransferEncodingNotAllowed => "Transfer-Encoding in a 1xx or 204 response",
        Http1ErrorCode.ContentLengthNotAllowed => "non-zero Content-Length in a 1xx or 204 response",
        Http1ErrorCode.UnexpectedSwitchingProtocols => "101 response to a request that asked for no upgrade",
        Http1ErrorCode.InvalidChunkSize => "invalid or overflowing chunk size",
        Http1ErrorCode.InvalidChunkFraming => "invalid chunk framing (CRLF expected)",
        Http1ErrorCode.ChunkHeaderTooLong => "chunk size line (with extensions) too long",
        Http1ErrorCode.PrematureEndOfMessage => "connection closed before the message was complete",
        _ => code.ToString(),
    };
}
