using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Legate.Tls;

/// <summary>
/// A TLS-terminated downstream connection as the HTTP codecs see it: a <see cref="ConnectionContext"/>
/// whose pipes read and write the TLS stream (an <see cref="SslStream"/> or an <see cref="OpenSsl.OpenSslStream"/>). A read loop fills the input pipe (which
/// stops reading at the per-connection buffer limit, the same back-pressure as the plaintext
/// transport) and fires <see cref="ConnectionClosed"/> when the peer goes away; writes go straight
/// to the stream. The <see cref="TlsSessionInfo"/> is a connection feature.
/// </summary>
internal sealed class TlsConnection : ConnectionContext
{
    private readonly Stream _stream;
    private readonly Pipe _input;
    private readonly PipeWriter _output;
    private readonly CancellationTokenSource _closed = new();
    private readonly Task _readLoop;
    private int _disposed;

    public TlsConnection(Stream stream, TlsSessionInfo session, EndPoint? local, EndPoint? remote, int bufferLimit)
    {
        _stream = stream;
        var limit = Math.Max(bufferLimit, 16 * 1024);
        _input = new Pipe(new PipeOptions(
            pool: MemoryPool<byte>.Shared, pauseWriterThreshold: limit, resumeWriterThreshold: limit / 2,
            readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false));
        _output = PipeWriter.Create(stream, new StreamPipeWriterOptions(pool: MemoryPool<byte>.Shared, leaveOpen: true));
        Transport = new DuplexPipe(_input.Reader, _output);
        LocalEndPoint = local;
        RemoteEndPoint = remote;
        Session = session;
        Features.Set(session);
        ConnectionClosed = _closed.Token;
        _readLoop = ReadLoopAsync();
    }

    public TlsSessionInfo Session { get; }

    public override string ConnectionId { get; set; } = Guid.NewGuid().ToString("N");

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed { get; set; }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        Cancel();
        _stream.Dispose();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await _output.CompleteAsync().ConfigureAwait(false);
            await TlsStreams.ShutdownAsync(_stream).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or NotSupportedException)
        {
            // The peer went first; nothing left to say.
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        await _readLoop.ConfigureAwait(false);
        _closed.Dispose();
    }

    private async Task ReadLoopAsync()
    {
        await Task.Yield();
        var writer = _input.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                var memory = writer.GetMemory(8192);
                var read = await _stream.ReadAsync(memory).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                writer.Advance(read);
                var result = await writer.FlushAsync().ConfigureAwait(false);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or System.Security.Authentication.AuthenticationException)
        {
            error = new ConnectionResetException(ex.Message, ex);
        }
        finally
        {
            await writer.CompleteAsync(error).ConfigureAwait(false);
            Cancel();
        }
    }

    private void Cancel()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
