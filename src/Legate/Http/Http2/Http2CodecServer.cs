using System.Text;
using Legate.Server.Logging;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Abstractions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Legate.Http.Http2;

/// <summary>
/// The downstream HTTP/2 codec of one HTTP connection manager: a Kestrel server speaking HTTP/2
/// (prior knowledge) over connections Legate accepted itself. Legate's listener matches the filter
/// chain, decides the protocol (codec_type, the preface for AUTO, later ALPN) and hands the
/// connection over with <see cref="ServeAsync"/>; Kestrel does the framing, HPACK, flow control,
/// stream multiplexing and GOAWAY, and every request becomes an <see cref="HttpStream"/> through
/// <see cref="Http2StreamBridge"/>. Created and started on the first HTTP/2 connection.
/// </summary>
/// <remarks>
/// Limit mapping (<c>http2_protocol_options</c> and the HCM):
/// <list type="bullet">
/// <item>max_concurrent_streams → MaxStreamsPerConnection, at most <see cref="MaxStreamsCap"/>: Envoy's
/// default (2147483647) means "no limit", but Kestrel tracks up to twice the limit in per-connection
/// tables, so a very large limit only lets one client hold more server state.</item>
/// <item>initial_stream_window_size / initial_connection_window_size → Kestrel's windows when set
/// (same valid range, 65535..2^31-1). Unset, Kestrel's defaults (768 KiB / 1 MiB) stay instead of
/// Envoy's 256 MiB: Kestrel buffers a stream's unread request body up to its window, where Envoy
/// holds it back with buffer watermarks.</item>
/// <item>hpack_table_size → HeaderTableSize (advertised as SETTINGS_HEADER_TABLE_SIZE; default 4096 in both).</item>
/// <item>max_request_headers_kb → MaxRequestHeadersTotalSize and the largest single field;
/// common_http_protocol_options.max_headers_count → MaxRequestHeaderCount.</item>
/// <item>Body size and minimum data rates are lifted (a proxy forwards, the upstream decides);
/// idle_timeout → keep-alive timeout; request_headers_timeout → request headers timeout (0 = none).</item>
/// </list>
/// </remarks>
internal sealed class Http2CodecServer : IAsyncDisposable
{
    /// <summary>The most concurrent streams per connection Legate lets Kestrel advertise.</summary>
    public const int MaxStreamsCap = 65536;

    private readonly HttpConnectionManagerConfig _config;
    private readonly Http2ConnectionListener _listener;
    private readonly KestrelServer _server;
    private readonly Microsoft.Extensions.Logging.ILoggerFactory _loggerFactory;
    private readonly object _gate = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Http2BridgedConnection, byte> _connections = new();
    private Task? _start;
    private bool _stopped;

    public Http2CodecServer(HttpConnectionManagerConfig config, string name)
    {
        _config = config;
        var endPoint = new Http2BridgeEndPoint(name);
        _listener = new Http2ConnectionListener(endPoint);
        _loggerFactory = AspNetLoggerProvider.CreateFactory(config.Log);
        var options = CreateOptions(config);
        options.Listen(endPoint, listen => listen.Protocols = HttpProtocols.Http2);
        _server = new KestrelServer(Options.Create(options), _listener, _loggerFactory);
    }

