using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Legate.Http.Http1;

namespace Legate.Tests.Http.Http1;

/// <summary>What the server codec makes of valid requests: the values the proxy will route and forward on.</summary>
public sealed class RequestParserTests
{
    private static HttpRequestHead ParseHead(string raw, Http1ParserOptions? options = null)
    {
        var parser = new Http1RequestParser(options ?? Http1ParserOptions.ServerDefaults);
        var head = new HttpRequestHead();
        Http1ParseStatus status = parser.ParseHead(new ReadOnlySequence<byte>(Http1Bytes.Of(raw)), head, out _, out Http1Error error);
        Assert.True(status == Http1ParseStatus.Complete, error.ToString());
        return head;
    }

    [Fact]
    public void SimpleGet()
    {
        HttpRequestHead head = ParseHead("GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: test\r\n\r\n");

        Assert.Equal("GET", head.Method);
        Assert.Same(HttpMethods.Get, head.Method);
        Assert.Equal(HttpMethodKind.Get, head.MethodKind);
        Assert.Equal("/index.html?q=1", head.Path);
        Assert.Equal(Http1Version.Http11, head.Version);
        Assert.Equal(RequestTargetForm.Origin, head.TargetForm);
        Assert.Null(head.Scheme);
        Assert.Equal("www.example.com", Http1Bytes.Text(head.Authority));
        Assert.Equal(Http1BodyFraming.None, head.Framing);
        Assert.Equal(-1, head.ContentLength);
        Assert.True(head.KeepAlive);
        Assert.Equal("host: www.example.com\nuser-agent: test\n", Http1Feeder.Fields(head.Headers));
    }

    [Fact]
    public void NamesKeepTheirCaseButLookupsIgnoreIt()
    {
        HttpRequestHead head = ParseHead("GET / HTTP/1.1\r\nHOST: a\r\nX-Custom-Thing: 1\r\n\r\n");

        Assert.Equal("HOST", Http1Bytes.Text(head.Headers.GetNameBytes(0)));
        Assert.Equal("host", head.Headers.GetName(0));
        Assert.Same(KnownHeaders.GetName(KnownHeader.Host), head.Headers.GetName(0));
        Assert.Equal(KnownHeader.Host, head.Headers.GetKnown(0));
        Assert.Equal("X-Custom-Thing", Http1Bytes.Text(head.Headers.GetNameBytes(1)));
        Assert.Equal("x-custom-thing", head.Headers.GetName(1));
        Assert.Equal(1, head.Headers.IndexOf("x-CUSTOM-thing"));
    }

    [Fact]
    public void ValuesAreTrimmedOfOptionalWhitespaceOnly()
    {
        HttpRequestHead head = ParseHead("GET / HTTP/1.1\r\nHost: a\r\nX: \t a  b \t\r\n\r\n");

        Assert.Equal("a  b", head.Headers.GetValue("x"));
    }

    [Fact]
    public void AbsoluteFormReplacesHostAndSetsSchemeAndPath()
    {
        HttpRequestHead head = ParseHead("GET http://Example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: other.example\r\nHost: third.example\r\nAccept: */*\r\n\r\n");

        Assert.Equal(RequestTargetForm.Absolute, head.TargetForm);
        Assert.Equal("http", head.Scheme);
        Assert.Equal("/p/q?x=1", head.Path);
        Assert.Equal("Example.com:8080", Http1Bytes.Text(head.Authority));
        Assert.Equal(1, head.Headers.CountOf(KnownHeader.Host));

        // The replaced Host keeps the position of the first received one.
        Assert.Equal("host: Example.com:8080\naccept: */*\n", Http1Feeder.Fields(head.Headers));
    }

    [Theory]
    [InlineData("http://a.example", "/", "http")]
    [InlineData("https://a.example?x=1", "/?x=1", "https")]
    [InlineData("HtTp://a.example/", "/", "http")]
    public void AbsoluteFormPathDefaults(string target, string path, string scheme)
    {
        HttpRequestHead head = ParseHead($"GET {target} HTTP/1.1\r\n\r\n");

        Assert.Equal(path, head.Path);
        Assert.Equal(scheme, head.Scheme);
        Assert.Equal("a.example", Http1Bytes.Text(head.Authority));
    }

