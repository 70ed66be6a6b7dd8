using System.Buffers.Binary;
using Legate.Network;

namespace Legate.Upstream.ConnectionPool;

/// <summary>
/// An upstream HTTP/2 connection's stream under .NET's client, carrying the two cluster settings the
/// client has no option for into the SETTINGS frames of the connection prefaces:
/// <list type="bullet">
/// <item><c>max_concurrent_streams</c>: the server's SETTINGS_MAX_CONCURRENT_STREAMS is lowered to it as
/// the client reads it. The client has no per-connection stream limit of its own, but it honours the
/// server's and opens another connection when every connection is at it, which is exactly Envoy's
/// rule for the field (at most that many streams per connection, the pool adding connections).</item>
/// <item><c>hpack_table_size</c>: the client's SETTINGS_HEADER_TABLE_SIZE (the dynamic table the server's
/// encoder may use for responses) is lowered to it as the client writes it. The client's decoder table
/// is 4096 bytes, HTTP/2's default and Envoy's, so only smaller values change anything; the client's
/// own encoder uses no dynamic table.</item>
/// </list>
/// </summary>
/// <remarks>
/// Only the first frame each way is looked at: the connection prefaces, which RFC 9113 §3.4 requires
/// to start with a SETTINGS frame. An entry present becomes the smaller of the two values, a missing
/// one is added; every later byte passes untouched, so a peer that changes a setting afterwards is
/// taken at its word, and the cost is one copy of the first read and of the first write. A preface
/// that is not a well-formed SETTINGS frame passes as is, for the other side to reject.
/// </remarks>
internal sealed class Http2SettingsStream : DelegatingStream
{
    private const int FrameHeaderLength = 9;
    private const byte SettingsFrame = 0x4;
    private const byte AckFlag = 0x1;
    private const ushort HeaderTableSizeSetting = 0x1;
    private const ushort MaxConcurrentStreamsSetting = 0x3;
    private const int SettingLength = 6;

    // The largest preface read whole: SETTINGS has at most a few entries; a longer one passes as is.
    private const int MaxPrefaceLength = 16 * 1024;

    private static ReadOnlySpan<byte> ClientMagic => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    private readonly uint _maxConcurrentStreams;
    private readonly uint? _headerTableSize;

    // The rewritten server preface (and whatever followed it in the same reads), handed out first.
    private byte[]? _pending;
    private int _pendingOffset;
    private int _pendingCount;
    private bool _serverPrefaceDone;
    private bool _clientPrefaceDone;

    /// <param name="maxConcurrentStreams">The cap on the server's MAX_CONCURRENT_STREAMS, or null to leave it.</param>
    /// <param name="headerTableSize">The cap on the client's HEADER_TABLE_SIZE, or null to leave it.</param>
    public Http2SettingsStream(Stream inner, uint? maxConcurrentStreams, uint? headerTableSize)
        : base(inner)
    {
        if (maxConcurrentStreams == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxConcurrentStreams), "at least one stream");
        }

        _maxConcurrentStreams = maxConcurrentStreams ?? 0;
        _serverPrefaceDone = maxConcurrentStreams is null;
        _headerTableSize = headerTableSize;
        _clientPrefaceDone = headerTableSize is null;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_serverPrefaceDone)
        {
            await ReadServerPrefaceAsync(cancellationToken).ConfigureAwait(false);
        }

        return _pendingCount > 0 ? TakePending(buffer.Span) : await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(Span<byte> buffer)
    {
        if (!_serverPrefaceDone)
        {
            ReadServerPrefaceAsync(CancellationToken.None, synchronous: true).AsTask().GetAwaiter().GetResult();
        }

        return _pendingCount > 0 ? TakePending(buffer) : Inner.Read(buffer);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer) =>
        Inner.Write(_clientPrefaceDone ? buffer : RewriteClientPreface(buffer));

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        Inner.WriteAsync(_clientPrefaceDone ? buffer : RewriteClientPreface(buffer.Span), cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>The client's first write: the magic, then its SETTINGS frame, whole (the client writes them at once).</summary>
    private byte[] RewriteClientPreface(ReadOnlySpan<byte> buffer)
    {
        _clientPrefaceDone = true;
        var start = ClientMagic.Length;
        if (buffer.Length < start + FrameHeaderLength || !buffer.StartsWith(ClientMagic) || !IsSettingsHeader(buffer[start..], out var length) || buffer.Length < start + FrameHeaderLength + length)
        {
            return buffer.ToArray();
        }

        var rewritten = new byte[buffer.Length + SettingLength];
        buffer.CopyTo(rewritten);
        var count = Cap(rewritten, start, FrameHeaderLength + length, buffer.Length, HeaderTableSizeSetting, _headerTableSize!.Value);
        return count == rewritten.Length ? rewritten : rewritten[..count];
    }

    /// <summary>
    /// Reads until the server's first frame is whole (or the connection ends, or it proves not to be
    /// a SETTINGS frame of a sane size), then leaves it, rewritten, and the bytes after it pending.
    /// </summary>
    private async ValueTask ReadServerPrefaceAsync(CancellationToken cancellationToken, bool synchronous = false)
    {
        var buffer = new byte[MaxPrefaceLength + FrameHeaderLength + SettingLength];
        var count = 0;
        var frameLength = -1;
        while (true)
        {
            if (count >= FrameHeaderLength && frameLength < 0)
            {
                if (!IsSettingsHeader(buffer, out var length))
                {
                    break;
                }

                frameLength = FrameHeaderLength + length;
            }

            if (frameLength >= 0 && count >= frameLength)
            {
                count = Cap(buffer, 0, frameLength, count, MaxConcurrentStreamsSetting, _maxConcurrentStreams);
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
        _serverPrefaceDone = true;
    }

    /// <summary>A SETTINGS frame header (not an ACK, stream 0) whose payload is whole entries of a sane size.</summary>
    private static bool IsSettingsHeader(ReadOnlySpan<byte> header, out int length)
    {
        length = (header[0] << 16) | (header[1] << 8) | header[2];
        return header[3] == SettingsFrame
            && (header[4] & AckFlag) == 0
            && (BinaryPrimitives.ReadUInt32BigEndian(header[5..]) & 0x7FFFFFFF) == 0
            && length <= MaxPrefaceLength
            && length % SettingLength == 0;
    }

    /// <summary>
    /// In the SETTINGS frame at <paramref name="frameStart"/> of <paramref name="buffer"/> (which has
    /// room for one more entry after <paramref name="count"/>), lowers setting <paramref name="id"/> to
    /// <paramref name="max"/>, or adds it as the frame's last entry; the new byte count.
    /// </summary>
    private static int Cap(byte[] buffer, int frameStart, int frameLength, int count, ushort id, uint max)
    {
        var frameEnd = frameStart + frameLength;
        for (var entry = frameStart + FrameHeaderLength; entry < frameEnd; entry += SettingLength)
        {
            if (BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(entry)) == id)
            {
                var value = BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(entry + 2));
                BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(entry + 2), Math.Min(value, max));
                return count;
            }
        }

        buffer.AsSpan(frameEnd, count - frameEnd).CopyTo(buffer.AsSpan(frameEnd + SettingLength));
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(frameEnd), id);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(frameEnd + 2), max);
        var length = frameLength - FrameHeaderLength + SettingLength;
        buffer[frameStart] = (byte)(length >> 16);
        buffer[frameStart + 1] = (byte)(length >> 8);
        buffer[frameStart + 2] = (byte)length;
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