    /// <summary>Kestrel's options for <paramref name="config"/> (see the class remarks for the mapping).</summary>
    internal static KestrelServerOptions CreateOptions(HttpConnectionManagerConfig config)
    {
        var options = new KestrelServerOptions
        {
            AddServerHeader = false,
            AllowAlternateSchemes = true,
            AllowSynchronousIO = false,
            // Header bytes pass through unchanged: Latin-1 maps every byte to one char and back.
            RequestHeaderEncodingSelector = static _ => Encoding.Latin1,
            ResponseHeaderEncodingSelector = static _ => Encoding.Latin1,
        };

        var limits = options.Limits;
        limits.MaxRequestBodySize = null;
        limits.MinRequestBodyDataRate = null;
        limits.MinResponseDataRate = null;
        limits.MaxConcurrentConnections = null;
        limits.MaxConcurrentUpgradedConnections = null;
        var headerBytes = config.ParserOptions.MaxHeadersKb * 1024;
        limits.MaxRequestHeadersTotalSize = headerBytes;
        limits.MaxRequestHeaderCount = Math.Max(1, config.ParserOptions.MaxHeadersCount);
        limits.KeepAliveTimeout = config.IdleTimeout > TimeSpan.Zero ? config.IdleTimeout : Timeout.InfiniteTimeSpan;
        limits.RequestHeadersTimeout = config.RequestHeadersTimeout > TimeSpan.Zero ? config.RequestHeadersTimeout : Timeout.InfiniteTimeSpan;

        var http2 = limits.Http2;
        http2.MaxRequestHeaderFieldSize = headerBytes;
        var h2 = config.Proto.Http2ProtocolOptions;
        http2.MaxStreamsPerConnection = (int)Math.Clamp(h2?.MaxConcurrentStreams ?? int.MaxValue, 1u, MaxStreamsCap);
        if (h2?.InitialStreamWindowSize is { } streamWindow)
        {
            http2.InitialStreamWindowSize = (int)Math.Clamp(streamWindow, 65535u, int.MaxValue);
        }

        if (h2?.InitialConnectionWindowSize is { } connectionWindow)
        {
            http2.InitialConnectionWindowSize = (int)Math.Clamp(connectionWindow, 65535u, int.MaxValue);
        }

        if (h2?.HpackTableSize is { } hpackTableSize)
        {
            // The dynamic table the client's encoder may use (SETTINGS_HEADER_TABLE_SIZE); 0 turns it off.
            http2.HeaderTableSize = (int)Math.Min(hpackTableSize, int.MaxValue);
        }

        if (Http2KeepAlive.From(h2?.ConnectionKeepalive) is { } keepalive)
        {
            http2.KeepAlivePingDelay = keepalive.Delay;
            http2.KeepAlivePingTimeout = keepalive.Timeout;
        }

        return options;
    }

    /// <summary>
    /// Serves <paramref name="connection"/> as HTTP/2 until it closes. Kestrel owns (and disposes)
    /// the connection from here on; the task completes when it did.
    /// </summary>
    public async Task ServeAsync(ConnectionContext connection, Http2ConnectionInfo info)
    {
        var bridged = new Http2BridgedConnection(connection, info);
        using var lifetime = new CancellationTokenSource();
        var closed = lifetime.Token;
        if (_config.MaxConnectionDuration > TimeSpan.Zero)
        {
            _ = DrainAfterMaxDurationAsync(bridged, closed);
        }

        if (info.HealthCheck is not null)
        {
            info.DrainSequence = () => _ = DrainSequenceAsync(bridged, closed);
        }

        _connections.TryAdd(bridged, 0);
        var stats = _config.Stats;
        stats.DownstreamCxTotal.Inc();
        stats.DownstreamCxActive.Inc();
        stats.DownstreamCxHttp2Total.Inc();
        stats.DownstreamCxHttp2Active.Inc();
        try
        {
            await EnsureStartedAsync().ConfigureAwait(false);
            if (!_listener.TryPush(bridged))
            {
                await bridged.DisposeAsync().ConfigureAwait(false);
            }

            await bridged.Completion.ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            await bridged.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _connections.TryRemove(bridged, out _);
            lifetime.Cancel();
            info.Streams.Close();
            stats.DownstreamCxActive.Dec();
            stats.DownstreamCxHttp2Active.Dec();
        }
    }

    /// <summary>
    /// <c>max_connection_duration</c> on HTTP/2, as Envoy's drain sequence: when it is reached the
    /// connection gets the shutdown notice (GOAWAY with last-stream-id 2^31-1, written by
    /// <see cref="Http2ShutdownNoticeWriter"/>); new streams are still served for <c>drain_timeout</c>,
    /// then Kestrel's graceful close sends the final GOAWAY, refuses new streams and closes the
    /// connection when the last stream ends (Envoy sends its final GOAWAY when the grace period ends;
    /// Kestrel sends it once the streams are done, after repeating the notice while they run).
    /// </summary>
    private async Task DrainAfterMaxDurationAsync(Http2BridgedConnection connection, CancellationToken closed)
    {
        try
        {
            await Task.Delay(_config.MaxConnectionDuration, _config.Time, closed).ConfigureAwait(false);
            _config.Stats.DownstreamCxMaxDurationReached.Inc();
        }
        catch (OperationCanceledException)
        {
            // The connection ended first.
            return;
        }

        await DrainSequenceAsync(connection, closed).ConfigureAwait(false);
    }