    [Fact]
    public void ConnectIsATunnelToTheAuthority()
    {
        HttpRequestHead head = ParseHead("CONNECT example.com:443 HTTP/1.1\r\nHost: ignored.example:443\r\nContent-Length: 0\r\n\r\n");

        Assert.Equal(HttpMethodKind.Connect, head.MethodKind);
        Assert.Equal(RequestTargetForm.Authority, head.TargetForm);
        Assert.Equal("example.com:443", Http1Bytes.Text(head.Authority));
        Assert.True(head.PathBytes.IsEmpty);
        Assert.Equal(Http1BodyFraming.Tunnel, head.Framing);
        Assert.False(head.KeepAlive);
        Assert.False(head.Headers.Contains(KnownHeader.ContentLength));
    }

    [Fact]
    public void OptionsAsterisk()
    {
        HttpRequestHead head = ParseHead("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(RequestTargetForm.Asterisk, head.TargetForm);
        Assert.Equal("*", head.Path);
    }

    [Fact]
    public void WebSocketUpgradeMakesTheRestATunnel()
    {
        List<ParsedMessage> messages = Http1Feeder.Requests(
            "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n");

        ParsedMessage only = Assert.Single(messages);
        Assert.Contains(" upgrade", only.StartLine, StringComparison.Ordinal);
        Assert.Equal("Tunnel", only.Framing);
        Assert.False(only.KeepAlive);

        // Everything after the head is tunnel payload, up to end of stream: nothing is parsed as HTTP.
        Assert.Equal("abcGET / HTTP/1.1\r\n\r\n", only.Body);
    }

    [Fact]
    public void UpgradeIsIgnoredOnHttp10()
    {
        HttpRequestHead head = ParseHead(
            "GET / HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            Http1ParserOptions.ServerDefaults with { AcceptHttp10 = true });

        Assert.False(head.IsUpgrade);
        Assert.Equal(Http1BodyFraming.None, head.Framing);
    }

    [Fact]
    public void H2cUpgradeIsStrippedAndServedAsHttp11()
    {
        HttpRequestHead head = ParseHead(
            "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings, keep-alive\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nX: y\r\n\r\n");

        Assert.False(head.IsUpgrade);
        Assert.Equal(Http1BodyFraming.None, head.Framing);
        Assert.True(head.KeepAlive);
        Assert.Equal("host: a\nconnection: keep-alive\nx: y\n", Http1Feeder.Fields(head.Headers));
    }

    [Fact]
    public void H2cUpgradeRemovesAnEmptiedConnectionHeader()
    {
        HttpRequestHead head = ParseHead("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n");

        Assert.Equal("host: a\n", Http1Feeder.Fields(head.Headers));
    }

    [Fact]
    public void AllowChunkedLengthDropsContentLength()
    {
        var options = Http1ParserOptions.ServerDefaults with { AllowChunkedLength = true };
        List<ParsedMessage> messages = Http1Feeder.Requests(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", options);

        ParsedMessage only = Assert.Single(messages);
        Assert.Equal("Chunked", only.Framing);
        Assert.Equal("hello", only.Body);
        Assert.Equal("host: a\ntransfer-encoding: chunked\n", only.Headers);
    }

    [Fact]
    public void UnderscoreHeadersCanBeDroppedAndCounted()
    {
        var options = Http1ParserOptions.ServerDefaults with { HeadersWithUnderscoresAction = HeadersWithUnderscoresAction.DropHeader };
        HttpRequestHead head = ParseHead("GET / HTTP/1.1\r\nHost: a\r\nX_A: 1\r\nX-B: 2\r\nX_C: 3\r\n\r\n", options);

        Assert.Equal("host: a\nx-b: 2\n", Http1Feeder.Fields(head.Headers));
        Assert.Equal(2, head.DroppedHeadersWithUnderscores);
    }

    [Fact]
    public void DroppedHeadersDoNotCountTowardsTheLimit()
    {
        var options = Http1ParserOptions.ServerDefaults with
        {
            HeadersWithUnderscoresAction = HeadersWithUnderscoresAction.DropHeader,
            MaxHeadersCount = 2,
        };
        HttpRequestHead head = ParseHead("GET / HTTP/1.1\r\nHost: a\r\nX_A: 1\r\nX_B: 1\r\nX-C: 3\r\n\r\n", options);

        Assert.Equal(2, head.Headers.Count);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n\r\n", true)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: Close\r\n\r\n", false)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true)]
    [InlineData("GET / HTTP/1.0\r\nHost: a\r\n\r\n", false)]
    [InlineData("GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n", true)]
    [InlineData("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n", false)]
    public void KeepAliveFollowsVersionAndConnection(string raw, bool keepAlive)
    {
        HttpRequestHead head = ParseHead(raw, Http1ParserOptions.ServerDefaults with { AcceptHttp10 = true });

        Assert.Equal(keepAlive, head.KeepAlive);
    }

    [Fact]
    public void Http10GetsTheDefaultHost()
    {
        var options = Http1ParserOptions.ServerDefaults with { AcceptHttp10 = true, DefaultHostForHttp10 = "fallback.example" };
        HttpRequestHead head = ParseHead("GET / HTTP/1.0\r\n\r\n", options);

        Assert.Equal(Http1Version.Http10, head.Version);
        Assert.Equal("fallback.example", Http1Bytes.Text(head.Authority));
    }

    [Theory]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", true)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\n", false)]
    [InlineData("POST / HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", false)]
    public void ExpectContinueOnlyOnHttp11(string raw, bool expected)
    {
        HttpRequestHead head = ParseHead(raw, Http1ParserOptions.ServerDefaults with { AcceptHttp10 = true });

        Assert.Equal(expected, head.ExpectContinue);
    }

    [Fact]
    public void ContentLengthIsParsedAsDecimal()
    {
        HttpRequestHead head = ParseHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0010\r\n\r\n");

        Assert.Equal(Http1BodyFraming.ContentLength, head.Framing);
        Assert.Equal(10, head.ContentLength);
    }

    [Fact]
    public void TrailersAreKeptWhenEnabled()
    {
        const string raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nGrpc-Status: 0\r\nX-T: v\r\n\r\n";

        ParsedMessage kept = Assert.Single(Http1Feeder.Requests(raw, Http1ParserOptions.ServerDefaults with { EnableTrailers = true }));
        ParsedMessage dropped = Assert.Single(Http1Feeder.Requests(raw));

        Assert.Equal("abc", kept.Body);
        Assert.Equal("grpc-status: 0\nx-t: v\n", kept.Trailers);
        Assert.Equal("abc", dropped.Body);
        Assert.Equal("", dropped.Trailers);
    }

    [Fact]
    public void CustomMethodsAreStringsOfKindOther()
    {
        HttpRequestHead head = ParseHead("PURGE-ALL /x HTTP/1.1\r\nHost: a\r\n\r\n", Http1ParserOptions.ServerDefaults with { AllowCustomMethods = true });

        Assert.Equal("PURGE-ALL", head.Method);
        Assert.Equal(HttpMethodKind.Other, head.MethodKind);
    }

    [Fact]
    public void PipelinedRequestsAreParsedInOrder()
    {
        const string raw =
            "GET /one HTTP/1.1\r\nHost: a\r\n\r\n" +
            "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
            "POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n" +
            "\r\nGET /four HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

        foreach (int step in new[] { Http1Feeder.AllAtOnce, 1, 5 })
        {
            List<ParsedMessage> messages = Http1Feeder.Requests(raw, step: step);

            Assert.Equal(["GET /one", "POST /two", "POST /three", "GET /four"], messages.Select(m => string.Join(' ', m.StartLine.Split(' ')[..2])));
            Assert.Equal(["", "abc", "de", ""], messages.Select(m => m.Body));
            Assert.Equal([true, true, true, false], messages.Select(m => m.KeepAlive));
        }
    }

    [Fact]
    public void APipelinedErrorStopsAfterTheGoodRequests()
    {
        List<ParsedMessage> messages = Http1Feeder.Requests(
            "GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /bad HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");

        Assert.Equal(2, messages.Count);
        Assert.False(messages[0].IsError);
        Assert.Equal(Http1Details.ChunkedContentLength, messages[1].ErrorDetails);
    }

    [Fact]
    public void NeedMoreDataConsumesNothingAndResumes()
    {
        byte[] raw = Http1Bytes.Of("GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT");
        var parser = new Http1RequestParser(Http1ParserOptions.ServerDefaults);
        var head = new HttpRequestHead();

        Assert.Equal(Http1ParseStatus.NeedMoreData, parser.ParseHead(new ReadOnlySequence<byte>(raw, 0, 20), head, out long consumed, out _));
        Assert.Equal(0, consumed);
        Assert.Equal(Http1ParseStatus.NeedMoreData, parser.ParseHead(new ReadOnlySequence<byte>(raw, 0, 26), head, out consumed, out _));
        Assert.Equal(Http1ParseStatus.Complete, parser.ParseHead(new ReadOnlySequence<byte>(raw), head, out consumed, out _));
        Assert.Equal(raw.Length - 4, consumed);
    }

    [Fact]
    public void ThroughARealPipe()
    {
        byte[] raw = Http1Bytes.Of(
            "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n" +
            "GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
        var pipe = new Pipe(new PipeOptions(minimumSegmentSize: 16, pauseWriterThreshold: 0));
        for (int i = 0; i < raw.Length; i += 3)
        {
            pipe.Writer.Write(raw.AsSpan(i, Math.Min(3, raw.Length - i)));
        }

        pipe.Writer.Complete();

        var options = Http1ParserOptions.ServerDefaults;
        var parser = new Http1RequestParser(options);
        var head = new HttpRequestHead();
        var body = new Http1BodyReader(options, isRequest: true);
        var seen = new List<string>();
        var content = new StringBuilder();
        bool inBody = false;
        while (true)
        {
            Assert.True(pipe.Reader.TryRead(out ReadResult result));
            ReadOnlySequence<byte> buffer = result.Buffer;
            if (!inBody)
            {
                Http1ParseStatus status = parser.ParseHead(buffer, head, out long consumed, out Http1Error error);
                Assert.NotEqual(Http1ParseStatus.Error, status);
                if (status == Http1ParseStatus.NeedMoreData)
                {
                    pipe.Reader.AdvanceTo(buffer.Start, buffer.End);
                    if (result.IsCompleted)
                    {
                        break;
                    }

                    continue;
                }

                seen.Add(head.Path);
                body.Start(head);
                inBody = true;
                pipe.Reader.AdvanceTo(buffer.GetPosition(consumed));
                continue;
            }

            Http1BodyStatus bodyStatus = body.Read(buffer, out ReadOnlySequence<byte> data, out long used, out _);
            content.Append(Http1Bytes.Text(data));
            pipe.Reader.AdvanceTo(buffer.GetPosition(used), bodyStatus == Http1BodyStatus.NeedMoreData ? buffer.End : buffer.GetPosition(used));
            inBody = bodyStatus != Http1BodyStatus.Complete;
            Assert.NotEqual(Http1BodyStatus.Error, bodyStatus);
        }

        Assert.Equal(["/a", "/b"], seen);
        Assert.Equal("wikipedia", content.ToString());
    }

    /// <summary>
    /// Garbage never throws and is never split-dependent: random mixes of HTTP-ish fragments and
    /// control bytes, parsed whole and byte by byte.
    /// </summary>
    [Fact]
    public void RandomInputNeverThrowsAndIsSplitIndependent()
    {
        string[] pieces =
        [
            "GET ", "POST ", "CONNECT ", "/", "*", "http://h", " HTTP/1.1", " HTTP/1.0", "\r\n", "\n", "\r", " ", "\t", ":",
            "Host: a\r\n", "Content-Length: 3\r\n", "Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n", "Connection: upgrade\r\n",
            "Upgrade: x\r\n", "0\r\n\r\n", "3\r\nabc\r\n", "5;x\r\n", "\u0000", "\u00ff", "_", ",", "abc", "\r\n\r\n",
        ];
        var random = new Random(12345);
        var options = Http1ParserOptions.ServerDefaults with { AcceptHttp10 = true, EnableTrailers = true };
        for (int i = 0; i < 1500; i++)
        {
            var text = new StringBuilder();
            int count = random.Next(1, 30);
            for (int j = 0; j < count; j++)
            {
                text.Append(pieces[random.Next(pieces.Length)]);
            }

            string raw = text.ToString();
            List<ParsedMessage> whole = Http1Feeder.Requests(raw, options);
            Assert.Equal(whole, Http1Feeder.Requests(raw, options, step: 1, segmentSize: 1));
        }
    }
}
