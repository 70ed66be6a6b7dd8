using System.Buffers;
using System.Runtime.InteropServices;
using Legate.Http.Http1;

namespace Legate.Tests.Http.Http1;

/// <summary>The body reader's contract: slices not copies, greedy framing, sticky errors, end of stream.</summary>
public sealed class BodyReaderTests
{
    private static Http1BodyReader Chunked(Http1ParserOptions? options = null)
    {
        var reader = new Http1BodyReader(options ?? Http1ParserOptions.ServerDefaults, isRequest: true);
        reader.Start(Http1BodyFraming.Chunked, -1, new HttpHeaderMap());
        return reader;
    }

    [Fact]
    public void ASmallChunkedBodyCompletesInOneCallWithItsData()
    {
        byte[] bytes = Http1Bytes.Of("5\r\nhello\r\n0\r\n\r\nNEXT");
        Http1BodyReader reader = Chunked();

        Http1BodyStatus status = reader.Read(new ReadOnlySequence<byte>(bytes), out ReadOnlySequence<byte> data, out long consumed, out _);

        Assert.Equal(Http1BodyStatus.Complete, status);
        Assert.Equal("hello", Http1Bytes.Text(data));
        Assert.Equal(bytes.Length - 4, consumed);
        Assert.True(reader.IsComplete);
    }

    [Fact]
    public void DataIsASliceOfTheInputNotACopy()
    {
        byte[] bytes = Http1Bytes.Of("5\r\nhello\r\n");
        Http1BodyReader reader = Chunked();

        reader.Read(new ReadOnlySequence<byte>(bytes), out ReadOnlySequence<byte> data, out _, out _);

        Assert.True(MemoryMarshal.TryGetArray(data.First, out ArraySegment<byte> segment));
        Assert.Same(bytes, segment.Array);
        Assert.Equal(3, segment.Offset);
    }

