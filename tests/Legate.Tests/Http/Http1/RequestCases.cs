using Legate.Http.Http1;

namespace Legate.Tests.Http.Http1;

/// <summary>One downstream input and what the server codec must make of its first message.</summary>
/// <param name="Status">0: parses (head and body); otherwise the error status.</param>
/// <param name="Details">Envoy's response code details for the error.</param>
public sealed record RequestCase(string Name, string Raw, int Status = 0, string? Details = null)
{
    internal Http1ParserOptions Options { get; init; } = Http1ParserOptions.ServerDefaults;

    public override string ToString() => Name;
}

/// <summary>
/// The table of valid and invalid requests, smuggling vectors included. Each invalid case names the
/// exact status and details, so a change of behaviour shows up as a failing row.
/// </summary>
public static class RequestCases
{
    private static readonly Http1ParserOptions Http10 = Http1ParserOptions.ServerDefaults with { AcceptHttp10 = true };

    public static IEnumerable<RequestCase> Valid =>
    [
        new("simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        new("query string", "GET /p/q?x=1&y=%20 HTTP/1.1\r\nHost: a.example\r\n\r\n"),
        new("content-length body", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"),
        new("content-length zero", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
        new("content-length leading zeros", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\nhello"),
        new("chunked body", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        new("chunked uppercase hex", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"),
        new("chunked size with leading zeros", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n000\r\n\r\n"),
        new("chunk extensions ignored", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value;q=\"a b\"\r\nhello\r\n0;last\r\n\r\n"),
        new("chunk extension after whitespace", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \t;ext\r\nhello\r\n0\r\n\r\n"),
        new("chunked with trailers", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n")
        {
            Options = Http1ParserOptions.ServerDefaults with { EnableTrailers = true },
        },
        new("chunked trailers dropped when disabled", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"),
        new("chunked on GET", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        new("TE value any case", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n"),
        new("TE with tab OWS both sides", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\t\r\n\r\n0\r\n\r\n"),
        new("TE ' chunked' is OWS, not obfuscation", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:   chunked\r\n\r\n0\r\n\r\n"),
        new("allow_chunked_length: chunked wins, CL dropped", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        {
            Options = Http1ParserOptions.ServerDefaults with { AllowChunkedLength = true },
        },
        new("HTTP/1.0 when accepted", "GET / HTTP/1.0\r\nHost: a\r\n\r\n") { Options = Http10 },
        new("HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n") { Options = Http10 },
        new("HTTP/1.0 default host", "GET / HTTP/1.0\r\n\r\n") { Options = Http10 with { DefaultHostForHttp10 = "default.example" } },
        new("HTTP/1.x minor above 1 served as 1.1", "GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
        new("Connection: close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        new("Connection list with close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n"),
        new("OPTIONS asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
        new("CONNECT authority-form", "CONNECT example.com:443 HTTP/1.1\r\n\r\n"),
        new("CONNECT IPv6 literal", "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"),
        new("CONNECT with Content-Length: 0 (dropped)", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nContent-Length: 0\r\n\r\n"),
        new("absolute-form overrides Host", "GET http://example.com:8080/p?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n"),
        new("absolute-form without path or Host", "GET http://example.com HTTP/1.1\r\n\r\n"),
        new("absolute-form query without path", "GET http://example.com?q=1 HTTP/1.1\r\n\r\n"),
        new("absolute-form scheme any case", "GET HTTPS://Example.com/x HTTP/1.1\r\nHost: a\r\n\r\n"),
        new("empty lines before the request line", "\r\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        new("bare LF line endings in the head", "GET / HTTP/1.1\nHost: a\nX: y\n\n"),
        new("mixed CRLF and LF", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\n"),
        new("empty header value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Spaces:    \r\n\r\n"),
        new("obs-text in value", "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\u00e9 \u00ff\r\n\r\n"),
        new("value keeps inner whitespace", "GET / HTTP/1.1\r\nHost: a\r\nX: a  b\tc\r\n\r\n"),
        new("every tchar in a name", "GET / HTTP/1.1\r\nHost: a\r\nX-!#$%&'*+.^`|~09: v\r\n\r\n"),
        new("underscore allowed by default", "GET / HTTP/1.1\r\nHost: a\r\nX_Foo: 1\r\n\r\n"),
        new("Transfer_Encoding is just another header", "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n"),
        new("underscore header dropped", "GET / HTTP/1.1\r\nHost: a\r\nX_Foo: 1\r\nX-Bar: 2\r\n\r\n")
        {
            Options = Http1ParserOptions.ServerDefaults with { HeadersWithUnderscoresAction = HeadersWithUnderscoresAction.DropHeader },
        },
        new("duplicate fields kept in order", "GET / HTTP/1.1\r\nHost: a\r\nAccept: a\r\nX: 1\r\naccept: b\r\n\r\n"),
        new("websocket upgrade is a tunnel", "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw tunnel bytes"),
        new("h2c upgrade stripped", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings, keep-alive\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"),
        new("Upgrade without Connection: upgrade is ignored", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
        new("Expect: 100-continue", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nhi"),
        new("empty Host value", "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
        new("Host IPv6 literal and port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
        new("M-SEARCH method", "M-SEARCH /upnp HTTP/1.1\r\nHost: a\r\n\r\n"),
        new("custom method allowed", "FOO /x HTTP/1.1\r\nHost: a\r\n\r\n") { Options = Http1ParserOptions.ServerDefaults with { AllowCustomMethods = true } },
        new("head exactly at the size limit", "GET / HTTP/1.1\r\nHost: a\r\nX: " + new string('a', 1024 - 32) + "\r\n\r\n")
        {
            Options = Http1ParserOptions.ServerDefaults with { MaxHeadersKb = 1 },
        },
        new("exactly max headers", "GET / HTTP/1.1\r\nHost: a\r\n" + Fields(2) + "\r\n") { Options = Http1ParserOptions.ServerDefaults with { MaxHeadersCount = 3 } },
    ];

    public static IEnumerable<RequestCase> Invalid =>
    [
        // Request smuggling: two framings, obfuscated Transfer-Encoding.
        new("CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400, Http1Details.ChunkedContentLength),
        new("TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n", 400, Http1Details.ChunkedContentLength),
        new("TE.TE xchunked with CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\nabcd", 400, Http1Details.ChunkedContentLength),
        new("allow_chunked_length does not rescue a non-chunked TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\nabcd", 400, Http1Details.ChunkedContentLength)
        {
            Options = Http1ParserOptions.ServerDefaults with { AllowChunkedLength = true },
        },
        new("TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501, Http1Details.InvalidTransferEncoding),
        new("TE chunked, identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 501, Http1Details.InvalidTransferEncoding),
        new("TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501, Http1Details.InvalidTransferEncoding),
        new("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, Http1Details.InvalidTransferEncoding),
        new("TE chunked with tab before comma", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t,chunked\r\n\r\n", 501, Http1Details.InvalidTransferEncoding),
        new("TE quoted", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 501, Http1Details.InvalidTransferEncoding),
        new("TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 501, Http1Details.InvalidTransferEncoding),
        new("duplicate TE fields", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, Http1Details.InvalidTransferEncoding),
        new("duplicate TE fields, second obfuscated", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: x\r\n\r\n0\r\n\r\n", 501, Http1Details.InvalidTransferEncoding),
        new("space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("tab before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("obs-fold continuation", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400, Http1Details.InvalidCharacters),
        new("whitespace-led line after the request line", "POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n0\r\n\r\n", 400, Http1Details.InvalidCharacters),
        new("vertical tab in TE value", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\u000bchunked\r\n\r\n0\r\n\r\n", 400, Http1Details.InvalidCharacters),
        new("HTTP/1.0 with Transfer-Encoding", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, Http1Details.InvalidTransferEncoding) { Options = Http10 },

        // Content-Length.
        new("two differing Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, Http1Details.CodecError),
        new("two identical Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, Http1Details.CodecError),
        new("Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400, Http1Details.CodecError),
        new("Content-Length negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, Http1Details.CodecError),
        new("Content-Length plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400, Http1Details.CodecError),
        new("Content-Length hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400, Http1Details.CodecError),
        new("Content-Length inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", 400, Http1Details.CodecError),
        new("Content-Length empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400, Http1Details.CodecError),
        new("Content-Length overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", 400, Http1Details.CodecError),

        // Chunked framing.
        new("chunk size with plus", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk size with 0x", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk size negative", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk size leading space", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk size trailing space without extension", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk size overflow into sign bit", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n", 400, Http1Details.CodecError),
        new("chunk size missing", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk extension with bare CR", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk extension with bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk extension with NUL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\u0000\r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk data longer than its size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk data shorter than its size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello\r\n0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunk lines with bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", 400, Http1Details.CodecError),
        new("chunk data ended by bare CR", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r0\r\n\r\n", 400, Http1Details.CodecError),
        new("chunked body truncated by EOF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 400, Http1Details.CodecError),
        new("content-length body truncated by EOF", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello", 400, Http1Details.CodecError),
        new("trailer with invalid value", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\u0001b\r\n\r\n", 400, Http1Details.InvalidCharacters),
        new("trailer without colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnot a field\r\n\r\n", 400, Http1Details.CodecError),
        new("trailer section too large", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + new string('t', 1100) + "\r\n\r\n", 431, Http1Details.HeadersTooLarge)
        {
            Options = Http1ParserOptions.ServerDefaults with { MaxHeadersKb = 1 },
        },
        new("too many trailers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + Fields(4) + "\r\n", 431, Http1Details.TooManyHeaders)
        {
            Options = Http1ParserOptions.ServerDefaults with { MaxHeadersCount = 3 },
        },
        new("underscore trailer rejected", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX_Y: 1\r\n\r\n", 400, Http1Details.UnexpectedUnderscore)
        {
            Options = Http1ParserOptions.ServerDefaults with { HeadersWithUnderscoresAction = HeadersWithUnderscoresAction.RejectRequest },
        },

        // Header fields.
        new("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u0000b\r\n\r\n", 400, Http1Details.InvalidCharacters),
        new("bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, Http1Details.InvalidCharacters),
        new("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u007fb\r\n\r\n", 400, Http1Details.InvalidCharacters),
        new("NUL in name", "GET / HTTP/1.1\r\nHost: a\r\nX\u0000Y: a\r\n\r\n", 400, Http1Details.CodecError),
        new("space in name", "GET / HTTP/1.1\r\nHost: a\r\nFoo Bar: x\r\n\r\n", 400, Http1Details.CodecError),
        new("non-ASCII in name", "GET / HTTP/1.1\r\nHost: a\r\nX-\u00e9: x\r\n\r\n", 400, Http1Details.CodecError),
        new("line without colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400, Http1Details.CodecError),
        new("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n", 400, Http1Details.CodecError),
        new("underscore rejected", "GET / HTTP/1.1\r\nHost: a\r\nX_Foo: 1\r\n\r\n", 400, Http1Details.UnexpectedUnderscore)
        {
            Options = Http1ParserOptions.ServerDefaults with { HeadersWithUnderscoresAction = HeadersWithUnderscoresAction.RejectRequest },
        },
        new("header section too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + new string('a', 61 * 1024) + "\r\n\r\n", 431, Http1Details.HeadersTooLarge),
        new("head one byte over the size limit", "GET / HTTP/1.1\r\nHost: a\r\nX: " + new string('a', 1024 - 31) + "\r\n\r\n", 431, Http1Details.HeadersTooLarge)
        {
            Options = Http1ParserOptions.ServerDefaults with { MaxHeadersKb = 1 },
        },
        new("head never ends", "GET / HTTP/1.1\r\nHost: a\r\n" + string.Concat(Enumerable.Repeat("X: 1\r\n", 300)), 431, Http1Details.HeadersTooLarge)
        {
            Options = Http1ParserOptions.ServerDefaults with { MaxHeadersKb = 1 },
        },
        new("too many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + Fields(100) + "\r\n", 431, Http1Details.TooManyHeaders),

        // Host.
        new("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, Http1Details.MissingHost),
        new("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 400, Http1Details.MissingHost) { Options = Http10 },
        new("two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, Http1Details.InvalidAuthority),
        new("two identical Host fields", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400, Http1Details.InvalidAuthority),
        new("Host with userinfo", "GET / HTTP/1.1\r\nHost: user@evil.example\r\n\r\n", 400, Http1Details.InvalidAuthority),
        new("Host with inner space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, Http1Details.InvalidAuthority),
        new("Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, Http1Details.InvalidAuthority),

        // Request line.
        new("double space after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("double space before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("tab as separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("no target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("HTTP/0.9 request", "GET /\r\n\r\n", 400, Http1Details.CodecError),
        new("lowercase method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("unknown method", "FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("custom method that is not a token", "F(O / HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError)
        {
            Options = Http1ParserOptions.ServerDefaults with { AllowCustomMethods = true },
        },
        new("lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("HTTP/2.0 version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("version with two digits", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("bare CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("non-ASCII in target", "GET /caf\u00e9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.CodecError),
        new("HTTP/1.0 not enabled", "GET / HTTP/1.0\r\nHost: a\r\n\r\n", 426, Http1Details.LowVersion),

        // Request-target forms.
        new("fragment in target", "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.InvalidUrl),
        new("asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.InvalidUrl),
        new("asterisk with M-SEARCH (Envoy: OPTIONS only)", "M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.InvalidUrl),
        new("relative target", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.InvalidUrl),
        new("absolute-form with ftp scheme", "GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.InvalidScheme),
        new("absolute-form with userinfo", "GET http://user@example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.InvalidUrl),
        new("absolute-form with empty authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400, Http1Details.InvalidUrl),
        new("absolute-form when not allowed", "GET http://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 404, Http1Details.AbsolutePath)
        {
            Options = Http1ParserOptions.ServerDefaults with { AllowAbsoluteUrl = false },
        },
        new("CONNECT without port", "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, Http1Details.InvalidUrl),
        new("CONNECT with origin-form", "CONNECT / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, Http1Details.InvalidUrl),
        new("CONNECT with unbracketed IPv6", "CONNECT ::1:443 HTTP/1.1\r\n\r\n", 400, Http1Details.InvalidUrl),
        new("CONNECT with a body length", "CONNECT example.com:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400, Http1Details.BodyDisallowed),
        new("CONNECT with chunked", "CONNECT example.com:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, Http1Details.InvalidTransferEncoding),
    ];

    private static readonly Dictionary<string, RequestCase> s_byName = Valid.Concat(Invalid).ToDictionary(c => c.Name);

    // Theories take the case name, so every row is its own test in the runner's output.
    public static TheoryData<string> ValidNames => Names(Valid);

    public static TheoryData<string> InvalidNames => Names(Invalid);

    public static TheoryData<string> AllNames => Names(Valid.Concat(Invalid));

    public static RequestCase Get(string name) => s_byName[name];

    /// <summary><paramref name="count"/> distinct "X-n: v" lines.</summary>
    internal static string Fields(int count) => string.Concat(Enumerable.Range(0, count).Select(i => $"X-{i}: v\r\n"));

    private static TheoryData<string> Names(IEnumerable<RequestCase> cases)
    {
        var data = new TheoryData<string>();
        foreach (RequestCase c in cases)
        {
            data.Add(c.Name);
        }

        return data;
    }
}
