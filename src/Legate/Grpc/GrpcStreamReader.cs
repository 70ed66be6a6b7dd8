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
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            if (await ReadFullyAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false) < length)
            {
                throw new GrpcException(GrpcStatusCode.Internal, "the stream ended inside a message");
            }

            try
            {
                return parser.ParseFrom(buffer, 0, length);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new GrpcException(GrpcStatusCode.Internal, $"cannot parse {typeof(T).Name}: {ex.Message}", ex);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
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
