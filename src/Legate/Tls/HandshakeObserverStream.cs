namespace Legate.Tls;

/// <summary>
/// The transport under an <see cref="System.Net.Security.SslStream"/>, showing the server's bytes
/// to a <see cref="ResumptionDetector"/> until it has decided: the bytes written on a server
/// (downstream), the bytes read on a client (upstream). Past the decision every call goes straight
/// to the inner stream (its own <see cref="ValueTask"/>, no state machine of ours).
/// </summary>
internal sealed class HandshakeObserverStream : Legate.Network.DelegatingStream
{
    private readonly bool _observeWrites;

    /// <param name="observeWrites">True on the server side (it writes the ServerHello), false on the client side.</param>
    public HandshakeObserverStream(Stream inner, bool observeWrites)
        : base(inner)
    {
        _observeWrites = observeWrites;
    }

    public ResumptionDetector Detector { get; } = new();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _observeWrites || Detector.Decided ? Inner.ReadAsync(buffer, cancellationToken) : ReadObservedAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = Inner.Read(buffer);
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

        return Inner.WriteAsync(buffer, cancellationToken);
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

        Inner.Write(buffer);
    }

    private async ValueTask<int> ReadObservedAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var read = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Detector.Feed(buffer.Span[..read]);
        return read;
    }
}
