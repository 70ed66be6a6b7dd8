using Legate.Http.Http1;

namespace Legate.Tests.Http.Http1;

/// <summary>The client side: upstream responses, their framing per request method and status, and errors.</summary>
public sealed class ResponseParserTests
{
    private static readonly (HttpMethodKind, bool)[] Get = [(HttpMethodKind.Get, false)];

    private static ParsedMessage Single(string raw, HttpMethodKind method = HttpMethodKind.Get, bool upgrade = false, Http1ParserOptions? options = null)
    {
        List<ParsedMessage> messages = Http1Feeder.Responses(raw, [(method, upgrade)], options);
        AssertSplitIndependent(raw, [(method, upgrade)], options);
        return Assert.Single(messages);
    }

    private static void AssertSplitIndependent(string raw, (HttpMethodKind, bool)[] requests, Http1ParserOptions? options = null)
    {
        List<ParsedMessage> whole = Http1Feeder.Responses(raw, requests, options);
        Assert.Equal(whole, Http1Feeder.Responses(raw, requests, options, step: 1, segmentSize: 1));
        Assert.Equal(whole, Http1Feeder.Responses(raw, requests, options, step: 4, segmentSize: 3));
    }

    [Fact]
    public void ContentLengthResponse()
    {
        ParsedMessage m = Single("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello");

        Assert.Equal("Http11 200 OK", m.StartLine);
        Assert.Equal("ContentLength", m.Framing);
        Assert.Equal("hello", m.Body);
        Assert.True(m.KeepAlive);
        Assert.Equal("content-length: 5\ncontent-type: text/plain\n", m.Headers);
    }

    [Fact]
    public void ChunkedResponseWithTrailers()
    {
        ParsedMessage m = Single(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n",
            options: Http1ParserOptions.ClientDefaults with { EnableTrailers = true });

        Assert.Equal("Chunked", m.Framing);
        Assert.Equal("wikipedia", m.Body);
        Assert.Equal("grpc-status: 0\ngrpc-message: ok\n", m.Trailers);
    }

    [Fact]
    public void WithoutFramingTheBodyRunsToClose()
    {
        ParsedMessage m = Single("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this\r\nHTTP/1.1 200 OK\r\n\r\nis body");

        Assert.Equal("CloseDelimited", m.Framing);
        Assert.False(m.KeepAlive);
        Assert.Equal("all of this\r\nHTTP/1.1 200 OK\r\n\r\nis body", m.Body);
    }

    [Theory]
    [InlineData("HTTP/1.1 204 No Content\r\n\r\n")]
    [InlineData("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")]
    public void NoContentHasNoBodyAndLosesAZeroContentLength(string raw)
    {
        List<ParsedMessage> messages = Http1Feeder.Responses(raw + "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", [(HttpMethodKind.Get, false), (HttpMethodKind.Get, false)]);

        Assert.Equal(2, messages.Count);
        Assert.Equal("None", messages[0].Framing);
        Assert.Equal("", messages[0].Headers);
        Assert.Equal("x", messages[1].Body);
    }

