using System.Net;
using System.Threading.Channels;

namespace Legate.Grpc;

/// <summary>
/// A request body that stays open for the life of a streaming call: every framed message queued
/// with <see cref="Enqueue"/> is written and flushed at once (one DATA frame each on HTTP/2), and
/// <see cref="Complete"/> ends the stream (END_STREAM). With <see cref="SocketsHttpHandler"/> on
/// HTTP/2 the response is read while this body is still being written: a full-duplex call.
/// </summary>
internal sealed class GrpcRequestContent : HttpContent
{
    private readonly Channel<byte[]> _messages = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });

    public GrpcRequestContent()
    {
        Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);
    }

    /// <summary>False once the body was completed or the call ended.</summary>
    public bool Enqueue(byte[] framedMessage) => _messages.Writer.TryWrite(framedMessage);

    public void Complete() => _messages.Writer.TryComplete();

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var reader = _messages.Reader;
        while (true)
        {
            if (!reader.TryRead(out var message))
            {
                // Nothing to send now: flush first. SocketsHttpHandler holds a HEADERS frame without
                // END_STREAM back until the first DATA write (dotnet/runtime#30295), so a call that
                // waits for the server before sending would otherwise never start.
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                if (!await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }

            await stream.WriteAsync(message, cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        _messages.Writer.TryComplete();
        base.Dispose(disposing);
    }
}
