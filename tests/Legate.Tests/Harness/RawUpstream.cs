using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Legate.Tests.Harness;

/// <summary>
/// An upstream the test scripts byte by byte: a plain TCP listener on <c>127.0.0.1</c>, port 0,
/// running <c>handler</c> on each accepted connection. Use it where Kestrel cannot produce the
/// bytes (HTTP/1.1 response trailers, garbage, a close before the head, exact framing) or where the
/// test must control reads and writes (back-pressure). Connections are also handed to
/// <see cref="NextConnectionAsync"/> in order of acceptance. Handler exceptions are kept in
/// <see cref="Errors"/> (a test can assert there were none); dispose closes everything.
/// </summary>
internal sealed class RawUpstream : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly Func<RawHttpConnection, Task> _handler;
    private readonly int? _sendBuffer;
    private readonly int? _receiveBuffer;
    private readonly Channel<RawHttpConnection> _accepted = Channel.CreateUnbounded<RawHttpConnection>();
    private readonly List<RawHttpConnection> _connections = new();
    private readonly List<Exception> _errors = new();
    private readonly List<Task> _running = new();
    private readonly Lock _lock = new();
    private readonly Task _acceptLoop;
    private int _count;

    private RawUpstream(Func<RawHttpConnection, Task> handler, int? sendBuffer, int? receiveBuffer)
    {
        _handler = handler;
        _sendBuffer = sendBuffer;
        _receiveBuffer = receiveBuffer;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (receiveBuffer is { } size)
        {
            // Set before listen so accepted sockets start with it (the window is negotiated at SYN).
            _listener.ReceiveBufferSize = size;
        }

        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(512);
        _acceptLoop = AcceptLoopAsync();
    }

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndPoint!;

    public int Port => Endpoint.Port;

    /// <summary>Connections accepted so far.</summary>
    public int ConnectionCount => Volatile.Read(ref _count);

    public IReadOnlyList<Exception> Errors
    {
        get
        {
            lock (_lock)
            {
                return _errors.ToArray();
            }
        }
    }

    /// <param name="sendBuffer">SO_SNDBUF for accepted sockets (small values make writes block early).</param>
    /// <param name="receiveBuffer">SO_RCVBUF for accepted sockets.</param>
    public static RawUpstream Start(Func<RawHttpConnection, Task> handler, int? sendBuffer = null, int? receiveBuffer = null) =>
        new(handler, sendBuffer, receiveBuffer);

    /// <summary>A handler that answers every request on the connection with <paramref name="respond"/>'s bytes until the peer closes.</summary>
    public static RawUpstream Serve(Func<RawRequest, string> respond) => Start(async connection =>
    {
        while (await connection.ReadRequestAsync() is { } request)
        {
            await connection.WriteAsync(respond(request));
        }
    });

    /// <summary>The next accepted connection (in order), waiting up to 30 s.</summary>
    public async Task<RawHttpConnection> NextConnectionAsync() =>
        await _accepted.Reader.ReadAsync().AsTask().WaitAsync(RawHttpConnection.Timeout);

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }

            socket.NoDelay = true;
            if (_sendBuffer is { } send)
            {
                socket.SendBufferSize = send;
            }

            var connection = new RawHttpConnection(socket, Interlocked.Increment(ref _count));
            lock (_lock)
            {
                _connections.Add(connection);
                _running.Add(RunAsync(connection));
            }

            _accepted.Writer.TryWrite(connection);
        }
    }

    private async Task RunAsync(RawHttpConnection connection)
    {
        await Task.Yield();
        try
        {
            await _handler(connection);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or EndOfStreamException)
        {
            // The proxy closed or reset the connection: often exactly what a test provokes.
        }
        catch (Exception ex)
        {
            lock (_lock)
            {
                _errors.Add(ex);
            }
        }
        finally
        {
            await connection.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _acceptLoop;
        RawHttpConnection[] connections;
        Task[] running;
        lock (_lock)
        {
            connections = _connections.ToArray();
            running = _running.ToArray();
        }

        foreach (var connection in connections)
        {
            connection.Socket.Dispose();
        }

        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(30));
    }
}
