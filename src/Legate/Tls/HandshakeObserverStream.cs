namespace Legate.Tls;

/// <summary>
/// The transport under an <see cref="System.Net.Security.SslStream"/>, showing the server's bytes
/// to a <see cref="ResumptionDetector"/> until it has decided: the bytes written on a server
/// (downstream), the bytes read on a client (upstream). Past the decision every call goes straight
/// to the inner stream (its own <see cref="ValueTask"/>, no state machine of ours).
/// </summary>
internal sealed class HandshakeObserverStream : Stream
{
    private readonly Stream _inner;
    private readonly bool _observeWrites;

    /// <param name="observeWrites">True on the server side (it writes the ServerHello), false on the client side.</param>
    public HandshakeObserverStream(Stream inner, bool observeWrites)
    {
        _inner = inner;
        _observeWrites = observeWrites;
    }

    public ResumptionDetector Detector { get; } = new();

    public override bool CanRead => _inner.CanRead;

    public override bool CanWrite => _inner.CanWrite;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _observeWrites || Detector.Decided ? _inner.ReadAsync(buffer, cancellationToken) : ReadObservedAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = _inner.Read(buffer);
        if (!_observeWrites)
        {
            Detector.Feed(buffer[..read]);
        }

        return read;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_observeWrites)
        {
            Detector.Feed(buffer.Span);
        }

        return _inner.WriteAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_observeWrites)
        {
            Detector.Feed(buffer);
        }

        _inner.Write(buffer);
    }

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => _inner.DisposeAsync();

    private async ValueTask<int> ReadObservedAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var read = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Detector.Feed(buffer.Span[..read]);
        return read;
    }
}
