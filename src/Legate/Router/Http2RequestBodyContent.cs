using System.IO.Pipelines;
using System.Net;

namespace Legate.Router;

/// <summary>
/// The request body of an upstream HTTP/2 exchange as an <see cref="HttpContent"/>: the router
/// writes what <c>DecodeDataAsync</c> delivers into <see cref="Writer"/>, the HTTP/2 client reads
/// it out as DATA frames, each flushed as it comes (a gRPC message is not held back). The pipe
/// pauses the writer at the cluster's buffer limit: a slow upstream slows the downstream reads.
/// </summary>
internal sealed class Http2RequestBodyContent : HttpContent
{
    private readonly Pipe _pipe;

    public Http2RequestBodyContent(int bufferLimitBytes)
    {
        var pause = Math.Max(bufferLimitBytes, 16 * 1024);
        _pipe = new Pipe(new PipeOptions(pauseWriterThreshold: pause, resumeWriterThreshold: pause / 2, useSynchronizationContext: false));
    }

    /// <summary>Written by the router only; completed at the end of the request.</summary>
    public PipeWriter Writer => _pipe.Writer;

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var reader = _pipe.Reader;
        try
        {
            while (true)
            {
                if (!reader.TryRead(out var result))
                {
                    // Nothing to send yet: flush what the HTTP/2 client holds back first. It keeps a
                    // HEADERS frame without END_STREAM unflushed until the first DATA write
                    // (dotnet/runtime#30295), and a bidirectional call whose upstream answers
                    // before the client's first message would otherwise never reach the upstream.
                    await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                    result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                }

                var buffer = result.Buffer;
                if (!buffer.IsEmpty)
                {
                    foreach (var segment in buffer)
                    {
                        await stream.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
                    }

                    await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                }

                reader.AdvanceTo(buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        finally
        {
            // Also when the upstream stream ended first (response complete, reset, cancelled): the
            // router's pending flush then returns completed and it stops writing. No exception is
            // passed on: it would surface in the router's flush instead of the response path.
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
