using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Legate.Network.Epoll;

/// <summary>
/// A connected, non-blocking TCP socket on an <see cref="EpollLoop"/>: non-blocking send and
/// receive, and one waiter per direction called back (on the loop thread) at the next readiness
/// edge. Readiness is tracked as nginx does: a receive that returned less than it asked for, or
/// EAGAIN, marks the socket drained, and the next receive waits for an edge without a system call.
/// A sequence number per direction (bumped by every edge) keeps an edge that arrives between the
/// system call and the bookkeeping from being lost.
/// </summary>
internal sealed class EpollSocket
{
    private int _gate; // see SpinGate
    private readonly EpollLoop _loop;
    private Action<object>? _onReadable;
    private object? _readableState;
    private Action<object>? _onWritable;
    private object? _writableState;
    private Action<object>? _onPeerClosed;
    private object? _peerClosedState;
    private int _readSequence;
    private int _writeSequence;
    private bool _readReady = true;
    private bool _writeReady = true;
    private bool _peerClosed;
    private bool _disposed;

    public EpollSocket(Socket socket, EpollLoop loop)
        : this(socket, loop, connecting: false)
    {
    }

    /// <param name="connecting">A non-blocking connect is in progress: not writable until its first write edge.</param>
    private EpollSocket(Socket socket, EpollLoop loop, bool connecting)
    {
        Socket = socket;
        _loop = loop;
        _writeReady = !connecting;
        socket.Blocking = false;
        Fd = (int)socket.Handle;
        loop.Register(this);
    }

    public Socket Socket { get; }

    public int Fd { get; }

    /// <summary>The loop's slot for this socket.</summary>
    public int Slot { get; set; }

    /// <summary>The registration's generation (set once, before the socket is published to the loop).</summary>
    public int Generation { get; set; }

    /// <summary>The peer closed or reset (EPOLLRDHUP, EPOLLHUP or EPOLLERR seen).</summary>
    public bool PeerClosed => Volatile.Read(ref _peerClosed);

    /// <summary>Called once (on the loop thread) when the peer closes or the connection breaks.</summary>
    public void OnPeerClosed(Action<object> callback, object state)
    {
        bool now;
        using (SpinGate.Hold(ref _gate))
        {
            _onPeerClosed = callback;
            _peerClosedState = state;
            now = _peerClosed;
        }

        if (now)
        {
            callback(state);
        }
    }

    /// <summary>
    /// Receives into <paramref name="buffer"/>: bytes read, 0 at the end of the stream, -1 when
    /// nothing is there (wait with <see cref="WaitReadable"/>). Throws <see cref="SocketException"/>
    /// when the connection broke.
    /// </summary>
    public unsafe int TryReceive(Span<byte> buffer)
    {
        var sequence = Volatile.Read(ref _readSequence);
        if (!Volatile.Read(ref _readReady) || _disposed)
        {
            return _disposed ? throw new ObjectDisposedException(nameof(EpollSocket)) : -1;
        }

        nint n;
        fixed (byte* p = buffer)
        {
            do
            {
                n = EpollNative.Recv(Fd, p, buffer.Length, 0);
            }
            while (n < 0 && Marshal.GetLastSystemError() == EpollNative.EINTR);
        }

        if (n < 0)
        {
            var errno = Marshal.GetLastSystemError();
            if (errno != EpollNative.EAGAIN)
            {
                throw Error(errno);
            }

            MarkReadDrained(sequence);
            return -1;
        }

        if (n > 0 && n < buffer.Length)
        {
            // A short read emptied the receive queue: the next byte brings an edge.
            MarkReadDrained(sequence);
        }

        return (int)n;
    }

    /// <summary>Sends from <paramref name="buffer"/>: bytes taken, or -1 when the send buffer is full.</summary>
    public unsafe int TrySend(ReadOnlySpan<byte> buffer)
    {
        var sequence = Volatile.Read(ref _writeSequence);
        if (_disposed)
        {
            throw new ObjectDisposedException(nameof(EpollSocket));
        }

        if (!Volatile.Read(ref _writeReady))
        {
            return -1;
        }

        nint n;
        fixed (byte* p = buffer)
        {
            do
            {
                n = EpollNative.Send(Fd, p, buffer.Length, EpollNative.MSG_NOSIGNAL);
            }
            while (n < 0 && Marshal.GetLastSystemError() == EpollNative.EINTR);
        }

        if (n < 0)
        {
            var errno = Marshal.GetLastSystemError();
            if (errno != EpollNative.EAGAIN)
            {
                throw Error(errno);
            }

            using (SpinGate.Hold(ref _gate))
            {
                if (_writeSequence == sequence)
                {
                    _writeReady = false;
                }
            }

            return -1;
        }

        return (int)n;
    }

    /// <summary>
    /// Calls <paramref name="callback"/> at the next read edge. False when the socket became
    /// readable meanwhile (receive again instead).
    /// </summary>
    public bool WaitReadable(Action<object> callback, object state)
    {
        using (SpinGate.Hold(ref _gate))
        {
            if (_readReady || _disposed)
            {
                return false;
            }

            _onReadable = callback;
            _readableState = state;
            return true;
        }
    }

