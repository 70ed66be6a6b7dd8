using System.Buffers;
using Legate.Http.Http1;

namespace Legate.Tests.Http.Http1;

/// <summary>
/// The hot path allocates nothing once a connection's objects exist: parse a head, read its body,
/// write a request head upstream and a response head downstream.
/// </summary>
public sealed class AllocationTests
{
    [Fact]
    public void ParsingAndWritingAKeptAliveRequestAllocatesNothing()
    {
        byte[] contentLength = Http1Bytes.Of(
            "POST /api/items?id=42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\n" +
            "Content-Type: application/json\r\nContent-Length: 13\r\nX-Request-Id: 0123456789abcdef\r\nX-Custom-Header: something\r\n\r\n{\"a\":\"hello\"}");
        byte[] chunked = Http1Bytes.Of(
            "PUT /upload HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" +
            "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
        var options = Http1ParserOptions.ServerDefaults;
        var parser = new Http1RequestParser(options);
        var head = new HttpRequestHead();
        var body = new Http1BodyReader(options, isRequest: true);
        var responseHeaders = new HttpHeaderMap();
        responseHeaders.Add(KnownHeader.ContentLength, "100");
        responseHeaders.Add("x-upstream", "1");
        var output = new ArrayBufferWriter<byte>(16 * 1024);

        long Run(int iterations)
        {
            long total = 0;
            for (int i = 0; i < iterations; i++)
            {
                foreach (byte[] request in (ReadOnlySpan<byte[]>)[contentLength, chunked])
                {
                    var buffer = new ReadOnlySequence<byte>(request);
                    if (parser.ParseHead(buffer, head, out long consumed, out _) != Http1ParseStatus.Complete)
                    {
                        throw new InvalidOperationException("parse failed");
                    }

                    body.Start(head);
                    buffer = buffer.Slice(consumed);
                    Http1BodyStatus status;
                    do
                    {
                        status = body.Read(buffer, out ReadOnlySequence<byte> data, out long used, out _);
                        total += data.Length;
                        buffer = buffer.Slice(used);
                    }
                    while (status == Http1BodyStatus.Data);

                    output.ResetWrittenCount();
                    Http1HeadWriter.WriteRequestHead(output, head);
                    Http1HeadWriter.WriteResponseHead(output, 200, responseHeaders);
                    ChunkedEncoder.WriteChunk(output, "hello"u8);
                    ChunkedEncoder.WriteLastChunk(output);
                }
            }

            return total;
        }

        Run(200);
        long before = GC.GetAllocatedBytesForCurrentThread();
        long bytes = Run(1000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(1000 * (13 + 11), bytes);
        Assert.Equal(0, allocated);
    }
}
