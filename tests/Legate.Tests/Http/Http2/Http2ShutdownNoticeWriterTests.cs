using System.Buffers;
using System.IO.Pipelines;
using Legate.Http.Http2;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// The shutdown notice goes between frames only: asked for while the codec is inside a frame (header
/// written, payload not yet), it follows the frame; asked for at a boundary, it is written and flushed at once.
/// </summary>
public sealed class Http2ShutdownNoticeWriterTests
{
    private static readonly byte[] s_notice = [0, 0, 8, 7, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0];

    [Fact]
    public async Task NoticeAskedForInsideAFrameFollowsThatFrame()
    {
        var pipe = new Pipe();
        var writer = new Http2ShutdownNoticeWriter(pipe.Writer);
        byte[] header = [0, 0, 5, 0, 0, 0, 0, 0, 1]; // DATA, 5 bytes, stream 1

        writer.Write(header);
        writer.Write("he"u8);
        Assert.True(writer.SendShutdownNotice());
        Assert.False(writer.NoticeSent);
        writer.Write("llo"u8);
        Assert.True(writer.NoticeSent);
        await writer.FlushAsync();

        var read = await pipe.Reader.ReadAsync();
        Assert.Equal([.. header, .. "hello"u8.ToArray(), .. s_notice], read.Buffer.ToArray());
        Assert.False(writer.SendShutdownNotice());
    }

    [Fact]
    public async Task NoticeAtABoundaryIsWrittenAndFlushedAtOnce()
    {
        var pipe = new Pipe();
        var writer = new Http2ShutdownNoticeWriter(pipe.Writer);
        byte[] ping = [0, 0, 8, 6, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]; // PING ACK
        writer.Write(ping);
        await writer.FlushAsync();

        Assert.True(writer.SendShutdownNotice());

        var read = await pipe.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal([.. ping, .. s_notice], read.Buffer.ToArray());
    }
}
