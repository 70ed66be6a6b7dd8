using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Legate.Http.Http2;

/// <summary>
/// A connection Legate accepted, as handed to Kestrel's HTTP/2 codec: everything delegates to the
/// transport connection, and <see cref="Completion"/> completes once Kestrel is done with it (Kestrel
/// disposes every connection it accepted when its connection loop ends). Kestrel owns the
/// transport from the hand-over on; Legate's listener only waits for <see cref="Completion"/>.
/// </summary>
internal sealed class Http2BridgedConnection : ConnectionContext
{
    private readonly ConnectionContext _inner;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;
    private IDuplexPipe _transport;

    public Http2BridgedConnection(ConnectionContext inner, Http2ConnectionInfo info)
    {
        _inner = inner;
        Info = info;
        inner.Features.Set(info);

        // Legate's own transports bring no memory pool; Kestrel's socket transport brings its own.
        if (inner.Features.Get<IMemoryPoolFeature>() is null)
        {
            inner.Features.Set<IMemoryPoolFeature>(PooledBlocks.Instance);
        }

        ShutdownNotice = new Http2ShutdownNoticeWriter(inner.Transport.Output);
        _transport = new NoticePipe(inner.Transport.Input, ShutdownNotice);
    }

    /// <summary>Kestrel's output, through which a drain sends its GOAWAY shutdown notice.</summary>
    public Http2ShutdownNoticeWriter ShutdownNotice { get; }

    /// <summary>What every stream of this connection needs to know about it (addresses, TLS).</summary>
    public Http2ConnectionInfo Info { get; }

    /// <summary>Completes when the connection is closed and disposed.</summary>
    public Task Completion => _completion.Task;

    public override string ConnectionId
    {
        get => _inner.ConnectionId;
        set => _inner.ConnectionId = value;
    }

    public override IFeatureCollection Features => _inner.Features;

    public override IDictionary<object, object?> Items
    {
        get => _inner.Items;
        set => _inner.Items = value;
    }

    public override IDuplexPipe Transport
    {
        get => _transport;
        set => _transport = value;
    }

    public override EndPoint? LocalEndPoint
    {
        get => _inner.LocalEndPoint;
        set => _inner.LocalEndPoint = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => _inner.RemoteEndPoint;
        set => _inner.RemoteEndPoint = value;
    }

    public override CancellationToken ConnectionClosed
    {
        get => _inner.ConnectionClosed;
        set => _inner.ConnectionClosed = value;
    }

    public override void Abort(ConnectionAbortedException abortReason) => _inner.Abort(abortReason);

    public override void Abort() => _inner.Abort();

    private sealed class PooledBlocks : IMemoryPoolFeature
    {
        public static readonly PooledBlocks Instance = new();

        public System.Buffers.MemoryPool<byte> MemoryPool => Legate.Network.BlockMemoryPool.Instance;
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await _inner.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The socket went away first; closing it is all that was left to do.
        }
        finally
        {
            _completion.TrySetResult();
        }
    }

    private sealed class NoticePipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
