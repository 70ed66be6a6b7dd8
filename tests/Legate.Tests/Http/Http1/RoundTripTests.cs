using System.Buffers;
using System.Text;
using Legate.Http.Http1;

namespace Legate.Tests.Http.Http1;

/// <summary>Serialise what was parsed, parse it again: the proxy's view of the message must not change.</summary>
public sealed class RoundTripTests
{
    [Theory]
    [MemberData(nameof(RequestCases.ValidNames), MemberType = typeof(RequestCases))]
    public void RequestsSurviveSerialiseThenParse(string name)
    {
        RequestCase c = RequestCases.Get(name);
        (HttpRequestHead first, string firstBody) = ParseRequest(Http1Bytes.Of(c.Raw), c.Options);

        var output = new ArrayBufferWriter<byte>();
        Http1HeadWriter.WriteRequestHead(output, first);
        WriteBody(output, first.Framing, firstBody, first.Trailers);
        (HttpRequestHead second, string secondBody) = ParseRequest(output.WrittenSpan.ToArray(), c.Options);

        Assert.Equal(Describe(first, firstBody), Describe(second, secondBody));
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello")]
    [InlineData("HTTP/1.1 404 Whatever\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n")]
    [InlineData("HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n")]
    [InlineData("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok")]
    [InlineData("HTTP/1.1 302 Found\r\nLocation: /x\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n")]
    public void ResponsesSurviveSerialiseThenParse(string raw)
    {
        var options = Http1ParserOptions.ClientDefaults with { EnableTrailers = true };
        (HttpResponseHead first, string firstBody) = ParseResponse(Http1Bytes.Of(raw), options);

        var output = new ArrayBufferWriter<byte>();
        Http1HeadWriter.WriteResponseHead(output, first);
        WriteBody(output, first.Framing, firstBody, first.Trailers);
        (HttpResponseHead second, string secondBody) = ParseResponse(output.WrittenSpan.ToArray(), options);

        Assert.Equal(
            (first.StatusCode, first.Version, Http1Feeder.Fields(first.Headers), first.Framing, first.KeepAlive, firstBody, Http1Feeder.Fields(first.Trailers)),
            (second.StatusCode, second.Version, Http1Feeder.Fields(second.Headers), second.Framing, second.KeepAlive, secondBody, Http1Feeder.Fields(second.Trailers)));
    }

    private static string Describe(HttpRequestHead head, string body) =>
        $"{head.Method} {head.Path} {Http1Bytes.Text(head.Authority)} {head.Version} {head.Framing} {head.ContentLength} {head.KeepAlive} {head.IsUpgrade}\n" +
        $"{Http1Feeder.Fields(head.Headers)}body={body}\ntrailers={Http1Feeder.Fields(head.Trailers)}";

    private static void WriteBody(IBufferWriter<byte> output, Http1BodyFraming framing, string body, HttpHeaderMap trailers)
    {
        switch (framing)
        {
            case Http1BodyFraming.Chunked:
                ChunkedEncoder.WriteChunk(output, Http1Bytes.Of(body));
                ChunkedEncoder.WriteLastChunk(output, trailers);
                break;
            case Http1BodyFraming.None:
                Assert.Equal("", body);
                break;
            default:
                output.Write(Http1Bytes.Of(body));
                break;
        }
    }

    private static (HttpRequestHead Head, string Body) ParseRequest(byte[] bytes, Http1ParserOptions options)
    {
        var head = new HttpRequestHead();
        var parser = new Http1RequestParser(options);
        Assert.Equal(Http1ParseStatus.Complete, parser.ParseHead(new ReadOnlySequence<byte>(bytes), head, out long consumed, out Http1Error error));
        Assert.False(error.IsError);
        var reader = new Http1BodyReader(options, isRequest: true);
        reader.Start(head);
        return (head, ReadBody(reader, bytes.AsMemory((int)consumed)));
    }

    private static (HttpResponseHead Head, string Body) ParseResponse(byte[] bytes, Http1ParserOptions options)
    {
        var head = new HttpResponseHead();
        var parser = new Http1ResponseParser(options);
        Assert.Equal(Http1ParseStatus.Complete, parser.ParseHead(new ReadOnlySequence<byte>(bytes), head, HttpMethodKind.Get, false, out long consumed, out _));
        var reader = new Http1BodyReader(options, isRequest: false);
        reader.Start(head);
        return (head, ReadBody(reader, bytes.AsMemory((int)consumed)));
    }

    private static string ReadBody(Http1BodyReader reader, ReadOnlyMemory<byte> rest)
    {
        var body = new StringBuilder();
        while (true)
        {
            Http1BodyStatus status = reader.Read(new ReadOnlySequence<byte>(rest), out ReadOnlySequence<byte> data, out long used, out _);
            body.Append(Http1Bytes.Text(data));
            rest = rest[(int)used..];
            switch (status)
            {
                case Http1BodyStatus.Complete:
                    return body.ToString();
                case Http1BodyStatus.NeedMoreData:
                    Assert.Equal(Http1BodyStatus.Complete, reader.Finish(out _));
                    return body.ToString();
                case Http1BodyStatus.Error:
                    Assert.Fail("body error");
                    break;
            }
        }
    }
}
