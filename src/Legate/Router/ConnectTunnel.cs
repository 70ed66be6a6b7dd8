using System.Buffers;
using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Upstream;

namespace Legate.Router;

/// <summary>
/// A terminated CONNECT (Envoy's TCP upstream for a route whose CONNECT <c>upgrade_configs</c> entry
/// has <c>connect_config</c>): the request headers are not sent anywhere; a raw TCP connection (TLS
/// when the cluster has a transport socket) is opened to a host of the cluster within its
/// <c>connect_timeout</c>, then <c>200</c> goes downstream and the request payload and the
/// upstream bytes are relayed both ways until either side ends. The downstream end of the request
/// half-closes the upstream connection; the upstream's FIN ends the response.
/// </summary>
/// <remarks>
/// Failures before the 200 are the router's local replies (503 UH / UO / UF with Envoy's bodies and
/// details). Once the tunnel is up there is no route timeout (stream_idle_timeout still applies, as
/// in Envoy), and an upstream reset resets the downstream stream (UC).
/// </remarks>
internal sealed class ConnectTunnel
{
    private const int ReadBufferSize = 16 * 1024;

    private readonly HttpStream _stream;
    private readonly Cluster _cluster;

    // The cluster the host came from: the route's, or for an aggregate the listed cluster it chose
    // (its circuit breakers, connect timeout, transport socket and connection stats apply).
    private Cluster _target;
    private readonly bool _suppressEnvoyHeaders;
    private readonly Extensions.TransportSockets.ProxyProtocol.UpstreamProxyProtocol? _proxyProtocol;
    private readonly Server.Logging.Logger _log;

    // Completed once the upstream connection is up (true) or failed (false): request payload that
    // arrives earlier waits on it, as Envoy's router holds body data until the TCP pool is ready.
    private readonly TaskCompletionSource<bool> _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Socket? _socket;
    private Stream? _upstream;
    private Host? _host;
    private bool _connectionSlot;
    private int _closed;
    private readonly bool _dynamicStats;

    // The router's upstream_log hooks (null where nobody logs, e.g. unit tests).
    private readonly RouterFilter? _owner;
    private bool _attemptStarted;
    private HttpResponseHead? _response;

    /// <param name="owner">The router filter, for its upstream_log: the tunnel is one upstream attempt.</param>
    /// <param name="proxyProtocol">The route's <c>connect_config.proxy_protocol_config</c>, if any.</param>
    public ConnectTunnel(HttpStream stream, Cluster cluster, bool suppressEnvoyHeaders, bool dynamicStats, Extensions.TransportSockets.ProxyProtocol.UpstreamProxyProtocol? proxyProtocol = null, RouterFilter? owner = null)
    {
        _owner = owner;
        _stream = stream;
        _proxyProtocol = proxyProtocol;
        _cluster = cluster;
        _target = cluster;
        _suppressEnvoyHeaders = suppressEnvoyHeaders;
        _dynamicStats = dynamicStats;
        _log = stream.Config.Log;
    }

    /// <summary>Connects, answers 200 and relays the upstream's bytes downstream until it closes or the stream is reset.</summary>
    public async Task RunAsync()
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            if (!await ConnectAsync().ConfigureAwait(false))
            {
                _connected.TrySetResult(false);
                return;
            }

