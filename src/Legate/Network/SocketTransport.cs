using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Legate.Network;

/// <summary>
/// Turns connected sockets (accepted downstream, or connected upstream) into pipe-based
/// connections using Kestrel's socket transport: its pooled buffers, its I/O scheduling and its
/// back-pressure (<c>maxReadBufferSize</c> pauses reading from the socket when the reader falls
/// behind, which is how a per-connection buffer limit is enforced).
/// </summary>
internal sealed class SocketTransport : IDisposable
{
    private readonly SocketConnectionContextFactory _factory;

    /// <param name="maxReadBufferSize">Bytes read ahead of the application before the socket is no longer read (Envoy's per-connection buffer limit).</param>
    /// <param name="ioQueueCount">I/O queues; 0 = processor count.</param>
    public SocketTransport(int maxReadBufferSize, int ioQueueCount = 0)
    {
        _factory = new SocketConnectionContextFactory(
            new SocketConnectionFactoryOptions
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
            },
            NullLogger.Instance);
    }

    public ConnectionContext Create(Socket socket) => _factory.Create(socket);

    public void Dispose() => _factory.Dispose();
}
