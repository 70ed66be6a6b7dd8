using System.Buffers;

namespace Legate.Grpc;

/// <summary>
/// One received message's bytes, not parsed (for callers that read the wire format themselves,
/// such as a state-of-the-world xDS response of thousands of resources). The buffer is pooled:
/// <see cref="Message"/> is valid until <see cref="Dispose"/>.
/// </summary>
internal sealed class GrpcFrame : IDisposable
{
    private byte[]? _buffer;

    internal GrpcFrame(byte[] buffer, int length)
    {
        _buffer = buffer;
        Length = length;
    }

    public int Length { get; }

    public ReadOnlyMemory<byte> Message => (_buffer ?? throw new ObjectDisposedException(nameof(GrpcFrame))).AsMemory(0, Length);

    /// <summary>The reader fills the buffer through this.</summary>
    internal Memory<byte> Writable => (_buffer ?? throw new ObjectDisposedException(nameof(GrpcFrame))).AsMemory(0, Length);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
