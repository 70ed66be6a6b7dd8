using System.Diagnostics;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Legate.Http;
using Legate.Network;
using Legate.Tls;

namespace Legate.Upstream.ConnectionPool;

/// <summary>
/// The HTTP/2 connections of one cluster to one host (cleartext, prior knowledge), multiplexing
/// the router's requests as streams. The codec is .NET's <see cref="SocketsHttpHandler"/>: one
/// handler per cluster, host and routing priority, so its connection pool is exactly Envoy's HTTP/2
/// pool (Envoy keeps one per priority per host).
/// </summary>
/// <remarks>
/// <para>Connections are made by <see cref="ConnectAsync"/> (the handler's <c>ConnectCallback</c>) to
/// the host's current address, so a LOGICAL_DNS host that moves is followed, and the connection
/// counters (<c>upstream_cx_total</c>, <c>upstream_cx_http2_total</c>, <c>upstream_cx_active</c>,
/// <c>upstream_cx_connect_fail</c>, <c>upstream_cx_connect_timeout</c>, <c>upstream_cx_connect_ms</c>,
/// <c>upstream_cx_destroy</c>, bytes) are kept as for HTTP/1.1. A connect failure surfaces as an
/// <see cref="UpstreamConnectException"/> inside the handler's exception.</para>
/// <para>Limits of the handler: it opens another connection when the upstream's
/// SETTINGS_MAX_CONCURRENT_STREAMS is reached (<see cref="SocketsHttpHandler.EnableMultipleHttp2Connections"/>),
/// but it has no client-side per-connection stream limit: the cluster's own
/// <c>max_concurrent_streams</c> is applied by lowering the server's setting as the client reads it,
/// and <c>hpack_table_size</c> by lowering the client's as it writes it (<see cref="Http2SettingsStream"/>).
/// It cannot send request trailers; the connection flow-control window is not configurable.</para>
/// <para>Circuit breakers of the pool's routing priority (a HIGH-priority route's pool counts against
/// the HIGH thresholds): the pool takes a <c>max_connection_pools</c> slot when first used (without one
/// every request overflows, <c>upstream_cx_pool_overflow</c>), each connection a <c>max_connections</c>
/// slot and one of the host's <c>per_host_thresholds</c> <c>max_connections</c> slots (shared with the
/// host's other pools) until it closes. With either breaker open a new connection is refused as an overflow
/// (<c>upstream_cx_overflow</c>) unless the pool has none open, which it then makes anyway, as Envoy
/// does so that streams never wait on a pool with no connection. Envoy would queue the stream for a
/// free stream slot instead; the handler cannot wait inside its connect callback.</para>
/// </remarks>
internal sealed class Http2ConnectionPool : IDrainableConnectionPool, IDisposable
{
    /// <summary>Envoy's largest <c>max_response_headers_kb</c>: the handler's 64 KiB default is lifted to it.</summary>
    private const int MaxResponseHeadersKb = 8192;

    private readonly Host _host;
    private readonly Cluster _cluster;
    private readonly ClientTlsContext? _tls;
    private readonly ResourceManager _resources;
    private Generation _current;
    private PoolAdmission _admission;
    private int _open;

    public Http2ConnectionPool(Host host, Cluster cluster, Envoy.Config.Core.V3.RoutingPriority priority = Envoy.Config.Core.V3.RoutingPriority.Default)
    {
        _host = host;
        _cluster = cluster;
        _resources = cluster.Info.CircuitBreakers.For(priority);
        _current = new Generation(CreateInvoker());

        // The handler keys its pool by scheme, host and port: the address at creation is a stable key;
        // where connections really go is decided by ConnectAsync. Over TLS the scheme is https (so
        // :scheme is, as Envoy sends it) and ConnectAsync returns the stream already authenticated
        // by the cluster's UpstreamTlsContext; the handler then keys connections by the Host header
        // as well, which keeps auto_sni connections apart.
        _tls = cluster.Info.TlsFor(host);
        BaseUri = (_tls is null ? "http://" : "https://") + SocketAddresses.Format(host.Address);
    }

    private HttpMessageInvoker CreateInvoker()
    {
        var info = _cluster.Info;
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            PreAuthenticate = false,
            MaxResponseHeadersLength = MaxResponseHeadersKb,
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = info.IdleTimeout > TimeSpan.Zero ? info.IdleTimeout : Timeout.InfiniteTimeSpan,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            ConnectTimeout = _cluster.ConnectTimeout > TimeSpan.Zero ? _cluster.ConnectTimeout : Timeout.InfiniteTimeSpan,
            ConnectCallback = ConnectAsync,
        };

