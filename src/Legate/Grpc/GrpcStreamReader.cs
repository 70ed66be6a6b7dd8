using System.Buffers;
using Google.Protobuf;

namespace Legate.Grpc;

/// <summary>Reads length-prefixed gRPC messages from a response body stream.</summary>
internal sealed class GrpcStreamReader
{
    private readonly Stream _stream;
    private readonly int _maxMessageBytes;
    private readonly byte[] _prefix = new byte[GrpcProtocol.PrefixLength];

    public GrpcStreamReader(Stream stream, int maxMessageBytes)
    {
        _stream = stream;
        _maxMessageBytes = maxMessageBytes;
    }

    /// <summary>The next message, or null at a clean end of the stream (between messages).</summary>
    public async ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        using var frame = await ReadFrameAsync(cancellationToken).ConfigureAwait(false);
        if (frame is null)
        {
            return null;
        }

        try
        {
            return parser.ParseFrom(frame.Message.Span);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new GrpcException(GrpcStatusCode.Internal, $"cannot parse {typeof(T).Name}: {ex.Message}", ex);
        }
    }

    /// <summary>The next message's bytes (in a pooled buffer the caller disposes), or null at a clean end of the stream.</summary>
    public async ValueTask<GrpcFrame?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        var read = await ReadFullyAsync(_prefix, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            return null;
        }

        if (read < _prefix.Length)
        {
            throw new GrpcException(GrpcStatusCode.Internal, "the stream ended inside a message prefix");
        }

        var length = GrpcProtocol.ReadPrefix(_prefix, _maxMessageBytes);
        var frame = new GrpcFrame(ArrayPool<byte>.Shared.Rent(Math.Max(length, 1)), length);
        try
        {
            if (await ReadFullyAsync(frame.Writable, cancellationToken).ConfigureAwait(false) < length)
            {
                throw new GrpcException(GrpcStatusCode.Internal, "the stream ended inside a message");
            }

            return frame;
        }
        catch
        {
            frame.Dispose();
            throw;
        }
    }

    private async ValueTask<int> ReadFullyAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await _stream.ReadAsync(buffer[total..], cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    /// <summary>Frames <paramref name="message"/> (prefix + bytes) into one array.</summary>
    public static byte[] Frame(IMessage message)
    {
        var size = message.CalculateSize();
        var bytes = new byte[GrpcProtocol.PrefixLength + size];
        GrpcProtocol.WritePrefix(bytes, size);
        message.WriteTo(bytes.AsSpan(GrpcProtocol.PrefixLength));
        return bytes;
    }
}
