using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Legate.Network.Epoll;

/// <summary>
/// A plaintext TCP connection on Legate's epoll engine as the codecs see it (the same
/// <see cref="ConnectionContext"/> contract as Kestrel's socket transport, which it replaces on
/// Linux): pipes that read and send on the caller's thread, <see cref="ConnectionClosed"/> fired
/// when the peer closes or the connection breaks, <see cref="Abort"/> shutting the socket down.
/// </summary>
internal sealed class EpollConnection : ConnectionContext, IDuplexPipe
{
    private static long s_ids;

    private readonly EpollSocket _socket;
    private readonly EpollPipeReader _input;
    private readonly EpollPipeWriter _output;
    private readonly CancellationTokenSource _closed = new();
    private IFeatureCollection? _features;
    private IDictionary<object, object?>? _items;
    private string? _id;
    private int _closedFired;
    private int _disposed;

    public EpollConnection(EpollSocket socket, int bufferLimit)
    {
        _socket = socket;
        _input = new EpollPipeReader(this, socket, bufferLimit);
        _output = new EpollPipeWriter(this, socket);
        Transport = this;
        LocalEndPoint = socket.Socket.LocalEndPoint;
        RemoteEndPoint = socket.Socket.RemoteEndPoint;
        ConnectionClosed = _closed.Token;
        socket.OnPeerClosed(static state => ((EpollConnection)state).OnTransportClosed(), this);
    }

    public PipeReader Input => _input;

    public PipeWriter Output => _output;

    public override string ConnectionId
    {
        get => _id ??= Interlocked.Increment(ref s_ids).ToString(System.Globalization.CultureInfo.InvariantCulture);
        set => _id = value;
    }

    public override IFeatureCollection Features => _features ??= new FeatureCollection();

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new Dictionary<object, object?>();
        set => _items = value;
    }

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed { get; set; }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        _output.Abort();

        // Kestrel's HTTP/2 codec aborts with a null reason.
        _input.Abort(abortReason ?? new ConnectionAbortedException("the connection was aborted"));
        _socket.Shutdown();
        OnTransportClosed();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // What the codec completed the output with still goes out first (an abort drops it).
        await _output.WhenDrained().ConfigureAwait(false);
        _output.Abort();
        _input.Abort(new ConnectionAbortedException("the connection was closed"));
        _socket.Shutdown();
        _socket.Dispose();
        _input.Release();
        OnTransportClosed();
    }

    /// <summary>
    /// The peer closed, the connection broke or it was closed here: <see cref="ConnectionClosed"/>
    /// fires once, on the thread pool (as Kestrel's transport does: its callbacks may do real work).
    /// </summary>
    public void OnTransportClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) != 0)
        {
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static state => ((CancellationTokenSource)state!).Cancel(), _closed);
    }
}