    /// <summary>
    /// Envoy's drain sequence on one connection: the shutdown notice now, new streams still served
    /// for <c>drain_timeout</c>, then Kestrel's graceful close (final GOAWAY once the streams are done).
    /// </summary>
    private async Task DrainSequenceAsync(Http2BridgedConnection connection, CancellationToken closed)
    {
        try
        {
            connection.ShutdownNotice.SendShutdownNotice();
            if (_config.DrainTimeout > TimeSpan.Zero)
            {
                await Task.Delay(_config.DrainTimeout, _config.Time, closed).ConfigureAwait(false);
            }

            connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
        }
        catch (OperationCanceledException)
        {
            // The connection ended first.
        }
    }

    /// <summary>
    /// A listener drain (LDS update or removal, <c>/drain_listeners</c>), as Envoy's drain sequence on
    /// every connection: the shutdown notice now (counted in <c>downstream_cx_drain_close</c>), new
    /// streams still served for <c>drain_timeout</c>, then the graceful stop (final GOAWAY, streams
    /// finish, connections close); whatever is left when <paramref name="cancellationToken"/> fires is aborted.
    /// </summary>
    public async Task DrainAsync(CancellationToken cancellationToken)
    {
        var notified = 0;
        foreach (var connection in _connections.Keys)
        {
            if (connection.ShutdownNotice.SendShutdownNotice())
            {
                _config.Stats.DownstreamCxDrainClose.Inc();
                notified++;
            }
        }

        if (notified > 0 && _config.DrainTimeout > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(_config.DrainTimeout, _config.Time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The listener's drain time ended first: the stop aborts what is left.
            }
        }

        await StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Graceful stop: no new connections; every connection gets a GOAWAY and closes once its
    /// streams are done; when <paramref name="cancellationToken"/> fires, the rest are aborted.
    /// </summary>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        Task? start;
        lock (_gate)
        {
            _stopped = true;
            start = _start;
        }

        return start is null ? _listener.UnbindAsync(cancellationToken).AsTask() : StopStartedAsync(start, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);
        _server.Dispose();
        _loggerFactory.Dispose();
    }

    private async Task StopStartedAsync(Task start, CancellationToken cancellationToken)
    {
        try
        {
            await start.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException)
        {
            return;
        }

        await _server.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    private Task EnsureStartedAsync()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopped, this);
            return _start ??= _server.StartAsync(new Application(_config), CancellationToken.None);
        }
    }

    /// <summary>Kestrel's application: each request runs as one <see cref="HttpStream"/>.</summary>
    private sealed class Application(HttpConnectionManagerConfig config) : IHttpApplication<HttpContext>
    {
        /// <summary>
        /// Kestrel pools its HTTP/2 stream objects per connection and lets the application keep a
        /// context on each (<see cref="IHostContextContainer{TContext}"/>), as ASP.NET Core's hosting
        /// does: the context is initialized again for the stream's next request instead of allocated.
        /// </summary>
        public HttpContext CreateContext(IFeatureCollection contextFeatures)
        {
            if (contextFeatures is IHostContextContainer<HttpContext> container)
            {
                if (container.HostContext is DefaultHttpContext pooled)
                {
                    pooled.Initialize(contextFeatures);
                    return pooled;
                }

                var context = new DefaultHttpContext(contextFeatures);
                container.HostContext = context;
                return context;
            }

            return new DefaultHttpContext(contextFeatures);
        }

        public Task ProcessRequestAsync(HttpContext context) => Http2StreamBridge.RunAsync(context, config);

        public void DisposeContext(HttpContext context, Exception? exception)
        {
            if (context is DefaultHttpContext pooled)
            {
                pooled.Uninitialize();
            }
        }
    }
}
