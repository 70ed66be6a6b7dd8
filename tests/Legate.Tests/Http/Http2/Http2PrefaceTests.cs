using System.IO.Pipelines;
using System.Text;
using Legate.Http.Http2;

namespace Legate.Tests.Http.Http2;

/// <summary>codec_type AUTO: the HTTP/2 preface check peeks without consuming.</summary>
public sealed class Http2PrefaceTests
{
    [Theory]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", true)]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04", true)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n\r\n", false)]
    [InlineData("PUT / HTTP/1.1\r\nHost: a\r\n\r\n", false)]
    [InlineData("PRI * HTTP/1.1\r\n\r\n", false)]
    public async Task DetectsThePrefaceAndLeavesTheBytesInThePipe(string sent, bool expected)
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Encoding.Latin1.GetBytes(sent));

        Assert.Equal(expected, await Http2Preface.DetectAsync(pipe.Reader, CancellationToken.None));

        var result = await pipe.Reader.ReadAsync();
        Assert.Equal(sent, Encoding.Latin1.GetString(result.Buffer));
    }

    [Fact]
    public async Task WaitsForTheWholePrefaceWhenItArrivesInPieces()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("PRI * HT"u8.ToArray());

        var detect = Http2Preface.DetectAsync(pipe.Reader, CancellationToken.None).AsTask();
        Assert.False(detect.IsCompleted);
        await pipe.Writer.WriteAsync("TP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());

        Assert.True(await detect);
        Assert.Equal(24, (await pipe.Reader.ReadAsync()).Buffer.Length);
    }

    [Fact]
    public async Task APeerThatClosesEarlyIsNotHttp2()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("PRI"u8.ToArray());
        await pipe.Writer.CompleteAsync();

        Assert.False(await Http2Preface.DetectAsync(pipe.Reader, CancellationToken.None));
    }

    [Fact]
    public async Task CancellationEndsTheWait()
    {
        var pipe = new Pipe();
        using var cancel = new CancellationTokenSource();

        var detect = Http2Preface.DetectAsync(pipe.Reader, cancel.Token).AsTask();
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => detect);
    }
}
