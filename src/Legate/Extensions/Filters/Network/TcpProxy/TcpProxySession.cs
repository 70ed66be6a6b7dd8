using System.Buffers;
using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using Legate.AccessLog;
using Legate.Http;
using Legate.Http.Formatter;
using Legate.Network;
using Legate.Network.Epoll;
using Legate.Server.Logging;
using Legate.Upstream;
using ConnectMode = Envoy.Extensions.Filters.Network.TcpProxy.V3.UpstreamConnectMode;

namespace Legate.Extensions.Filters.Network.TcpProxy;

/// <summary>
/// One proxied TCP connection: picks the cluster and a host (up to <c>max_connect_attempts</c>),
/// then copies bytes both ways: plaintext on both sides on Legate's epoll engine
/// (<see cref="EpollRelay"/>, Linux), otherwise on streams (raw sockets, or TLS on either side). Each direction reads
/// into one fixed buffer and does not read again until the other side took the bytes, so a slow
/// side holds the fast one back (at most one buffer per direction is ever held). A FIN is passed
/// on as a half-close (shutdown of the other side's send direction) and the other direction keeps
/// flowing until it ends too; an error on either side resets both. The idle timeout restarts on
/// every read; <c>max_downstream_connection_duration</c> bounds the whole connection.
/// What happened is recorded on the connection's <see cref="StreamInfo"/> (upstream host and
/// cluster, bytes, Envoy's response flags NR / UO / UH / UF / URX / DT), which the filter's
/// <c>access_log</c> and the listener's access log both format.
/// <c>upstream_connect_mode</c> / <c>max_early_data_bytes</c> (Envoy's delayed upstream connect):
/// with a limit set, the client is read before the upstream is connected (<see cref="EarlyDataReader"/>,
/// at most the limit, those bytes go first); ON_DOWNSTREAM_DATA connects only once the client sent
/// bytes; ON_DOWNSTREAM_TLS_HANDSHAKE connects at once, since the listener finished the TLS
/// handshake before the session starts.
/// </summary>
internal sealed class TcpProxySession
{
    private readonly TcpProxyConfig _config;
    private readonly StreamInfo _info;
    private readonly Logger _log;
    private readonly CancellationTokenSource _closed;
    private readonly DeadlineTimer? _idle;
    private int _timedOut;

    private TcpProxySession(TcpProxyConfig config, StreamInfo info, Logger log, TimeProvider time, CancellationToken abort)
    {
        _config = config;
        _info = info;
        _log = log;
        _closed = CancellationTokenSource.CreateLinkedTokenSource(abort);
        if (config.IdleTimeout > TimeSpan.Zero)
        {
            _idle = new DeadlineTimer(time, static state => ((TcpProxySession)state).OnIdle(), this);
        }
    }

    /// <param name="downstreamSocket">The downstream socket; on a plaintext connection the session owns it until it returns (the epoll relay closes it).</param>
    /// <param name="downstreamTls">The downstream TLS stream when the chain terminates TLS, else null.</param>
    /// <param name="shutdownDownstream">Half-closes the downstream's send direction (FIN, or TLS close_notify).</param>
    /// <param name="info">The connection's info (addresses, start, TLS), filled in here and logged when the session ends.</param>
    /// <param name="originalDestination">The connection's restored original destination, if a listener filter restored one (for ORIGINAL_DST clusters).</param>
    /// <param name="proxyProtocolTlvs">PROXY v2 TLVs the listener's proxy_protocol filter kept for the upstream (pass_through_tlvs).</param>
    public static async Task RunAsync(Socket downstreamSocket, Stream? downstreamTls, Func<ValueTask> shutdownDownstream, TcpProxyConfig config, StreamInfo info, Logger log, TimeProvider time, CancellationToken abort, System.Net.IPEndPoint? originalDestination = null, IReadOnlyList<(byte Type, byte[] Value)>? proxyProtocolTlvs = null)
    {
        var stats = config.Stats;
        stats.DownstreamCxTotal.Inc();
        var session = new TcpProxySession(config, info, log, time, abort);
        using var flush = config.AccessLogFlushInterval > TimeSpan.Zero && config.AccessLogs.Length > 0
            ? time.CreateTimer(static s => ((TcpProxySession)s!).LogAccess("TcpPeriodic"), session, config.AccessLogFlushInterval, config.AccessLogFlushInterval)
            : null;

        // Both bound the whole connection from its start, as Envoy's (armed on the new connection):
        // also while it waits for the client's first bytes or for the upstream.
        using var maxDuration = config.MaxDownstreamConnectionDuration > TimeSpan.Zero
            ? new Timer(static s => ((TcpProxySession)s!).OnMaxDuration(), session, config.MaxDownstreamConnectionDuration, Timeout.InfiniteTimeSpan)
            : null;
        session._idle?.Set(config.IdleTimeout);
        try
        {
            await session.RunAsync(downstreamSocket, downstreamTls, shutdownDownstream, originalDestination, proxyProtocolTlvs).ConfigureAwait(false);
        }
        finally
        {
            flush?.Dispose();
            if (session._idle is not null)
            {
                // Idempotent: ProxyAsync disposes it first when the upstream was connected.
                await session._idle.DisposeAsync().ConfigureAwait(false);
            }

            session._closed.Dispose();
            info.EndTimestamp = Stopwatch.GetTimestamp();
            session.LogAccess("TcpConnectionEnd");
        }
    }

