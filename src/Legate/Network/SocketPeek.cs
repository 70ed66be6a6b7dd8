using System.Buffers;
using System.Net.Sockets;

namespace Legate.Network;

/// <summary>
/// Peeks at the first bytes of a connection without consuming them (MSG_PEEK), as Envoy's
/// listener filters do. A socket signals "some bytes are readable", not "more than last time",
/// so when a decision needs more bytes than have arrived the peek is repeated after a short
/// pause that grows to 50 ms (a ClientHello or PROXY header split across packets is rare).
/// </summary>
internal static class SocketPeek
{
    /// <summary>Decides on the bytes so far: true when done (with <paramref name="result"/>), false to wait for more.</summary>
    public delegate bool Decider<T>(ReadOnlySpan<byte> data, bool peerClosed, out T result);

    public static async ValueTask<T> PeekUntilAsync<T>(Socket socket, int maxBytes, Decider<T> decide, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(maxBytes);
        try
        {
            var pause = 1;
            var last = -1;
            while (true)
            {
                var peeked = await socket.ReceiveAsync(buffer.AsMemory(0, maxBytes), SocketFlags.Peek, cancellationToken).ConfigureAwait(false);
                if (decide(buffer.AsSpan(0, peeked), peeked == 0, out var result) || peeked == 0 || peeked >= maxBytes)
                {
                    return result;
                }

                if (peeked == last)
                {
                    await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
                    pause = Math.Min(pause * 2, 50);
                }
                else
                {
                    pause = 1;
                }

                last = peeked;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
