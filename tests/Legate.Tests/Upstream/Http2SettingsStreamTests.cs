using Legate.Upstream.ConnectionPool;

namespace Legate.Tests.Upstream;

/// <summary>
/// The connection prefaces through <see cref="Http2SettingsStream"/>: the upstream's
/// SETTINGS_MAX_CONCURRENT_STREAMS lowered to the cluster's limit (or added) as .NET's client reads it,
/// however the bytes arrive, and the client's HEADER_TABLE_SIZE likewise as it writes it; every other
/// byte as it was.
/// </summary>
public sealed class Http2SettingsStreamTests
{
    // A PING frame (type 6) after the preface: must pass untouched.
    private static readonly byte[] s_ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public async Task TheServersHigherLimitIsLowered(int chunk)
    {
        var preface = Settings((0x4, 65535), (0x3, 100), (0x6, 32768));
        var read = await ReadAllAsync([.. preface, .. s_ping], max: 2, chunk);

        Assert.Equal([.. Settings((0x4, 65535), (0x3, 2), (0x6, 32768)), .. s_ping], read);
    }

    [Fact]
    public async Task TheServersLowerLimitStands()
    {
        byte[] wire = [.. Settings((0x3, 1)), .. s_ping];
        var read = await ReadAllAsync(wire, max: 5, chunk: 3);

        Assert.Equal(wire, read);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    public async Task ALimitIsAddedWhenTheServerSentNone(int chunk)
    {
        var read = await ReadAllAsync([.. Settings((0x4, 65535)), .. s_ping], max: 3, chunk);

        Assert.Equal([.. Settings((0x4, 65535), (0x3, 3)), .. s_ping], read);
    }

    [Fact]
    public async Task AnEmptyPrefaceGetsTheLimit()
    {
        var read = await ReadAllAsync([.. Settings(), .. s_ping], max: 4, chunk: 2);

        Assert.Equal([.. Settings((0x3, 4)), .. s_ping], read);
    }

    [Fact]
    public async Task AFirstFrameThatIsNotSettingsPassesAsIs()
    {
        // Not a valid preface: left for the client to reject. A later SETTINGS frame is not touched either.
        byte[] wire = [.. s_ping, .. Settings((0x3, 100))];
        var read = await ReadAllAsync(wire, max: 2, chunk: 5);

        Assert.Equal(wire, read);
    }

    [Fact]
    public void SynchronousReadsSeeTheSameBytes()
    {
        using var stream = new Http2SettingsStream(new TrickleStream([.. Settings((0x3, 100)), .. s_ping], 2), 7, null);
        var read = new List<byte>();
        var buffer = new byte[5];
        int n;
        while ((n = stream.Read(buffer)) > 0)
        {
            read.AddRange(buffer.AsSpan(0, n).ToArray());
        }

        Assert.Equal([.. Settings((0x3, 7)), .. s_ping], read);
    }

    [Fact]
    public async Task TheClientsHeaderTableSizeIsAddedToItsFirstSettingsOnly()
    {
        // What .NET's client writes first: the magic, SETTINGS (ENABLE_PUSH 0, INITIAL_WINDOW_SIZE), a WINDOW_UPDATE.
        byte[] windowUpdate = [0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0x10, 0];
        byte[] first = [.. Magic, .. Settings((0x2, 0), (0x4, 65535)), .. windowUpdate];
        var written = new MemoryStream();
        await using (var stream = new Http2SettingsStream(written, null, 0))
        {
            await stream.WriteAsync(first);
            stream.Write(Settings((0x1, 4096)));
        }

        Assert.Equal([.. Magic, .. Settings((0x2, 0), (0x4, 65535), (0x1, 0)), .. windowUpdate, .. Settings((0x1, 4096))], written.ToArray());
    }

    [Fact]
    public void AFirstWriteShorterThanAPrefacePassesAsIs()
    {
        // Not how .NET writes, but a first write of the magic alone must neither fail nor change.
        var written = new MemoryStream();
        using var stream = new Http2SettingsStream(written, null, 0);
        stream.Write(Magic);
        stream.Write(Settings((0x2, 0)));

        Assert.Equal([.. Magic, .. Settings((0x2, 0))], written.ToArray());
    }

    [Fact]
    public void TheClientsLowerHeaderTableSizeStandsAndReadsPassUntouched()
    {
        byte[] server = [.. Settings((0x3, 100)), .. s_ping];
        var written = new MemoryStream();
        using var stream = new Http2SettingsStream(new TrickleStream(server, 64, written), null, 1024);
        stream.Write([.. Magic, .. Settings((0x1, 512))]);
        var read = new byte[server.Length];
        stream.ReadExactly(read);

        Assert.Equal([.. Magic, .. Settings((0x1, 512))], written.ToArray());
        Assert.Equal(server, read);
    }

    private static async Task<byte[]> ReadAllAsync(byte[] wire, uint max, int chunk)
    {
        await using var stream = new Http2SettingsStream(new TrickleStream(wire, chunk), max, null);
        var read = new List<byte>();
        var buffer = new byte[chunk + 3];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            read.AddRange(buffer.AsSpan(0, n).ToArray());
        }

        return [.. read];
    }

    private static byte[] Settings(params (ushort Id, uint Value)[] entries)
    {
        var frame = new byte[9 + (6 * entries.Length)];
        var length = 6 * entries.Length;
        frame[0] = (byte)(length >> 16);
        frame[1] = (byte)(length >> 8);
        frame[2] = (byte)length;
        frame[3] = 0x4;
        for (var i = 0; i < entries.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(9 + (6 * i)), entries[i].Id);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(11 + (6 * i)), entries[i].Value);
        }

        return frame;
    }

    private static byte[] Magic => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    /// <summary>Hands out its bytes at most <c>chunk</c> at a time, as a socket may; writes go to <c>writes</c>.</summary>
    private sealed class TrickleStream(byte[] bytes, int chunk, Stream? writes = null) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanWrite => writes is not null;

        public override bool CanSeek => false;

        public override long Length => bytes.Length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Math.Min(Math.Min(chunk, buffer.Length), bytes.Length - _position);
            bytes.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => (writes ?? throw new NotSupportedException()).Write(buffer, offset, count);
    }
}