    [Fact]
    public void OneChunkPerCallAndFramingConsumedGreedily()
    {
        byte[] bytes = Http1Bytes.Of("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        Http1BodyReader reader = Chunked();

        Assert.Equal(Http1BodyStatus.Data, reader.Read(new ReadOnlySequence<byte>(bytes), out ReadOnlySequence<byte> first, out long used, out _));
        Assert.Equal("abc", Http1Bytes.Text(first));

        // The CRLF after the data and the next size line are consumed, up to the next data.
        Assert.Equal(11, used);
        Assert.Equal(Http1BodyStatus.Complete, reader.Read(new ReadOnlySequence<byte>(bytes, 11, bytes.Length - 11), out ReadOnlySequence<byte> second, out used, out _));
        Assert.Equal("de", Http1Bytes.Text(second));
        Assert.Equal(bytes.Length - 11, used);
    }

    [Fact]
    public void PartialChunkDataIsDeliveredAsItArrives()
    {
        Http1BodyReader reader = Chunked();

        Assert.Equal(Http1BodyStatus.Data, reader.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("a\r\n0123")), out ReadOnlySequence<byte> data, out long used, out _));
        Assert.Equal(("0123", 7L), (Http1Bytes.Text(data), used));
        Assert.Equal(Http1BodyStatus.Data, reader.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("456789")), out data, out used, out _));
        Assert.Equal(("456789", 6L), (Http1Bytes.Text(data), used));
        Assert.Equal(Http1BodyStatus.NeedMoreData, reader.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("\r")), out data, out used, out _));
        Assert.Equal((0L, 1L), (data.Length, used));
    }

    [Fact]
    public void AnErrorAfterDataDeliversTheDataFirstThenStaysAnError()
    {
        byte[] bytes = Http1Bytes.Of("3\r\nabcX");
        Http1BodyReader reader = Chunked();

        Assert.Equal(Http1BodyStatus.Data, reader.Read(new ReadOnlySequence<byte>(bytes), out ReadOnlySequence<byte> data, out long used, out _));
        Assert.Equal(("abc", 6L), (Http1Bytes.Text(data), used));
        Assert.Equal(Http1BodyStatus.Error, reader.Read(new ReadOnlySequence<byte>(bytes, 6, 1), out _, out _, out Http1Error error));
        Assert.Equal(Http1ErrorCode.InvalidChunkFraming, error.Code);
        Assert.Equal(Http1BodyStatus.Error, reader.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("\r\n0\r\n\r\n")), out _, out _, out error));
        Assert.Equal(Http1BodyStatus.Error, reader.Finish(out _));
    }

    [Fact]
    public void LargestChunkSizeIsAcceptedOneMoreDigitIsNot()
    {
        Http1BodyReader ok = Chunked();
        Assert.Equal(Http1BodyStatus.Data, ok.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("7fffffffffffffff\r\nxyz")), out ReadOnlySequence<byte> data, out _, out _));
        Assert.Equal("xyz", Http1Bytes.Text(data));

        Http1BodyReader tooBig = Chunked();
        Assert.Equal(Http1BodyStatus.Error, tooBig.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("7fffffffffffffff0\r\n")), out _, out _, out Http1Error error));
        Assert.Equal(Http1ErrorCode.InvalidChunkSize, error.Code);
    }

    [Fact]
    public void ChunkSizeLineIsBounded()
    {
        Http1BodyReader reader = Chunked();
        string line = "5;" + new string('e', Http1BodyReader.MaxChunkHeaderLength) + "\r\nhello\r\n";

        Assert.Equal(Http1BodyStatus.Error, reader.Read(new ReadOnlySequence<byte>(Http1Bytes.Of(line)), out _, out _, out Http1Error error));
        Assert.Equal(Http1ErrorCode.ChunkHeaderTooLong, error.Code);
        Assert.Equal(400, error.StatusCode);
    }

    [Fact]
    public void ContentLengthBodyStopsAtTheLength()
    {
        var reader = new Http1BodyReader(Http1ParserOptions.ServerDefaults, isRequest: true);
        reader.Start(Http1BodyFraming.ContentLength, 4, null);

        Assert.Equal(Http1BodyStatus.Data, reader.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("ab")), out ReadOnlySequence<byte> data, out long used, out _));
        Assert.Equal(("ab", 2L), (Http1Bytes.Text(data), used));
        Assert.Equal(Http1BodyStatus.Complete, reader.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("cdGET")), out data, out used, out _));
        Assert.Equal(("cd", 2L), (Http1Bytes.Text(data), used));
        Assert.Equal(Http1BodyStatus.Complete, reader.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("GET")), out data, out used, out _));
        Assert.Equal((0L, 0L), (data.Length, used));
    }

    [Fact]
    public void EndOfStreamCompletesOnlyCloseDelimitedBodiesAndTunnels()
    {
        foreach ((Http1BodyFraming framing, long length, Http1BodyStatus expected) in new[]
        {
            (Http1BodyFraming.CloseDelimited, -1L, Http1BodyStatus.Complete),
            (Http1BodyFraming.Tunnel, -1L, Http1BodyStatus.Complete),
            (Http1BodyFraming.None, -1L, Http1BodyStatus.Complete),
            (Http1BodyFraming.ContentLength, 3L, Http1BodyStatus.Error),
            (Http1BodyFraming.Chunked, -1L, Http1BodyStatus.Error),
        })
        {
            var reader = new Http1BodyReader(Http1ParserOptions.ClientDefaults, isRequest: false);
            reader.Start(framing, length, null);
            Assert.Equal(expected, reader.Finish(out Http1Error error));
            if (expected == Http1BodyStatus.Error)
            {
                Assert.Equal((502, Http1ErrorCode.PrematureEndOfMessage), (error.StatusCode, error.Code));
            }
        }
    }

    [Fact]
    public void TrailersWaitForWholeLines()
    {
        var trailers = new HttpHeaderMap();
        var reader = new Http1BodyReader(Http1ParserOptions.ServerDefaults with { EnableTrailers = true }, isRequest: true);
        reader.Start(Http1BodyFraming.Chunked, -1, trailers);

        Assert.Equal(Http1BodyStatus.NeedMoreData, reader.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("0\r\nX-A: 1\r\nX-B")), out _, out long used, out _));
        Assert.Equal(11, used);
        Assert.Equal(Http1BodyStatus.Complete, reader.Read(new ReadOnlySequence<byte>(Http1Bytes.Of("X-B: 2\n\r\n")), out _, out used, out _));
        Assert.Equal(9, used);
        Assert.Equal("x-a: 1\nx-b: 2\n", Http1Feeder.Fields(trailers));
    }
}