    /// <summary>Calls <paramref name="callback"/> at the next write edge; false when already writable.</summary>
    public bool WaitWritable(Action<object> callback, object state)
    {
        using (SpinGate.Hold(ref _gate))
        {
            if (_writeReady || _disposed)
            {
                return false;
            }

            _onWritable = callback;
            _writableState = state;
            return true;
        }
    }

    /// <summary>Events from the loop (its thread).</summary>
    public void OnEvents(uint events)
    {
        Action<object>? read = null, write = null, closed = null;
        object? readState = null, writeState = null, closedState = null;
        using (SpinGate.Hold(ref _gate))
        {
            if (_disposed)
            {
                return;
            }

            var broken = (events & (EpollNative.EPOLLERR | EpollNative.EPOLLHUP | EpollNative.EPOLLRDHUP)) != 0;
            if ((events & (EpollNative.EPOLLIN | EpollNative.EPOLLERR | EpollNative.EPOLLHUP | EpollNative.EPOLLRDHUP)) != 0)
            {
                _readSequence++;
                _readReady = true;
                read = _onReadable;
                readState = _readableState;
                _onReadable = null;
                _readableState = null;
            }

            if ((events & (EpollNative.EPOLLOUT | EpollNative.EPOLLERR | EpollNative.EPOLLHUP)) != 0)
            {
                _writeSequence++;
                _writeReady = true;
                write = _onWritable;
                writeState = _writableState;
                _onWritable = null;
                _writableState = null;
            }

            if (broken && !_peerClosed)
            {
                _peerClosed = true;
                closed = _onPeerClosed;
                closedState = _peerClosedState;
            }
        }

        read?.Invoke(readState!);
        write?.Invoke(writeState!);
        closed?.Invoke(closedState!);
    }

    /// <summary>Shuts both directions down (the peer sees the close; waiters wake and fail).</summary>
    public void Shutdown()
    {
        try
        {
            Socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }

        WakeAll();
    }

    /// <summary>Unregisters and closes the descriptor; waiters wake (their next call throws).</summary>
    public void Dispose()
    {
        using (SpinGate.Hold(ref _gate))
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _loop.Unregister(this);
        Socket.Dispose();
        WakeAll();
    }

    private void WakeAll()
    {
        Action<object>? read, write;
        object? readState, writeState;
        using (SpinGate.Hold(ref _gate))
        {
            _readSequence++;
            _writeSequence++;
            _readReady = true;
            _writeReady = true;
            read = _onReadable;
            readState = _readableState;
            write = _onWritable;
            writeState = _writableState;
            _onReadable = null;
            _readableState = null;
            _onWritable = null;
            _writableState = null;
        }

        read?.Invoke(readState!);
        write?.Invoke(writeState!);
    }

    private void MarkReadDrained(int sequence)
    {
        using (SpinGate.Hold(ref _gate))
        {
            // Not after the peer's close was reported: data and FIN may come in one edge, and the
            // read that returned the data leaves the end of the stream for a next read that no
            // edge would trigger (nginx's pending_eof).
            if (_readSequence == sequence && !_peerClosed)
            {
                _readReady = false;
            }
        }
    }

    /// <summary>
    /// Connects <paramref name="socket"/> without .NET's socket engine (which would also watch the
    /// descriptor from then on): a non-blocking connect, then the first write edge.
    /// </summary>
    /// <param name="loop">The loop to register with (tcp_proxy keeps both sides of a connection on one), else the next one.</param>
    public static async ValueTask<EpollSocket> ConnectAsync(Socket socket, IPEndPoint address, CancellationToken cancellationToken, EpollLoop? loop = null)
    {
        socket.Blocking = false;
        var inProgress = false;
        try
        {
            socket.Connect(address);
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
        {
            inProgress = true;
        }

        // Registered as not writable yet: the first write edge says the handshake ended (either
        // way; registering reports one at once if it already has) and SO_ERROR says how.
        var epoll = new EpollSocket(socket, loop ?? EpollLoop.Next(), connecting: inProgress);
        if (inProgress)
        {
            var writable = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (epoll.WaitWritable(static state => ((TaskCompletionSource)state).TrySetResult(), writable))
            {
                try
                {
                    await writable.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    epoll.Dispose();
                    throw;
                }
            }

            var error = (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
            if (error != 0)
            {
                epoll.Dispose();

                // .NET reports SO_ERROR as a SocketError on some versions and as the errno on others.
                throw error >= 10000 ? new SocketException(error) : Error(error);
            }
        }

        return epoll;
    }

    /// <summary>A Linux errno as the <see cref="SocketException"/> .NET's own sockets would throw.</summary>
    internal static SocketException Error(int errno) => new((int)(errno switch
    {
        104 => SocketError.ConnectionReset,
        32 => SocketError.Shutdown,
        111 => SocketError.ConnectionRefused,
        110 => SocketError.TimedOut,
        113 => SocketError.HostUnreachable,
        101 => SocketError.NetworkUnreachable,
        107 => SocketError.NotConnected,
        103 => SocketError.ConnectionAborted,
        9 => SocketError.OperationAborted,
        _ => SocketError.SocketError,
    }));
}
