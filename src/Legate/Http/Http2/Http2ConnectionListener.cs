using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;

namespace Legate.Http.Http2;

/// <summary>
/// The "transport" of an <see cref="Http2CodecServer"/>: Kestrel binds it like a socket listener,
/// but no socket is involved. Legate's own accept loop hands over connections it has already
/// accepted (and matched to a filter chain, and later TLS-terminated) through <see cref="TryPush"/>;
/// Kestrel's accept loop receives them from <see cref="AcceptAsync"/>.
/// </summary>
internal sealed class Http2ConnectionListener : IConnectionListenerFactory, IConnectionListener
{
    private readonly Channel<ConnectionContext> _pending = Channel.CreateUnbounded<ConnectionContext>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });

    public Http2ConnectionListener(EndPoint endPoint) => EndPoint = endPoint;

    public EndPoint EndPoint { get; }

    /// <summary>Queues <paramref name="connection"/> for Kestrel; false once the listener is unbound.</summary>
    public bool TryPush(ConnectionContext connection) => _pending.Writer.TryWrite(connection);

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IConnectionListener>(this);

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _pending.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            // Unbound: Kestrel's accept loop ends on null.
            return null;
        }
    }

    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _pending.Writer.TryComplete();

        // Handed over but never accepted: close them, so whoever waits on them is released.
        while (_pending.Reader.TryRead(out var orphan))
        {
            await orphan.DisposeAsync().ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => UnbindAsync();
}