    private async Task RunAsync(Socket downstreamSocket, Stream? downstreamTls, Func<ValueTask> shutdownDownstream, System.Net.IPEndPoint? originalDestination, IReadOnlyList<(byte Type, byte[] Value)>? proxyProtocolTlvs)
    {
        var config = _config;

        // Envoy picks the route when the connection opens and looks the cluster up when it connects.
        var clusterName = config.PickClusterName();
        var closed = _closed.Token;
        EarlyDataReader? early = null;
        NetworkStream? plaintext = null;
        try
        {
            // max_early_data_bytes (any mode): read the client while the upstream is not connected yet.
            // ON_DOWNSTREAM_DATA with a limit of 0 on TLS takes at most one decrypted byte: a TLS
            // stream cannot say "bytes are there" without handing one over (a plaintext socket peeks).
            var waitForData = config.ConnectMode == ConnectMode.OnDownstreamData;
            var earlyLimit = config.MaxEarlyDataBytes ?? 0;
            if (earlyLimit == 0 && waitForData && downstreamTls is not null)
            {
                earlyLimit = 1;
            }

            if (earlyLimit > 0)
            {
                plaintext = downstreamTls is null ? new NetworkStream(downstreamSocket, ownsSocket: false) : null;
                early = new EarlyDataReader(downstreamTls ?? plaintext!, earlyLimit, config.Stats, OnEarlyRead, closed);
            }

            if (waitForData)
            {
                // ON_DOWNSTREAM_DATA: no upstream connection (no cluster lookup, no host, nothing in
                // the upstream stats or the access log's upstream fields) until the client sent bytes;
                // a client that closes first, or an idle timeout, ends the connection here.
                var hasData = early is not null
                    ? await early.FirstData.ConfigureAwait(false)
                    : await EarlyDataReader.WaitForDataAsync(downstreamSocket, closed).ConfigureAwait(false);
                if (!hasData)
                {
                    _log.Debug("tcp_proxy: the downstream closed before sending anything; no upstream connection");
                    return;
                }
            }

            await ConnectAndProxyAsync(clusterName, downstreamSocket, downstreamTls, plaintext, early, shutdownDownstream, originalDestination, proxyProtocolTlvs).ConfigureAwait(false);
        }
        finally
        {
            early?.Dispose();
            if (plaintext is not null)
            {
                await plaintext.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private void OnEarlyRead() => _idle?.Set(_config.IdleTimeout);

    private async Task ConnectAndProxyAsync(string clusterName, Socket downstreamSocket, Stream? downstreamTls, NetworkStream? plaintext, EarlyDataReader? early, Func<ValueTask> shutdownDownstream, System.Net.IPEndPoint? originalDestination, IReadOnlyList<(byte Type, byte[] Value)>? proxyProtocolTlvs)
    {
        var config = _config;
        if (!config.ClusterManager.TryGetCluster(clusterName, out var cluster))
        {
            config.Stats.DownstreamCxNoRoute.Inc();
            _info.SetResponseFlag(ResponseFlags.NoRouteFound);
            return;
        }

        _info.UpstreamCluster = cluster;

        // The cluster's max_connections circuit breaker, checked before connecting as Envoy does.
        var connections = cluster.Info.CircuitBreakers.Default.Connections;
        if (!connections.TryAcquire())
        {
            cluster.Info.Stats.UpstreamCxOverflow.Inc();
            _info.SetResponseFlag(ResponseFlags.UpstreamOverflow);
            return;
        }

        try
        {
            // Plaintext both ways runs on the epoll engine, both sockets on one loop; the upstream
            // decides per host (TLS comes with the host's transport socket).
            var loop = downstreamTls is null && EpollLoop.IsEnabled ? EpollLoop.Next() : null;
            var upstream = await ConnectAsync(cluster, config, _info, _log, _closed.Token, originalDestination, proxyProtocolTlvs, loop).ConfigureAwait(false);
            if (upstream is null)
            {
                return;
            }

            if (config.FlushAccessLogOnConnected)
            {
                LogAccess("TcpUpstreamConnected");
            }

            var (socket, tls, epoll) = upstream.Value;
            if (epoll is not null)
            {
                EarlyBytes prefill = default;
                if (early is not null)
                {
                    // The loop takes the socket over: the pending early read is cancelled (nothing
                    // lost) and what was read goes first.
                    early.Cancel();
                    await early.Reading.ConfigureAwait(false);
                    if (early.Error is not null)
                    {
                        // The client broke while the upstream was connecting: nothing to relay.
                        epoll.Dispose();
                        cluster.Info.Stats.UpstreamCxDestroy.Inc();
                        return;
                    }

                    prefill = new EarlyBytes(early.TakeBuffer(), early.Count, early.Ended);
                }

                await RelayAsync(new EpollSocket(downstreamSocket, loop!), epoll, cluster, prefill).ConfigureAwait(false);
                return;
            }

            await using var downstream = downstreamTls is null && plaintext is null ? new NetworkStream(downstreamSocket, ownsSocket: false) : null;
            await ProxyAsync(downstreamTls ?? plaintext ?? (Stream)downstream!, shutdownDownstream, socket, tls, cluster, early).ConfigureAwait(false);
        }
        finally
        {
            connections.Release();
        }
    }

    /// <summary>Writes the filter's access log entries for the connection as it is now.</summary>
    private void LogAccess(string type)
    {
        if (_config.AccessLogs.Length == 0)
        {
            return;
        }

        try
        {
            AccessLogInstance.LogAll(_config.AccessLogs, new FormatterContext(_info) { AccessLogType = type });
        }
        catch (Exception ex)
        {
            _log.Error($"tcp_proxy: access log failed: {ex.Message}");
        }
    }

    /// <summary>
    /// A connected upstream socket, with its TLS stream when the cluster has an UpstreamTlsContext,
    /// or registered on <paramref name="loop"/> (connected there) when given and the host is plaintext.
    /// </summary>
    private static async Task<(Socket Socket, SslStream? Tls, EpollSocket? Epoll)?> ConnectAsync(Cluster cluster, TcpProxyConfig config, StreamInfo info, Logger log, CancellationToken abort, System.Net.IPEndPoint? originalDestination, IReadOnlyList<(byte Type, byte[] Value)>? proxyProtocolTlvs, EpollLoop? loop)
    {
        var clusterStats = cluster.Info.Stats;
        // ORIGINAL_DST clusters read the connection's original destination; ring hash and Maglev the hash.
        var hash = config.HashKey(info.DownstreamRemoteAddress);
        var lbContext = originalDestination is null && hash is null && info.DynamicMetadata is null
            ? null
            : new ConnectionLoadBalancerContext(originalDestination, hash) { DownstreamConnectionDynamicMetadata = info.DynamicMetadata };
        for (var attempt = 0; attempt < config.MaxConnectAttempts; attempt++)
        {
            // An aggregate cluster's host comes with the listed cluster it belongs to: its connect_timeout and TLS apply.
            var host = cluster.ChooseHost(lbContext, out var target);
            if (host is null)
            {
                clusterStats.UpstreamCxNone.Inc();
                info.SetResponseFlag(ResponseFlags.NoHealthyUpstream);
                return null;
            }

            info.UpstreamHost = host;
            info.UpstreamRemoteAddress = host.Address;
            var socket = new Socket(host.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            clusterStats.UpstreamCxTotal.Inc();
            var started = Stopwatch.GetTimestamp();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(abort);
            timeout.CancelAfter(target.ConnectTimeout);
            var tls = target.Info.TlsFor(host);
            EpollSocket? epoll = null;
            try
            {
                if (loop is not null && tls is null)
                {
                    epoll = await EpollSocket.ConnectAsync(socket, host.Address, timeout.Token, loop).ConfigureAwait(false);
                }
                else
                {
                    await socket.ConnectAsync(host.Address, timeout.Token).ConfigureAwait(false);
                }

                if (cluster.Info.ProxyProtocol is { } proxyProtocol)
                {
                    // The downstream's addresses go first, under the inner transport socket (TLS or raw).
                    await proxyProtocol.SendAsync(socket, info.DownstreamRemoteAddress, info.DownstreamLocalAddress, host.Address, timeout.Token, proxyProtocolTlvs).ConfigureAwait(false);
                }

                SslStream? ssl = null;
                if (tls is not null)
                {
                    // Within the same connect_timeout: the connection is up once TLS is (no ALPN for TCP).
                    var (stream, session, failure) = await tls.HandshakeAsync(new NetworkStream(socket, ownsSocket: true), tls.Sni, null, null, timeout.Token).ConfigureAwait(false);
                    if (stream is null)
                    {
                        if (abort.IsCancellationRequested)
                        {
                            return null;
                        }

                        (timeout.IsCancellationRequested ? clusterStats.UpstreamCxConnectTimeout : clusterStats.UpstreamCxConnectFail).Inc();
                        info.SetResponseFlag(ResponseFlags.UpstreamConnectionFailure);
                        info.UpstreamTransportFailureReason = failure;
                        log.Debug($"tcp_proxy: TLS to {host.Address} (cluster '{cluster.Name}') failed: {failure}");
                        continue;
                    }

                    ssl = stream;
                    info.UpstreamTls = session;
                }

                clusterStats.UpstreamCxConnectMs.Record((long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                info.UpstreamLocalAddress = socket.LocalEndPoint as System.Net.IPEndPoint;
                info.UpstreamTransportFailureReason = null;
                return (socket, ssl, epoll);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                if (epoll is not null)
                {
                    epoll.Dispose();
                }

                socket.Dispose();
                if (abort.IsCancellationRequested)
                {
                    return null;
                }

                (ex is OperationCanceledException ? clusterStats.UpstreamCxConnectTimeout : clusterStats.UpstreamCxConnectFail).Inc();
                info.SetResponseFlag(ResponseFlags.UpstreamConnectionFailure);
                log.Debug($"tcp_proxy: connecting to {host.Address} (cluster '{cluster.Name}') failed: {ex.Message}");
            }
        }

        // Envoy gives up with URX once max_connect_attempts connects failed (UF stays set too).
        clusterStats.UpstreamCxConnectAttemptsExceeded.Inc();
        info.SetResponseFlag(ResponseFlags.UpstreamRetryLimitExceeded);
        return null;
    }

    /// <summary>Plaintext both ways: the epoll relay, then both sockets closed.</summary>
    private async Task RelayAsync(EpollSocket downstream, EpollSocket upstream, Cluster cluster, EarlyBytes early)
    {
        var clusterStats = cluster.Info.Stats;
        clusterStats.UpstreamCxActive.Inc();
        try
        {
            _idle?.Set(_config.IdleTimeout);
            await new EpollRelay(downstream, upstream, _config, _info, _idle, _log, early).RunAsync(_closed.Token).ConfigureAwait(false);
        }
        finally
        {
            if (_idle is not null)
            {
                await _idle.DisposeAsync().ConfigureAwait(false);
            }

            // Unregistered before the descriptors close, so a reused number never sees their events.
            upstream.Dispose();
            downstream.Dispose();
            clusterStats.UpstreamCxActive.Dec();
            clusterStats.UpstreamCxDestroy.Inc();
        }
    }

    private async Task ProxyAsync(Stream downstream, Func<ValueTask> shutdownDownstream, Socket upstreamSocket, SslStream? upstreamTls, Cluster cluster, EarlyDataReader? early)
    {
        var clusterStats = cluster.Info.Stats;
        clusterStats.UpstreamCxActive.Inc();
        Stream upstream = upstreamTls is null ? new NetworkStream(upstreamSocket, ownsSocket: true) : upstreamTls;
        try
        {
            _idle?.Set(_config.IdleTimeout);
            var toUpstream = PumpAsync(downstream, upstream, () =>
            {
                if (upstreamTls is not null)
                {
                    // TLS half-close: close_notify, which the peer reads as the end of the stream.
                    return new ValueTask(upstreamTls.ShutdownAsync());
                }

                upstreamSocket.Shutdown(SocketShutdown.Send);
                return ValueTask.CompletedTask;
            }, fromDownstream: true, early);
            var toDownstream = PumpAsync(upstream, downstream, shutdownDownstream, fromDownstream: false);
            await Task.WhenAll(toUpstream, toDownstream).ConfigureAwait(false);
        }
        finally
        {
            if (_idle is not null)
            {
                await _idle.DisposeAsync().ConfigureAwait(false);
            }

            await upstream.DisposeAsync().ConfigureAwait(false);
            clusterStats.UpstreamCxActive.Dec();
            clusterStats.UpstreamCxDestroy.Inc();
        }
    }

    /// <summary>Copies <paramref name="from"/> to <paramref name="to"/> until EOF (then half-closes) or an error (then closes everything).</summary>
    /// <param name="early">Bytes read before the upstream was connected: they go first.</param>
    private async Task PumpAsync(Stream from, Stream to, Func<ValueTask> halfClose, bool fromDownstream, EarlyDataReader? early = null)
    {
        var stats = _config.Stats;
        var buffer = ArrayPool<byte>.Shared.Rent(_config.BufferBytes);
        var token = _closed.Token;
        try
        {
            if (early is not null && !await SendEarlyAsync(early, to, halfClose, token).ConfigureAwait(false))
            {
                return;
            }

            while (true)
            {
                var read = await from.ReadAsync(buffer.AsMemory(0, _config.BufferBytes), token).ConfigureAwait(false);
                if (read == 0)
                {
                    await halfClose().ConfigureAwait(false);
                    return;
                }

                _idle?.Set(_config.IdleTimeout);
                var write = to.WriteAsync(buffer.AsMemory(0, read), token);
                if (!write.IsCompleted)
                {
                    // The other side is not taking bytes as fast as they come: reading this side waits.
                    (fromDownstream ? stats.DownstreamCxRxBytesBuffered : stats.DownstreamCxTxBytesBuffered).Add(read);
                    if (fromDownstream)
                    {
                        stats.DownstreamFlowControlPausedReadingTotal.Inc();
                    }

                    try
                    {
                        await write.ConfigureAwait(false);
                    }
                    finally
                    {
                        (fromDownstream ? stats.DownstreamCxRxBytesBuffered : stats.DownstreamCxTxBytesBuffered).Sub(read);
                    }

                    if (fromDownstream)
                    {
                        stats.DownstreamFlowControlResumedReadingTotal.Inc();
                    }
                }
                else
                {
                    await write.ConfigureAwait(false);
                }

                (fromDownstream ? stats.DownstreamCxRxBytesTotal : stats.DownstreamCxTxBytesTotal).Add(read);
                if (fromDownstream)
                {
                    _info.BytesReceived += read;
                }
                else
                {
                    _info.BytesSent += read;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException or System.Security.Authentication.AuthenticationException)
        {
            _log.Debug($"tcp_proxy: {(fromDownstream ? "downstream" : "upstream")} side ended: {ex.Message}");
            Close();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The early bytes go upstream first: what is held now at once, then the read still pending
    /// (it is this direction's first read, so awaiting it is what the pump would do anyway).
    /// False when the direction ended there (the client's FIN or an error).
    /// </summary>
    private async Task<bool> SendEarlyAsync(EarlyDataReader early, Stream to, Func<ValueTask> halfClose, CancellationToken token)
    {
        early.Stop();
        var sent = early.Count;
        if (sent > 0)
        {
            await to.WriteAsync(early.Buffer.AsMemory(0, sent), token).ConfigureAwait(false);
        }

        await early.Reading.ConfigureAwait(false);
        var count = early.Count;
        if (count > sent)
        {
            await to.WriteAsync(early.Buffer.AsMemory(sent, count - sent), token).ConfigureAwait(false);
        }

        var buffer = early.TakeBuffer();
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        _config.Stats.DownstreamCxRxBytesTotal.Add(count);
        _info.BytesReceived += count;
        if (early.Error is not null)
        {
            _log.Debug($"tcp_proxy: downstream side ended: {early.Error.Message}");
            Close();
            return false;
        }

        if (early.Ended)
        {
            await halfClose().ConfigureAwait(false);
            return false;
        }

        return true;
    }

    private void OnIdle()
    {
        if (Interlocked.Exchange(ref _timedOut, 1) == 0)
        {
            _config.Stats.IdleTimeout.Inc();
            Close();
        }
    }

    private void OnMaxDuration()
    {
        if (Interlocked.Exchange(ref _timedOut, 1) == 0)
        {
            _config.Stats.MaxDownstreamConnectionDurationReached.Inc();
            _info.SetResponseFlag(ResponseFlags.DurationTimeout);
            Close();
        }
    }

    private void Close()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
