using System.Buffers;
using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using Legate.Network;
using Legate.Server.Logging;
using Legate.Upstream;

namespace Legate.Extensions.Filters.Network.TcpProxy;

/// <summary>
/// One proxied TCP connection: picks the cluster and a host (up to <c>max_connect_attempts</c>),
/// then copies bytes both ways on raw sockets (or the downstream TLS stream). Each direction reads
/// into one fixed buffer and does not read again until the other side took the bytes, so a slow
/// side holds the fast one back (at most one buffer per direction is ever held). A FIN is passed
/// on as a half-close (shutdown of the other side's send direction) and the other direction keeps
/// flowing until it ends too; an error on either side resets both. The idle timeout restarts on
/// every read; <c>max_downstream_connection_duration</c> bounds the whole connection.
/// </summary>
internal sealed class TcpProxySession
{
    private readonly TcpProxyConfig _config;
    private readonly Logger _log;
    private readonly CancellationTokenSource _closed;
    private readonly DeadlineTimer? _idle;
    private int _timedOut;

    private TcpProxySession(TcpProxyConfig config, Logger log, TimeProvider time, CancellationToken abort)
    {
        _config = config;
        _log = log;
        _closed = CancellationTokenSource.CreateLinkedTokenSource(abort);
        if (config.IdleTimeout > TimeSpan.Zero)
        {
            _idle = new DeadlineTimer(time, static state => ((TcpProxySession)state).OnIdle(), this);
        }
    }

    /// <param name="downstream">The downstream byte stream (a <see cref="NetworkStream"/>, or the TLS stream).</param>
    /// <param name="shutdownDownstream">Half-closes the downstream's send direction (FIN, or TLS close_notify).</param>
    /// <param name="originalDestination">The connection's restored original destination, if a listener filter restored one (for ORIGINAL_DST clusters).</param>
    public static async Task RunAsync(Stream downstream, Func<ValueTask> shutdownDownstream, TcpProxyConfig config, Logger log, TimeProvider time, CancellationToken abort, System.Net.IPEndPoint? originalDestination = null)
    {
        var stats = config.Stats;
        stats.DownstreamCxTotal.Inc();
        if (!config.ClusterManager.TryGetCluster(config.PickClusterName(), out var cluster))
        {
            stats.DownstreamCxNoRoute.Inc();
            return;
        }

        var upstream = await ConnectAsync(cluster, config, log, abort, originalDestination).ConfigureAwait(false);
        if (upstream is null)
        {
            return;
        }

        var (socket, tls) = upstream.Value;
        var session = new TcpProxySession(config, log, time, abort);
        await session.ProxyAsync(downstream, shutdownDownstream, socket, tls, cluster, time).ConfigureAwait(false);
    }

    /// <summary>A connected upstream socket, with its TLS stream when the cluster has an UpstreamTlsContext.</summary>
    private static async Task<(Socket Socket, SslStream? Tls)?> ConnectAsync(Cluster cluster, TcpProxyConfig config, Logger log, CancellationToken abort, System.Net.IPEndPoint? originalDestination)
    {
        var clusterStats = cluster.Info.Stats;
        // Only ORIGINAL_DST clusters read the connection's original destination.
        var lbContext = originalDestination is null ? null : new ConnectionLoadBalancerContext(originalDestination);
        for (var attempt = 0; attempt < config.MaxConnectAttempts; attempt++)
        {
            // An aggregate cluster's host comes with the listed cluster it belongs to: its connect_timeout and TLS apply.
            var host = cluster.ChooseHost(lbContext, out var target);
            if (host is null)
            {
                clusterStats.UpstreamCxNone.Inc();
                return null;
            }

            var socket = new Socket(host.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            clusterStats.UpstreamCxTotal.Inc();
            var started = Stopwatch.GetTimestamp();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(abort);
            timeout.CancelAfter(target.ConnectTimeout);
            try
            {
                await socket.ConnectAsync(host.Address, timeout.Token).ConfigureAwait(false);
                SslStream? ssl = null;
                if (target.Info.TlsFor(host) is { } tls)
                {
                    // Within the same connect_timeout: the connection is up once TLS is (no ALPN for TCP).
                    var (stream, _, failure) = await tls.HandshakeAsync(new NetworkStream(socket, ownsSocket: true), tls.Sni, null, null, timeout.Token).ConfigureAwait(false);
                    if (stream is null)
                    {
                        if (abort.IsCancellationRequested)
                        {
                            return null;
                        }

                        (timeout.IsCancellationRequested ? clusterStats.UpstreamCxConnectTimeout : clusterStats.UpstreamCxConnectFail).Inc();
                        log.Debug($"tcp_proxy: TLS to {host.Address} (cluster '{cluster.Name}') failed: {failure}");
                        continue;
                    }

                    ssl = stream;
                }

                clusterStats.UpstreamCxConnectMs.Record((long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                return (socket, ssl);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                socket.Dispose();
                if (abort.IsCancellationRequested)
                {
                    return null;
                }

                (ex is OperationCanceledException ? clusterStats.UpstreamCxConnectTimeout : clusterStats.UpstreamCxConnectFail).Inc();
                log.Debug($"tcp_proxy: connecting to {host.Address} (cluster '{cluster.Name}') failed: {ex.Message}");
            }
        }

        return null;
    }

    private async Task ProxyAsync(Stream downstream, Func<ValueTask> shutdownDownstream, Socket upstreamSocket, SslStream? upstreamTls, Cluster cluster, TimeProvider time)
    {
        var clusterStats = cluster.Info.Stats;
        clusterStats.UpstreamCxActive.Inc();
        using var maxDuration = _config.MaxDownstreamConnectionDuration > TimeSpan.Zero
            ? new Timer(static s => ((TcpProxySession)s!).OnMaxDuration(), this, _config.MaxDownstreamConnectionDuration, Timeout.InfiniteTimeSpan)
            : null;
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
            }, fromDownstream: true);
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
            _closed.Dispose();
        }
    }

    /// <summary>Copies <paramref name="from"/> to <paramref name="to"/> until EOF (then half-closes) or an error (then closes everything).</summary>
    private async Task PumpAsync(Stream from, Stream to, Func<ValueTask> halfClose, bool fromDownstream)
    {
        var stats = _config.Stats;
        var buffer = ArrayPool<byte>.Shared.Rent(_config.BufferBytes);
        var token = _closed.Token;
        try
        {
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
