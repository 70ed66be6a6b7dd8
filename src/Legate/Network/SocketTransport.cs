using System.Net;
using System.Net.Sockets;
using Legate.Network.Epoll;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Legate.Network;

/// <summary>
/// Turns connected sockets (accepted downstream, or connected upstream) into pipe-based
/// connections. On Linux that is Legate's epoll engine (<see cref="EpollConnection"/>: reads and
/// sends on the caller's thread, no read-ahead, no EAGAIN receive per message); elsewhere, or with
/// <c>LEGATE_SOCKET_ENGINE=dotnet</c>, Kestrel's socket transport: its pooled buffers, its I/O
/// scheduling and its back-pressure. Either way <c>maxReadBufferSize</c> is the per-connection
/// buffer limit: bytes read ahead of the codec before the socket is no longer read.
/// </summary>
internal sealed class SocketTransport : IDisposable
{
    private readonly SocketConnectionFactoryOptions _options;
    private readonly int _maxReadBufferSize;

    /// <summary>Kestrel's transport, created on first use: with the epoll engine it is never needed.</summary>
    private SocketConnectionContextFactory? _factory;

    /// <param name="maxReadBufferSize">Bytes read ahead of the application before the socket is no longer read (Envoy's per-connection buffer limit).</param>
    /// <param name="ioQueueCount">I/O queues; 0 = processor count.</param>
    public SocketTransport(int maxReadBufferSize, int ioQueueCount = 0)
    {
        _maxReadBufferSize = Math.Max(maxReadBufferSize, 4096);
        _options = new SocketConnectionFactoryOptions
        {
            IOQueueCount = ioQueueCount > 0 ? ioQueueCount : Environment.ProcessorCount,
            MaxReadBufferSize = Math.Max(maxReadBufferSize, 4096),
            MaxWriteBufferSize = Math.Max(maxReadBufferSize, 64 * 1024),
            // Continuations run on the I/O thread that completed the socket operation instead of
            // being queued again: no thread-pool hop per read (the proxy's code never blocks).
            UnsafePreferInlineScheduling = true,
            // Read straight into a pooled buffer instead of a zero-byte read first: one system
            // call per read instead of two, for a buffer held while a connection waits.
            WaitForDataBeforeAllocatingBuffer = false,
        };
    }

    private SocketConnectionContextFactory Factory =>
        LazyInitializer.EnsureInitialized(ref _factory, () => new SocketConnectionContextFactory(_options, NullLogger.Instance));

    public ConnectionContext Create(Socket socket) =>
        EpollLoop.IsEnabled ? new EpollConnection(new EpollSocket(socket, EpollLoop.Next()), _maxReadBufferSize) : Factory.Create(socket);

    /// <summary>
    /// Connects <paramref name="socket"/> and makes it a connection. With the epoll engine the
    /// connect itself is non-blocking on the engine (never .NET's, which would then watch the
    /// descriptor too). Failures throw as <see cref="Socket.ConnectAsync(EndPoint, CancellationToken)"/> does.
    /// </summary>
    public async ValueTask<ConnectionContext> ConnectAsync(Socket socket, IPEndPoint address, CancellationToken cancellationToken)
    {
        if (EpollLoop.IsEnabled)
        {
            var connected = await EpollSocket.ConnectAsync(socket, address, cancellationToken).ConfigureAwait(false);
            return new EpollConnection(connected, _maxReadBufferSize);
        }

        await socket.ConnectAsync(address, cancellationToken).ConfigureAwait(false);
        return Factory.Create(socket);
    }

    public void Dispose() => _factory?.Dispose();
}
