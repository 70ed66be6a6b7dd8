using System.Buffers;
using Legate.Http.Http1;

namespace Legate.Tests.Http.Http1;

/// <summary>
/// The scanner's one-search path (a whole head in one segment, every line ending in CRLF) must
/// find exactly the end the line-by-line scan finds, and hand every other head to that scan.
/// </summary>
public sealed class HeadScannerTests
{
    public static TheoryData<string, int> Heads => new()
    {
        { "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 8192 },
        { "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n\r\n", 8192 },
        { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 8192 },
        // A bare LF ends the head before the CRLF CRLF further on.
        { "GET / HTTP/1.1\nHost: a\n\nX: b\r\n\r\n", 8192 },
        { "GET / HTTP/1.1\r\nHost: a\n\r\nX: b\r\n\r\n", 8192 },
        { "GET / HTTP/1.1\r\nHost: a\n\r\n\r\n", 8192 },
        { "GET / HTTP/1.1\r\nHost: a\r\n\n\r\n\r\n", 8192 },
        // Leading empty lines are skipped, and are not part of the head.
        { "\r\n\r\nGET / HTTP/1.1\r\n\r\n", 8192 },
        { "\nGET / HTTP/1.1\r\n\r\n", 8192 },
        // Bare CR inside a line is the parser's business, not the scanner's.
        { "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 8192 },
        // The limit: the head just fits, ends one byte past it, or its end is far past it.
        { "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27 },
        { "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 26 },
        { "GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789\r\n\r\n", 20 },
        // No end yet.
        { "GET / HTTP/1.1\r\nHost: a\r\n", 8192 },
        { "GET / HTTP/1.1\r\nHost: a\r\n\r", 8192 },
    };

    [Theory]
    [MemberData(nameof(Heads))]
    public void OneSegmentFindsWhatTheLineScanFinds(string text, int limit)
    {
        var bytes = Http1Bytes.Of(text);
        var whole = Take(new ReadOnlySequence<byte>(bytes), limit);
        var lineByLine = Take(Http1Bytes.Segmented(bytes, 1), limit);
        Assert.Equal(lineByLine, whole);
    }

    [Fact]
    public void TheOneSearchPathStopsAtTheFirstEmptyLine()
    {
        var (result, end, head) = Take(new ReadOnlySequence<byte>(Http1Bytes.Of("GET / HTTP/1.1\r\nHost: a\n\r\nX: b\r\n\r\n")), 8192);
        Assert.Equal(HeadScanResult.Complete, result);
        Assert.Equal(26, end);
        Assert.Equal("GET / HTTP/1.1\r\nHost: a\n\r\n", head);
    }

    [Fact]
    public void AHeadTooLargeIsReportedWhetherOrNotItsEndArrived()
    {
        var head = "GET / HTTP/1.1\r\nX: " + new string('a', 100) + "\r\n\r\n";
        Assert.Equal(HeadScanResult.TooLarge, Take(new ReadOnlySequence<byte>(Http1Bytes.Of(head)), 64).Result);
        Assert.Equal(HeadScanResult.TooLarge, Take(new ReadOnlySequence<byte>(Http1Bytes.Of(head[..80])), 64).Result);
    }

    [Fact]
    public void AHugeLimitDoesNotOverflowTheSearchWindow()
    {
        var (result, end, _) = Take(new ReadOnlySequence<byte>(Http1Bytes.Of("GET / HTTP/1.1\r\n\r\n")), int.MaxValue);
        Assert.Equal(HeadScanResult.Complete, result);
        Assert.Equal(18, end);
    }

    private static (HeadScanResult Result, long End, string Head) Take(ReadOnlySequence<byte> buffer, int limit)
    {
        var scanner = default(HeadScanner);
        var result = scanner.Take(buffer, limit, out var end, out var head);
        return (result, end, Http1Bytes.Text(head));
    }
}