        if (info.Http2InitialStreamWindowSize is { } window)
        {
            handler.InitialHttp2StreamWindowSize = window;
        }

        if (info.Http2Keepalive is { } keepalive)
        {
            // Envoy's connection_keepalive pings whether or not streams are open.
            handler.KeepAlivePingDelay = keepalive.Delay;
            handler.KeepAlivePingTimeout = keepalive.Timeout;
            handler.KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always;
        }

        return new HttpMessageInvoker(handler, disposeHandler: true);
    }

    /// <summary>The request's host name for auto_sni / auto_san_validation (read when its request opens a connection).</summary>
    public static readonly HttpRequestOptionsKey<string> ServerNameOption = new("legate.auto_sni");

    /// <summary><c>http://ip:port</c>; the request's <c>:path</c> is appended to it.</summary>
    public string BaseUri { get; }

    public Cluster Cluster => _cluster;

    /// <summary>False when the pool found <c>max_connection_pools</c> taken when first used: it must not be used.</summary>
    public bool Admitted => _admission.IsAdmitted(_resources);

    public void Dispose() => Volatile.Read(ref _current).Drain();

    /// <summary>Sends <paramref name="request"/> over the pool's current connections.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        while (true)
        {
            var generation = Volatile.Read(ref _current);
            if (!generation.TryEnter())
            {
                // Drained between the read and the entry: a newer generation is current.
                continue;
            }

            try
            {
                return await generation.Invoker.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                generation.Exit();
            }
        }
    }

    /// <summary>
    /// Envoy's drainConnections: new requests go to new connections; the existing ones take no new
    /// stream, an idle one closes and a busy one once its last stream ends. .NET's handler has no
    /// per-connection drain, so the pool moves to a fresh handler and disposes the old one, whose
    /// HTTP/2 connections close exactly so (a disposed HTTP/2 connection finishes its open streams).
    /// </summary>
    public void DrainConnections() => Interlocked.Exchange(ref _current, new Generation(CreateInvoker())).Drain();

    /// <summary>
    /// One handler of the pool and the requests being handed to it. A disposed handler refuses a
    /// request that has not yet been given a stream ("The server shut down the connection"; its own
    /// retry cannot help once the whole handler is disposed), so the drained handler is disposed only
    /// when no request is still inside its <c>SendAsync</c>: then each of its requests is an open
    /// stream, which a disposed HTTP/2 connection finishes. Idle connections close at once when
    /// nothing is being sent, else as soon as the last such request has its response head.
    /// </summary>
    private sealed class Generation(HttpMessageInvoker invoker)
    {
        private int _entering;
        private int _drained;
        private int _disposed;

        public HttpMessageInvoker Invoker { get; } = invoker;

        /// <summary>False when the generation is drained: send on the current one instead.</summary>
        public bool TryEnter()
        {
            // Increment, then read the flag; Drain writes the flag, then reads the count. Both are
            // full fences, so at least one of them sees the other and the handler is never disposed
            // under a request that entered.
            Interlocked.Increment(ref _entering);
            if (Volatile.Read(ref _drained) == 0)
            {
                return true;
            }

            Exit();
            return false;
        }

        public void Exit()
        {
            if (Interlocked.Decrement(ref _entering) == 0 && Volatile.Read(ref _drained) != 0)
            {
                DisposeOnce();
            }
        }

        public void Drain()
        {
            Interlocked.Exchange(ref _drained, 1);
            if (Volatile.Read(ref _entering) == 0)
            {
                DisposeOnce();
            }
        }

        private void DisposeOnce()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Invoker.Dispose();
            }
        }
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var stats = _cluster.Info.Stats;
        var slot = TryAcquireConnectionSlot();
        if (!slot)
        {
            stats.UpstreamCxOverflow.Inc();
            if (Volatile.Read(ref _open) > 0)
            {
                throw new UpstreamOverflowException("connections");
            }
        }

        try
        {
            return await OpenAsync(context, slot, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            if (slot)
            {
                ReleaseConnectionSlot();
            }

            throw;
        }
    }

    private bool TryAcquireConnectionSlot() => _host.TryAcquireConnectionSlot(_resources, _cluster.Info.CircuitBreakers.PerHostMaxConnections);

    private void ReleaseConnectionSlot() => _host.ReleaseConnectionSlot(_resources);

    private async ValueTask<Stream> OpenAsync(SocketsHttpConnectionContext context, bool slot, CancellationToken cancellationToken)
    {
        var stats = _cluster.Info.Stats;
        var address = _host.Address;
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var started = Stopwatch.GetTimestamp();
        try
        {
            await socket.ConnectAsync(address, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The handler's ConnectTimeout (connection attempts are not cancelled by their requests).
            socket.Dispose();
            stats.UpstreamCxConnectFail.Inc();
            _host.ConnectFailed();
            stats.UpstreamCxConnectTimeout.Inc();
            throw new UpstreamConnectException(UpstreamResetReasons.ConnectionTimeout, "connection timeout");
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            stats.UpstreamCxConnectFail.Inc();
            _host.ConnectFailed();
            throw new UpstreamConnectException(UpstreamResetReasons.ConnectionFailure, "delayed connect error: " + SocketErrorText(ex), ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var counting = new CountingNetworkStream(socket, _host, stats, this, slot);
        Stream connection = counting;
        if (_tls is { } tls)
        {
            var info = _cluster.Info;
            string? name = null;
            context.InitialRequestMessage.Options.TryGetValue(ServerNameOption, out name);
            var serverName = info.AutoSni && !string.IsNullOrEmpty(name) ? name : tls.Sni;
            var verifyName = info.AutoSanValidation && !string.IsNullOrEmpty(name) ? name : null;
            var (ssl, _, failure) = await tls.HandshakeAsync(connection, serverName, verifyName, ClientTlsContext.Http2Alpn, cancellationToken).ConfigureAwait(false);
            if (ssl is null)
            {
                stats.UpstreamCxConnectFail.Inc();
                _host.ConnectFailed();
                if (cancellationToken.IsCancellationRequested)
                {
                    stats.UpstreamCxConnectTimeout.Inc();
                    throw new UpstreamConnectException(UpstreamResetReasons.ConnectionTimeout, "connection timeout");
                }

                throw new UpstreamConnectException(UpstreamResetReasons.ConnectionFailure, failure!);
            }

            connection = ssl;
        }

        var settings = _cluster.Info;
        if (settings.Http2MaxConcurrentStreams < int.MaxValue || settings.Http2HpackTableSize is not null)
        {
            // max_concurrent_streams as the server's own limit, which the client honours; hpack_table_size in the client's SETTINGS.
            connection = new Http2SettingsStream(
                connection,
                settings.Http2MaxConcurrentStreams < int.MaxValue ? (uint)settings.Http2MaxConcurrentStreams : null,
                settings.Http2HpackTableSize);
        }

        stats.UpstreamCxConnectMs.Record((long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        stats.UpstreamCxTotal.Inc();
        stats.UpstreamCxHttp2Total.Inc();
        stats.UpstreamCxActive.Inc();
        _host.ConnectionOpened();
        Interlocked.Increment(ref _open);
        counting.Opened = true;
        return connection;
    }

    private static string SocketErrorText(SocketException ex) => ex.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "Connection refused",
        SocketError.HostUnreachable => "No route to host",
        SocketError.NetworkUnreachable => "Network is unreachable",
        SocketError.TimedOut => "Connection timed out",
        _ => ex.Message,
    };

    /// <summary>The connection's stream: counts bytes, and the close (once) in the cluster and host counters.</summary>
    private sealed class CountingNetworkStream : NetworkStream
    {
        private readonly Host _host;
        private readonly ClusterStats _stats;
        private readonly Http2ConnectionPool _pool;
        private readonly bool _holdsSlot;
        private int _closed;

        public CountingNetworkStream(Socket socket, Host host, ClusterStats stats, Http2ConnectionPool pool, bool holdsSlot)
            : base(socket, ownsSocket: true)
        {
            _host = host;
            _stats = stats;
            _pool = pool;
            _holdsSlot = holdsSlot;
        }

        public override int Read(Span<byte> buffer)
        {
            var read = base.Read(buffer);
            _stats.UpstreamCxRxBytesTotal.Add(read);
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await base.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            _stats.UpstreamCxRxBytesTotal.Add(read);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            base.Write(buffer);
            _stats.UpstreamCxTxBytesTotal.Add(buffer.Length);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _stats.UpstreamCxTxBytesTotal.Add(buffer.Length);
            return base.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        /// <summary>Set once the connection counts as open (after the TLS handshake, if any): only then is its close counted.</summary>
        public bool Opened { get; set; }

        protected override void Dispose(bool disposing)
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0 && Opened)
            {
                _stats.UpstreamCxActive.Dec();
                _stats.UpstreamCxDestroy.Inc();
                _host.ConnectionClosed();
                Interlocked.Decrement(ref _pool._open);
                if (_holdsSlot)
                {
                    _pool.ReleaseConnectionSlot();
                }
            }

            base.Dispose(disposing);
        }
    }
}
