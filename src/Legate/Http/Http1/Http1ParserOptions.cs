namespace Legate.Http.Http1;

/// <summary>
/// Codec settings, named after the Envoy fields they mirror (<c>HttpConnectionManager</c>,
/// <c>HttpProtocolOptions</c>, <c>Http1ProtocolOptions</c>); defaults are Envoy's defaults.
/// Immutable once built: one instance is shared by every connection of a listener or cluster.
/// </summary>
internal sealed record Http1ParserOptions
{
    /// <summary>Envoy's default <c>max_request_headers_kb</c>.</summary>
    public const int DefaultMaxRequestHeadersKb = 60;

    /// <summary>Envoy's fixed limit for upstream response heads (<c>MAX_RESPONSE_HEADERS_KB</c>).</summary>
    public const int DefaultMaxResponseHeadersKb = 80;

    /// <summary>Envoy's default <c>max_headers_count</c>.</summary>
    public const int DefaultMaxHeadersCount = 100;

    /// <summary>Server side (downstream requests) with Envoy's defaults.</summary>
    public static Http1ParserOptions ServerDefaults { get; } = new();

    /// <summary>Client side (upstream responses) with Envoy's defaults.</summary>
    public static Http1ParserOptions ClientDefaults { get; } = new() { MaxHeadersKb = DefaultMaxResponseHeadersKb };

    /// <summary>
    /// Size limit of a head (start line + header section), and separately of a trailer section, in
    /// KiB: 431 <c>http1.headers_too_large</c> above it. Counted on the raw bytes, as Envoy's Balsa
    /// parser does (so whitespace padding counts too).
    /// </summary>
    public int MaxHeadersKb { get; init; } = DefaultMaxRequestHeadersKb;

    /// <summary>Field count limit of a header or trailer section: 431 <c>http1.too_many_headers</c> above it.</summary>
    public int MaxHeadersCount { get; init; } = DefaultMaxHeadersCount;

    /// <summary><c>headers_with_underscores_action</c>; applies to requests (headers and trailers) only, as in Envoy.</summary>
    public HeadersWithUnderscoresAction HeadersWithUnderscoresAction { get; init; } = HeadersWithUnderscoresAction.Allow;

    /// <summary>
    /// <c>allow_chunked_length</c>: when both Content-Length and <c>Transfer-Encoding: chunked</c>
    /// arrive, use chunked and drop Content-Length instead of answering 400.
    /// </summary>
    public bool AllowChunkedLength { get; init; }

    /// <summary><c>accept_http_10</c>: off by default in Envoy, which answers HTTP/1.0 with 426 <c>low_version</c>.</summary>
    public bool AcceptHttp10 { get; init; }

    /// <summary><c>default_host_for_http_10</c>: the Host given to an HTTP/1.0 request that has none.</summary>
    public string? DefaultHostForHttp10 { get; init; }

    /// <summary>
    /// <c>allow_absolute_url</c> (Envoy default true): accept absolute-form targets, taking Host,
    /// scheme and path from them. When off they are refused (404 <c>absolute_path_rejected</c>, as
    /// Envoy's connection manager does for a path not starting with '/').
    /// </summary>
    public bool AllowAbsoluteUrl { get; init; } = true;

    /// <summary>
    /// <c>allow_custom_methods</c>: accept any token as method. Off (Envoy's default), only the methods
    /// Envoy's HTTP/1 parsers know are accepted, anything else is 400 <c>http1.codec_error</c>.
    /// </summary>
    public bool AllowCustomMethods { get; init; }

    /// <summary>
    /// <c>enable_trailers</c> (Envoy default false): keep chunked trailers. When off, trailers are
    /// still parsed, validated and counted against the limits (they delimit the message) but dropped.
    /// </summary>
    public bool EnableTrailers { get; init; }

    internal int MaxHeadBytes => checked(MaxHeadersKb * 1024);
}
