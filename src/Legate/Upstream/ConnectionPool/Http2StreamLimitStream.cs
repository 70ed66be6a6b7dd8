using System.Buffers.Binary;
using Legate.Network;

namespace Legate.Upstream.ConnectionPool;

/// <summary>
/// An upstream HTTP/2 connection's stream as .NET's client reads it, with the upstream's
/// SETTINGS_MAX_CONCURRENT_STREAMS lowered to the cluster's <c>max_concurrent_streams</c>. The client
/// has no per-connection stream limit of its own, but it honours the server's: it opens another
/// connection when every connection is at that limit, which is exactly Envoy's rule for the field
/// (at most that many streams per upstream connection, the pool adding connections beyond).
/// </summary>
/// <remarks>
/// Only the server's first frame is read here: the connection preface, which RFC 9113 §3.4 requires
/// to be a SETTINGS frame. Its MAX_CONCURRENT_STREAMS entry becomes the smaller of the two values, or
/// the limit is added when the server sent none (the default is unlimited); every later byte passes
/// untouched, so a server that changes the setting afterwards is taken at its word, and the cost is
/// one copy of the first read. A first frame that is not a well-formed SETTINGS frame passes as is,
/// for the client to reject.
/// </remarks>
internal sealed class Http2StreamLimitStream : DelegatingStream
{
    private const int FrameHeaderLength = 9;
    private const byte SettingsFrame = 0x4;
    private const byte AckFlag = 0x1;
    private const ushort MaxConcurrentStreamsSetting = 0x3;
    private const int SettingLength = 6;

    // The largest preface read whole: SETTINGS has at most a few entries; a longer one passes as is.
    private const int MaxPrefaceLength = 16 * 1024;

    private readonly uint _maxConcurrentStreams;

    // The rewritten preface (and whatever followed it in the same reads), handed out before anything else.
    private byte[]? _pending;
    private int _pendingOffset;
    private int _pendingCount;
    private bool _prefaceDone;

    public Http2StreamLimitStream(Stream inner, uint maxConcurrentStreams)
        : base(inner)
    {
        ArgumentOutOfRangeException.ThrowIfZero(maxConcurrentStreams);
        _maxConcurrentStreams = maxConcurrentStreams;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_prefaceDone)
        {
            await ReadPrefaceAsync(cancellationToken).ConfigureAwait(false);
        }

        return _pendingCount > 0 ? TakePending(buffer.Span) : await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(Span<byte> buffer)
    {
        if (!_prefaceDone)
        {
            ReadPrefaceAsync(CancellationToken.None, synchronous: true).AsTask().GetAwaiter().GetResult();
        }

        return _pendingCount > 0 ? TakePending(buffer) : Inner.Read(buffer);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer) => Inner.Write(buffer);

    public override void Write(byte[] buffer, int offset, int count) => Inner.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => Inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Inner.WriteAsync(buffer, offset, count, cancellationToken);

    /// <summary>
    /// Reads until the first frame is whole (or the connection ends, or it proves not to be a
    /// SETTINGS frame of a sane size), then leaves it, rewritten, and the bytes after it pending.
    /// </summary>
    private async ValueTask ReadPrefaceAsync(CancellationToken cancellationToken, bool synchronous = false)
    {
        var buffer = new byte[MaxPrefaceLength + FrameHeaderLength + SettingLength];
        var count = 0;
        var frameLength = -1;
        while (true)
        {
            if (count >= FrameHeaderLength && frameLength < 0)
            {
                var length = (buffer[0] << 16) | (buffer[1] << 8) | buffer[2];
                var isSettings = buffer[3] == SettingsFrame && (buffer[4] & AckFlag) == 0 && (BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(5)) & 0x7FFFFFFF) == 0;
                if (!isSettings || length > MaxPrefaceLength || length % SettingLength != 0)
                {
                    break;
                }

                frameLength = FrameHeaderLength + length;
            }

            if (frameLength >= 0 && count >= frameLength)
            {
                count = Rewrite(buffer, frameLength, count);
                break;
            }

            var room = buffer.AsMemory(count, MaxPrefaceLength + FrameHeaderLength - count);
            var read = synchronous ? Inner.Read(room.Span) : await Inner.ReadAsync(room, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            count += read;
        }

        _pending = buffer;
        _pendingOffset = 0;
        _pendingCount = count;
        _prefaceDone = true;
    }

    /// <summary>Caps (or adds) MAX_CONCURRENT_STREAMS in the SETTINGS frame at the start of <paramref name="buffer"/>; the new byte count.</summary>
    private int Rewrite(byte[] buffer, int frameLength, int count)
    {
        for (var entry = FrameHeaderLength; entry < frameLength; entry += SettingLength)
        {
            if (BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(entry)) == MaxConcurrentStreamsSetting)
            {
                var value = BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(entry + 2));
                BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(entry + 2), Math.Min(value, _maxConcurrentStreams));
                return count;
            }
        }

        // None sent (unlimited): the limit is added as the frame's last entry.
        buffer.AsSpan(frameLength, count - frameLength).CopyTo(buffer.AsSpan(frameLength + SettingLength));
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(frameLength), MaxConcurrentStreamsSetting);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(frameLength + 2), _maxConcurrentStreams);
        var length = frameLength - FrameHeaderLength + SettingLength;
        buffer[0] = (byte)(length >> 16);
        buffer[1] = (byte)(length >> 8);
        buffer[2] = (byte)length;
        return count + SettingLength;
    }

    private int TakePending(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, _pendingCount);
        _pending.AsSpan(_pendingOffset, n).CopyTo(destination);
        _pendingOffset += n;
        _pendingCount -= n;
        if (_pendingCount == 0)
        {
            _pending = null;
        }

        return n;
    }
}
