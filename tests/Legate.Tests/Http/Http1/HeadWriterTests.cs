using System.Buffers;
using Legate.Http.Http1;

namespace Legate.Tests.Http.Http1;

/// <summary>Exact bytes written for heads and chunked bodies.</summary>
public sealed class HeadWriterTests
{
    private static HttpHeaderMap Map(params (string Name, string Value)[] fields)
    {
        var map = new HttpHeaderMap();
        foreach ((string name, string value) in fields)
        {
            map.Add(name, value);
        }

        return map;
    }

    private static string Written(Action<IBufferWriter<byte>> write)
    {
        var output = new ArrayBufferWriter<byte>();
        write(output);
        return Http1Bytes.Text(output.WrittenSpan);
    }

    [Fact]
    public void RequestHeadLowercasesNamesByDefault()
    {
        HttpHeaderMap headers = Map(("Host", "a.example"), ("X-Custom-Thing", "Value Case Kept"), ("TE", "trailers"));

        string text = Written(w => Http1HeadWriter.WriteRequestHead(w, "GET"u8, "/p?q=1"u8, headers));

        Assert.Equal("GET /p?q=1 HTTP/1.1\r\nhost: a.example\r\nx-custom-thing: Value Case Kept\r\nte: trailers\r\n\r\n", text);
    }

    [Fact]
    public void ProperCaseWordsAsEnvoy()
    {
        HttpHeaderMap headers = Map(("host", "a"), ("X-CUSTOM-thing", "1"), ("te", "trailers"), ("foo$b#$are", "2"), ("x-9abc", "3"));

        string text = Written(w => Http1HeadWriter.WriteRequestHead(w, "GET"u8, "/"u8, headers, HeaderKeyFormat.ProperCaseWords));

        Assert.Equal("GET / HTTP/1.1\r\nHost: a\r\nX-Custom-Thing: 1\r\nTe: trailers\r\nFoo$B#$Are: 2\r\nX-9abc: 3\r\n\r\n", text);
    }

    [Fact]
    public void PreserveCaseWritesNamesAsReceived()
    {
        var parser = new Http1RequestParser(Http1ParserOptions.ServerDefaults);
        var head = new HttpRequestHead();
        parser.ParseHead(new ReadOnlySequence<byte>(Http1Bytes.Of("GET /x HTTP/1.1\r\nHOST: a\r\nx-MiXeD: 1\r\n\r\n")), head, out _, out _);

        Assert.Equal("GET /x HTTP/1.1\r\nHOST: a\r\nx-MiXeD: 1\r\n\r\n", Written(w => Http1HeadWriter.WriteRequestHead(w, head, HeaderKeyFormat.PreserveCase)));
        Assert.Equal("GET /x HTTP/1.1\r\nhost: a\r\nx-mixed: 1\r\n\r\n", Written(w => Http1HeadWriter.WriteRequestHead(w, head)));
    }

    [Fact]
    public void ConnectIsWrittenInAuthorityForm()
    {
        var head = new HttpRequestHead();
        head.SetMethod("CONNECT");
        head.Headers.Add(KnownHeader.Host, "example.com:443");

        Assert.Equal("CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n", Written(w => Http1HeadWriter.WriteRequestHead(w, head)));
    }

    [Theory]
    [InlineData(200, "", "HTTP/1.1 200 OK\r\n")]
    [InlineData(404, "", "HTTP/1.1 404 Not Found\r\n")]
    [InlineData(431, "", "HTTP/1.1 431 Request Header Fields Too Large\r\n")]
    [InlineData(599, "", "HTTP/1.1 599 Unknown\r\n")]
    [InlineData(200, "Fine Thanks", "HTTP/1.1 200 Fine Thanks\r\n")]
    public void StatusLines(int code, string reason, string expected)
    {
        string text = Written(w => Http1HeadWriter.WriteResponseHead(w, code, new HttpHeaderMap(), reason: Http1Bytes.Of(reason)));

        Assert.Equal(expected + "\r\n", text);
    }

    [Fact]
    public void ResponseHeadWithFieldsAndVersion()
    {
        HttpHeaderMap headers = Map(("Content-Length", "0"), ("Server", "envoy"));

        string text = Written(w => Http1HeadWriter.WriteResponseHead(w, 204, headers, version: Http1Version.Http10));

        Assert.Equal("HTTP/1.0 204 No Content\r\ncontent-length: 0\r\nserver: envoy\r\n\r\n", text);
    }

    [Fact]
    public void ChunkFraming()
    {
        Assert.Equal("5\r\nhello\r\n", Written(w => ChunkedEncoder.WriteChunk(w, "hello"u8)));
        Assert.Equal("", Written(w => ChunkedEncoder.WriteChunk(w, ReadOnlySpan<byte>.Empty)));
        Assert.Equal("1000\r\n", Written(w => ChunkedEncoder.WriteChunkHeader(w, 4096)));
        Assert.Equal("7fffffffffffffff\r\n", Written(w => ChunkedEncoder.WriteChunkHeader(w, long.MaxValue)));
        Assert.Equal("a\r\n0123456789\r\n", Written(w => ChunkedEncoder.WriteChunk(w, Http1Bytes.Segmented(Http1Bytes.Of("0123456789"), 3))));
        Assert.Equal("0\r\n\r\n", Written(w => ChunkedEncoder.WriteLastChunk(w)));
        Assert.Equal("0\r\nGrpc-Status: 0\r\nX-T: v\r\n\r\n", Written(w => ChunkedEncoder.WriteLastChunk(w, Map(("Grpc-Status", "0"), ("X-T", "v")), HeaderKeyFormat.PreserveCase)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChunkedEncoder.WriteChunkHeader(new ArrayBufferWriter<byte>(), 0));
    }
}