            _connected.TrySetResult(true);
            var head = new HttpResponseHead { StatusCode = 200 };
            _response = head;
            if (!_suppressEnvoyHeaders)
            {
                head.Headers.Set(KnownHeader.XEnvoyUpstreamServiceTime,
                    ((long)Stopwatch.GetElapsedTime(started).TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            _stream.Info.FirstUpstreamRxByteReceived = Stopwatch.GetTimestamp();
            if (_dynamicStats)
            {
                _cluster.Info.Stats.UpstreamRqXx[1].Inc();
            }

            await _stream.EncodeHeadersAsync(head, endStream: false).ConfigureAwait(false);
            _stream.OnTunnelEstablished();
            // A POST tunnel (allow_post) is no upgrade for the connection manager's stats.
            var upgrade = _stream.RequestHeaders.MethodKind == HttpMethodKind.Connect ? _stream.Config.Stats.DownstreamCxUpgradesActive : null;
            upgrade?.Inc();
            try
            {
                await RelayUpstreamAsync().ConfigureAwait(false);
            }
            finally
            {
                upgrade?.Dec();
            }
        }
        finally
        {
            _connected.TrySetResult(false);
            Close();
        }
    }

    /// <summary>Request payload to the upstream connection, once it is up; the end of the request half-closes it.</summary>
    public async ValueTask DecodeDataAsync(ReadOnlySequence<byte> data, bool endStream)
    {
        if (!await _connected.Task.ConfigureAwait(false) || _upstream is not { } upstream)
        {
            return;
        }

        try
        {
            foreach (var segment in data)
            {
                await upstream.WriteAsync(segment, _stream.ResetToken).ConfigureAwait(false);
            }

            if (endStream)
            {
                _stream.Info.LastUpstreamTxByteSent = Stopwatch.GetTimestamp();
                if (upstream is SslStream ssl)
                {
                    await ssl.ShutdownAsync().ConfigureAwait(false);
                }

                _socket?.Shutdown(SocketShutdown.Send);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // The tunnel is closing (the relay loop sees it and resets or ends the stream).
            _log.Debug($"CONNECT tunnel to {_host?.Address}: write failed: {ex.Message}");
        }
    }

    /// <summary>The stream ended (or was reset) without the relay loop finishing: close the upstream connection.</summary>
    public void OnDestroy()
    {
        _connected.TrySetResult(false);
        Close();
    }

    private async ValueTask<bool> ConnectAsync()
    {
        var stream = _stream;
        var host = _cluster.ChooseHost(null, out var target);
        if (host is null)
        {
            _cluster.Info.Stats.UpstreamCxNone.Inc();
            await stream.SendLocalReplyAsync(503, "no healthy upstream", ResponseCodeDetails.NoHealthyUpstream, ResponseFlags.NoHealthyUpstream).ConfigureAwait(false);
            return false;
        }

        _target = target;
        var info = target.Info;
        var stats = info.Stats;
        stream.Info.UpstreamHost = host;
        stream.Info.AttemptCount++;
        _owner?.BeginUpstreamLogAttempt();
        _attemptStarted = true;
        if (!info.CircuitBreakers.Default.Connections.TryAcquire())
        {
            // Envoy's TCP pool is bounded by max_connections.
            stats.UpstreamCxOverflow.Inc();
            await stream.SendLocalReplyAsync(503, ResponseCodeDetails.UpstreamResetBody(UpstreamResetReasons.Overflow, null),
                ResponseCodeDetails.UpstreamResetBeforeResponseStarted(UpstreamResetReasons.Overflow), ResponseFlags.UpstreamOverflow).ConfigureAwait(false);
            return false;
        }

        _connectionSlot = true;
        _host = host;
        stats.UpstreamRqTotal.Inc();
        stats.UpstreamRqActive.Inc();
        host.RequestStarted();
        var socket = new Socket(host.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket = socket;
        var started = Stopwatch.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stream.ResetToken);
        timeout.CancelAfter(target.ConnectTimeout);
        string reason;
        string? transportFailure = null;
        try
        {
            await socket.ConnectAsync(host.Address, timeout.Token).ConfigureAwait(false);
            if (info.ProxyProtocol is { } proxyProtocol)
            {
                var (source, destination, tlvs) = stream.ProxyProtocolState;
                await proxyProtocol.SendAsync(socket, source, destination, host.Address, timeout.Token, tlvs).ConfigureAwait(false);
            }

            Stream upstream = new NetworkStream(socket, ownsSocket: true);
            if (info.TlsFor(host) is { } tls)
            {
                // connect_timeout covers the handshake too; a CONNECT tunnel carries no ALPN.
                var (ssl, _, failure) = await tls.HandshakeAsync(upstream, tls.Sni, null, null, timeout.Token).ConfigureAwait(false);
                if (ssl is null)
                {
                    throw new AuthenticationFailure(failure ?? "TLS handshake failed");
                }

                upstream = ssl;
            }

            if (_proxyProtocol is { } connectProxyProtocol)
            {
                // connect_config.proxy_protocol_config: the header is the tunnel's first payload, inside TLS when
                // the cluster has it (Envoy writes it through the upstream connection), after the cluster's own.
                var header = connectProxyProtocol.Header(stream.Info.DownstreamRemoteAddress, stream.Info.DownstreamLocalAddress, socket.LocalEndPoint as System.Net.IPEndPoint, host.Address);
                await upstream.WriteAsync(header, timeout.Token).ConfigureAwait(false);
            }

            _upstream = upstream;
            stats.UpstreamCxConnectMs.Record((long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            stats.UpstreamCxTotal.Inc();
            stats.UpstreamCxActive.Inc();
            host.ConnectionOpened();
            host.ReportResult(OutlierResult.LocalOriginConnectSuccess);
            stream.Info.UpstreamRemoteAddress = host.Address;
            stream.Info.UpstreamLocalAddress = socket.LocalEndPoint as System.Net.IPEndPoint;
            stream.Info.FirstUpstreamTxByteSent = Stopwatch.GetTimestamp();
            _owner?.LogUpstreamPoolReady();
            return true;
        }
        catch (OperationCanceledException) when (stream.ResetToken.IsCancellationRequested)
        {
            // The client went away while connecting.
            return false;
        }
        catch (OperationCanceledException)
        {
            stats.UpstreamCxConnectFail.Inc();
            stats.UpstreamCxConnectTimeout.Inc();
            reason = UpstreamResetReasons.ConnectionTimeout;
        }
        catch (SocketException ex)
        {
            stats.UpstreamCxConnectFail.Inc();
            reason = UpstreamResetReasons.ConnectionFailure;
            transportFailure = "delayed connect error: " + ex.Message;
        }
        catch (AuthenticationFailure ex)
        {
            stats.UpstreamCxConnectFail.Inc();
            reason = UpstreamResetReasons.ConnectionFailure;
            transportFailure = ex.Message;
        }

        host.ConnectFailed();
        host.ReportResult(OutlierResult.LocalOriginConnectFailed);
        stream.Info.UpstreamTransportFailureReason = transportFailure;
        _owner?.NoteAttemptFailure(ResponseFlags.UpstreamConnectionFailure, reason);
        _log.Debug($"CONNECT tunnel to {host.Address} (cluster '{target.Name}') failed: {reason} {transportFailure}");
        await stream.SendLocalReplyAsync(503, ResponseCodeDetails.UpstreamResetBody(reason, transportFailure),
            ResponseCodeDetails.UpstreamResetBeforeResponseStarted(reason, transportFailure), ResponseFlags.UpstreamConnectionFailure).ConfigureAwait(false);
        return false;
    }

    private async ValueTask RelayUpstreamAsync()
    {
        var upstream = _upstream!;
        var stream = _stream;
        var buffer = ArrayPool<byte>.Shared.Rent(ReadBufferSize);
        try
        {
            while (true)
            {
                // What went downstream (the 200, the last chunk) is flushed before waiting on the upstream.
                await stream.FlushAsync().ConfigureAwait(false);
                var read = await upstream.ReadAsync(buffer, stream.ResetToken).ConfigureAwait(false);
                if (stream.IsReset)
                {
                    return;
                }

                if (read == 0)
                {
                    // The upstream closed its side: the response (the tunnel) ends.
                    await stream.EncodeDataAsync(default, endStream: true).ConfigureAwait(false);
                    if (_dynamicStats)
                    {
                        _cluster.Info.Stats.UpstreamRqCompleted.Inc();
                    }

                    return;
                }

                // EncodeDataAsync returns once the codec took the bytes (back-pressure), so the buffer is ours again.
                await stream.EncodeDataAsync(new ReadOnlySequence<byte>(buffer, 0, read), endStream: false).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            if (!stream.IsReset)
            {
                _log.Debug($"CONNECT tunnel to {_host?.Address}: {ex.Message}");
                _target.Info.Stats.UpstreamCxDestroyRemote.Inc();
                stream.ResetStream(ResponseFlags.UpstreamConnectionTermination, ResponseCodeDetails.UpstreamResetAfterResponseStarted(UpstreamResetReasons.ConnectionTermination));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        if (_attemptStarted)
        {
            // The tunnel was one upstream attempt: its UpstreamEnd entry (the synthesized 200 once connected).
            _owner?.LogUpstreamAttempt(_response, null);
        }

        var stats = _target.Info.Stats;
        if (_upstream is { } upstream)
        {
            upstream.Dispose();
            stats.UpstreamCxActive.Dec();
            stats.UpstreamCxDestroy.Inc();
            _host!.ConnectionClosed();
        }
        else
        {
            _socket?.Dispose();
        }

        if (_connectionSlot)
        {
            _target.Info.CircuitBreakers.Default.Connections.Release();
            stats.UpstreamRqActive.Dec();
            _host!.RequestFinished();
        }
    }

    /// <summary>A failed upstream TLS handshake, carrying Envoy's transport failure reason.</summary>
    private sealed class AuthenticationFailure(string reason) : Exception(reason);
}
