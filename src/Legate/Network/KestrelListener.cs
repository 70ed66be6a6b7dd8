using System.Net;
using Legate.Server.Logging;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace Legate.Network;

/// <summary>
/// One Kestrel server bound to one endpoint. The admin and every listener get their own, so that
/// each can start, drain and stop on its own (as listeners will when LDS adds and removes them);
/// Kestrel cannot add endpoints to a running server. No generic host: just the server and a
/// request delegate.
/// </summary>
internal sealed class KestrelListener : IAsyncDisposable
{
    private readonly KestrelServer _server;
    private readonly ListenOptions _listenOptions;
    private readonly IPEndPoint _endpoint;
    private readonly Microsoft.Extensions.Logging.ILoggerFactory _loggerFactory;
    private bool _started;

    /// <param name="endpoint">Where to bind; port 0 picks a free port, see <see cref="BoundEndpoint"/>.</param>
    /// <param name="protocols">The HTTP version to speak: cleartext Kestrel serves Http1 or Http2 (prior knowledge), not both.</param>
    /// <param name="ioQueueCount">Socket I/O queues; Legate's meaning of <c>--concurrency</c>.</param>
    /// <param name="logger">Receives Kestrel's own log messages.</param>
    /// <param name="connectionMiddleware">Optional middleware on raw connections (before HTTP).</param>
    public KestrelListener(
        IPEndPoint endpoint,
        HttpProtocols protocols,
        int ioQueueCount,
        Logger logger,
        Func<ConnectionDelegate, ConnectionDelegate>? connectionMiddleware = null)
    {
        _endpoint = endpoint;
        _loggerFactory = AspNetLoggerProvider.CreateFactory(logger);
        var options = new KestrelServerOptions { AddServerHeader = false };
        ListenOptions? listenOptions = null;
        options.Listen(endpoint, listen =>
        {
            listen.Protocols = protocols;
            if (connectionMiddleware is not null)
            {
                listen.Use(connectionMiddleware);
            }

            listenOptions = listen;
        });

        // Kestrel writes the bound endpoint (the real port when 0 was asked) back into these options.
        _listenOptions = listenOptions ?? throw new InvalidOperationException("Kestrel did not call the listen callback");

        var transport = new SocketTransportFactory(
            Options.Create(new SocketTransportOptions { IOQueueCount = Math.Max(1, ioQueueCount) }),
            _loggerFactory);
        _server = new KestrelServer(Options.Create(options), transport, _loggerFactory);
    }

    /// <summary>The endpoint actually bound (with the real port when 0 was asked); valid after start.</summary>
    public IPEndPoint BoundEndpoint => _listenOptions.IPEndPoint ?? _endpoint;

    /// <summary>Binds and starts accepting.</summary>
    /// <exception cref="BindException">The address could not be bound.</exception>
    public async Task StartAsync(RequestDelegate app, CancellationToken cancellationToken)
    {
        try
        {
            await _server.StartAsync(new Application(app), cancellationToken).ConfigureAwait(false);
            _started = true;
        }
        catch (IOException ex)
        {
            var reason = ex.InnerException is AddressInUseException ? "address already in use" : (ex.InnerException ?? ex).Message;
            throw new BindException($"cannot bind '{SocketAddresses.Format(_endpoint)}': {reason}", ex);
        }
    }

    /// <summary>
    /// Stops accepting, lets in-flight requests finish and closes idle connections; when
    /// <paramref name="cancellationToken"/> fires, whatever is left is aborted.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_started)
        {
            _started = false;
            await _server.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);
        _server.Dispose();
        _loggerFactory.Dispose();
    }

    /// <summary>The minimal <see cref="IHttpApplication{TContext}"/>: a context per request, then the delegate.</summary>
    private sealed class Application(RequestDelegate app) : IHttpApplication<HttpContext>
    {
        public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

        public Task ProcessRequestAsync(HttpContext context) => app(context);

        public void DisposeContext(HttpContext context, Exception? exception)
        {
        }
    }
}
