using Microsoft.AspNetCore.Http;

namespace Legate.Http.Http2;

/// <summary>
/// The stream objects of one HTTP/2 connection that may serve its next streams: an
/// <see cref="Http2ResponseEncoder"/> with its <see cref="HttpStream"/> and request head (about
/// 10 KB with their header arenas). HTTP/1.1 reuses one stream per connection; HTTP/2 streams run
/// concurrently, so a connection keeps a small stack of finished ones, as Kestrel pools its own
/// stream objects per connection. Only a stream that ended cleanly comes back (nothing of it still
/// running); the rest are released.
/// </summary>
internal sealed class Http2StreamPool
{
    /// <summary>Enough for the concurrency of browsers and gRPC channels; a burst beyond it allocates.</summary>
    internal const int Capacity = 16;

    private readonly Lock _lock = new();
    private readonly Http2ResponseEncoder?[] _items = new Http2ResponseEncoder?[Capacity];
    private int _count;
    private bool _closed;

    /// <summary>A pooled encoder for <paramref name="config"/> set up for <paramref name="context"/>, or a new one.</summary>
    public Http2ResponseEncoder Rent(HttpContext context, HttpConnectionManagerConfig config)
    {
        Http2ResponseEncoder? encoder = null;
        lock (_lock)
        {
            if (_count > 0)
            {
                encoder = _items[--_count];
                _items[_count] = null;
            }
        }

        if (encoder is not null && ReferenceEquals(encoder.Config, config))
        {
            encoder.Reuse(context);
            return encoder;
        }

        encoder?.Stream.Release();
        return Create(context, config);
    }

    /// <summary>Takes back an encoder whose stream has ended; releases it when it cannot be reused.</summary>
    public void Return(Http2ResponseEncoder encoder)
    {
        if (encoder.Reusable)
        {
            lock (_lock)
            {
                if (!_closed && _count < Capacity)
                {
                    _items[_count++] = encoder;
                    return;
                }
            }
        }

        encoder.Stream.Release();
    }

    /// <summary>The connection closed: release what is pooled; later returns are released at once.</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            for (var i = 0; i < _count; i++)
            {
                _items[i]!.Stream.Release();
                _items[i] = null;
            }

            _count = 0;
        }
    }

    public static Http2ResponseEncoder Create(HttpContext context, HttpConnectionManagerConfig config)
    {
        var encoder = new Http2ResponseEncoder(context, config);
        encoder.Stream = new HttpStream(config, encoder);
        return encoder;
    }
}