    [Fact]
    public void NotModifiedAndHeadResponsesHaveNoBodyDespiteContentLength()
    {
        ParsedMessage notModified = Single("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n");
        ParsedMessage head = Single("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", HttpMethodKind.Head);
        ParsedMessage headChunked = Single("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HttpMethodKind.Head);

        Assert.Equal(("None", 100L, ""), (notModified.Framing, notModified.ContentLength, notModified.Body));
        Assert.Equal(("None", 100L, ""), (head.Framing, head.ContentLength, head.Body));
        Assert.Equal("None", headChunked.Framing);
        Assert.True(head.KeepAlive);
    }

    [Fact]
    public void InformationalResponsesComeBackSeparately()
    {
        const string raw =
            "HTTP/1.1 100 Continue\r\n\r\n" +
            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" +
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

        List<ParsedMessage> messages = Http1Feeder.Responses(raw, Get);
        AssertSplitIndependent(raw, Get);

        Assert.Equal(["Http11 100 Continue informational", "Http11 103 Early Hints informational", "Http11 200 OK"], messages.Select(m => m.StartLine));
        Assert.Equal("link: </style.css>; rel=preload\n", messages[1].Headers);
        Assert.Equal(["", "", "ok"], messages.Select(m => m.Body));
    }

    [Fact]
    public void SwitchingProtocolsAfterAnUpgradeIsATunnel()
    {
        ParsedMessage m = Single("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u0081\u0005hello", upgrade: true);

        Assert.Equal("Tunnel", m.Framing);
        Assert.False(m.KeepAlive);
        Assert.Equal("\u0081\u0005hello", m.Body);
    }

    [Fact]
    public void ConnectSuccessIsATunnelButARefusalHasABody()
    {
        ParsedMessage ok = Single("HTTP/1.1 200 Connection Established\r\n\r\nTLS bytes", HttpMethodKind.Connect);
        ParsedMessage refused = Single("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\nnope", HttpMethodKind.Connect);

        Assert.Equal(("Tunnel", "TLS bytes"), (ok.Framing, ok.Body));
        Assert.Equal(("ContentLength", "nope"), (refused.Framing, refused.Body));
    }

    [Theory]
    [InlineData("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ContentLength", false)]
    [InlineData("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "ContentLength", true)]
    [InlineData("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nok", "CloseDelimited", false)]
    [InlineData("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ContentLength", false)]
    public void KeepAliveOfResponses(string raw, string framing, bool keepAlive)
    {
        ParsedMessage m = Single(raw);

        Assert.Equal((framing, keepAlive, "ok"), (m.Framing, m.KeepAlive, m.Body));
    }

    [Theory]
    [InlineData("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "Http11 200 ")]
    [InlineData("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", "Http11 200 ")]
    [InlineData("HTTP/1.1 599 Custom  Reason\twith tab\r\nContent-Length: 0\r\n\r\n", "Http11 599 Custom  Reason\twith tab")]
    [InlineData("HTTP/1.1 200 OK\nContent-Length: 0\n\n", "Http11 200 OK")]
    public void StatusLineVariants(string raw, string startLine)
    {
        Assert.Equal(startLine, Single(raw).StartLine);
    }

    [Theory]
    [InlineData("HTTP/1.1 20 OK\r\n\r\n", "InvalidStatusLine", Http1Details.CodecError)]
    [InlineData("HTTP/1.1 2000 OK\r\n\r\n", "InvalidStatusLine", Http1Details.CodecError)]
    [InlineData("HTTP/1.1 099 Low\r\n\r\n", "InvalidStatusLine", Http1Details.CodecError)]
    [InlineData("HTTP/1.1  200 OK\r\n\r\n", "InvalidStatusLine", Http1Details.CodecError)]
    [InlineData("HTTP/1.1 2x0 OK\r\n\r\n", "InvalidStatusLine", Http1Details.CodecError)]
    [InlineData("ICY 200 OK\r\n\r\n", "InvalidStatusLine", Http1Details.CodecError)]
    [InlineData("HTTP/2.0 200 OK\r\n\r\n", "InvalidStatusLine", Http1Details.CodecError)]
    [InlineData("HTTP/1.1 200 O\u0001K\r\n\r\n", "InvalidStatusLine", Http1Details.CodecError)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", "ContentLengthAndChunked", Http1Details.ChunkedContentLength)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "InvalidTransferEncoding", Http1Details.InvalidTransferEncoding)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", "MultipleContentLength", Http1Details.CodecError)]
    [InlineData("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", "TransferEncodingNotAllowed", Http1Details.TransferEncodingNotAllowed)]
    [InlineData("HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n", "TransferEncodingNotAllowed", Http1Details.TransferEncodingNotAllowed)]
    [InlineData("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "ContentLengthNotAllowed", Http1Details.ContentLengthNotAllowed)]
    [InlineData("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "UnexpectedSwitchingProtocols", Http1Details.CodecError)]
    [InlineData("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "TransferEncodingInHttp10", Http1Details.InvalidTransferEncoding)]
    [InlineData("HTTP/1.1 200 OK\r\nX: a\u0000\r\n\r\n", "InvalidHeaderValue", Http1Details.InvalidCharacters)]
    [InlineData("HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n", "InvalidHeaderName", Http1Details.CodecError)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", "InvalidChunkFraming", Http1Details.CodecError)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "PrematureEndOfMessage", Http1Details.CodecError)]
    public void InvalidResponsesAre502WithEnvoysDetails(string raw, string code, string details)
    {
        ParsedMessage m = Single(raw);

        Assert.Equal((502, code, details), (m.ErrorStatus, m.ErrorCode, m.ErrorDetails));
    }

    [Fact]
    public void UnderscoresAreAllowedInResponsesWhateverThePolicy()
    {
        var options = Http1ParserOptions.ClientDefaults with { HeadersWithUnderscoresAction = HeadersWithUnderscoresAction.RejectRequest };
        ParsedMessage m = Single("HTTP/1.1 200 OK\r\nX_Y: 1\r\nContent-Length: 0\r\n\r\n", options: options);

        Assert.False(m.IsError);
        Assert.Equal("x_y: 1\ncontent-length: 0\n", m.Headers);
    }

    [Fact]
    public void ResponseHeadLimitIsEightyKibByDefault()
    {
        string fits = "HTTP/1.1 200 OK\r\nX: " + new string('a', 70 * 1024) + "\r\nContent-Length: 0\r\n\r\n";
        string tooBig = "HTTP/1.1 200 OK\r\nX: " + new string('a', 81 * 1024) + "\r\nContent-Length: 0\r\n\r\n";

        Assert.False(Assert.Single(Http1Feeder.Responses(fits, Get)).IsError);
        ParsedMessage error = Assert.Single(Http1Feeder.Responses(tooBig, Get));
        Assert.Equal((502, Http1Details.HeadersTooLarge), (error.ErrorStatus, error.ErrorDetails));
    }

    [Fact]
    public void KeepAliveResponsesOnOneConnection()
    {
        const string raw =
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na" +
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" +
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n" +
            "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nc";
        (HttpMethodKind, bool)[] requests = [.. Enumerable.Repeat((HttpMethodKind.Get, false), 4)];

        List<ParsedMessage> messages = Http1Feeder.Responses(raw, requests);
        AssertSplitIndependent(raw, requests);

        Assert.Equal(["a", "", "b", "c"], messages.Select(m => m.Body));
        Assert.Equal(["ContentLength", "None", "Chunked", "ContentLength"], messages.Select(m => m.Framing));
        Assert.All(messages, m => Assert.True(m.KeepAlive));
    }
}
