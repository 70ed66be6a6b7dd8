using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Network;
using Legate.Tls;
using Microsoft.AspNetCore.Connections;

namespace Legate.Upstream.ConnectionPool;

/// <summary>
/// The HTTP/1.1 connections of one cluster to one host: idle keep-alive connections are reused
/// (last in, first out, so a few stay warm and the rest time out), one request per connection at
/// a time, no pipelining (as Envoy). New connections are made within the cluster's connect_timeout.
/// An idle connection closes after the cluster's idle_timeout (upstream_cx_idle_timeout), by its
/// own timer, so the upstream sees it go even when no request comes.
/// </summary>
/// <remarks>
/// Circuit breakers (of the pool's routing priority: Envoy keeps one pool per priority per host, and a
/// HIGH-priority route's pool counts against the HIGH thresholds): a request that finds no idle connection is pending until it
/// has one; beyond <c>max_pending_requests</c> it fails at once (overflow). A pending request opens
/// a connection if <c>max_connections</c> allows (else <c>upstream_cx_overflow</c>) or waits for a
/// connection to be released or a connection slot to free up. A pool counts against
/// <c>max_connection_pools</c> from its creation.
/// </remarks>
internal sealed class Http1ConnectionPool : IDrainableConnectionPool
{
    // Bumped by DrainConnections: connections opened before are closed instead of reused.
    private int _generation;

    // Used as a stack (the end is the top); a list so that an idle timer can take out its own entry.
    private readonly List<Http1UpstreamConnection> _idle = new();
    private readonly Queue<TaskCompletionSource<Http1UpstreamConnection?>> _waiters = new();
    private PoolAdmission _admission;
    private readonly Lock _lock = new();
    private readonly Host _host;
    private readonly Cluster _cluster;
    private readonly SocketTransport _transport;
    private readonly TimeProvider _time;
    private readonly ResourceManager _resources;

    // enable_trailers on the cluster's HTTP/1 options: response trailers are parsed (and forwarded if the HCM enables them too).
    private static readonly Http1ParserOptions s_trailerOptions = Http1ParserOptions.ClientDefaults with { EnableTrailers = true };

    // TLS clusters: the SNI this pool's connections send, and the DNS name auto_san_validation requires.
    private readonly string _serverName;
    private readonly string? _verifyName;
    private readonly ClientTlsContext? _tls;

    // envoy.transport_sockets.upstream_proxy_protocol: each connection starts with the downstream's addresses.
    private readonly Extensions.TransportSockets.ProxyProtocol.UpstreamProxyProtocol? _proxyProtocol;

    /// <param name="serverName">The SNI for a TLS cluster (its <c>sni</c>, or the request's host under auto_sni); null = the cluster's <c>sni</c>.</param>
    /// <param name="verifyName">The name the server certificate must carry (auto_san_validation), or null.</param>
    /// <param name="priority">The routing priority of the routes this pool serves: its circuit-breaker thresholds.</param>
    public Http1ConnectionPool(Host host, Cluster cluster, SocketTransport transport, TimeProvider time, string? serverName = null, string? verifyName = null,
        Envoy.Config.Core.V3.RoutingPriority priority = Envoy.Config.Core.V3.RoutingPriority.Default)
    {
        _host = host;
        _cluster = cluster;
        _transport = transport;
        _time = time;
        _tls = cluster.Info.TlsFor(host);
        _proxyProtocol = cluster.Info.ProxyProtocol;
        _serverName = serverName ?? _tls?.Sni ?? string.Empty;
        _verifyName = verifyName;
        _resources = cluster.Info.CircuitBreakers.For(priority);
    }

    /// <summary>Idle connections right now.</summary>
    public int IdleCount
    {
        get
        {
            lock (_lock)
            {
                return _idle.Count;
            }
        }
    }

    /// <summary>An idle connection if one is usable, else a new one, else one released by another request.</summary>
    /// <exception cref="UpstreamConnectException">The connection could not be made.</exception>
    /// <exception cref="UpstreamOverflowException">A circuit breaker is open.</exception>
    /// <param name="downstreamSource">The downstream connection's source, announced by an upstream PROXY protocol header.</param>
    /// <param name="downstreamDestination">The downstream connection's destination, likewise.</param>
    /// <param name="proxyProtocolTlvs">The downstream's PROXY v2 TLVs the header passes on (the cluster's pass_through_tlvs choose).</param>
    public ValueTask<Http1UpstreamConnection> AcquireAsync(CancellationToken cancellationToken, IPEndPoint? downstreamSource = null, IPEndPoint? downstreamDestination = null, IReadOnlyList<(byte Type, byte[] Value)>? proxyProtocolTlvs = null)
    {
        if (!_admission.IsAdmitted(_resources))
        {
            _cluster.Info.Stats.UpstreamCxPoolOverflow.Inc();
            throw new UpstreamOverflowException("connection pool");
        }

        // A PROXY protocol cluster's connection belongs to the downstream it announced: never reused.
        return _proxyProtocol is null && TryTakeIdle() is { } idle ? ValueTask.FromResult(idle) : AcquirePendingAsync(cancellationToken, downstreamSource, downstreamDestination, proxyProtocolTlvs);
    }

    private async ValueTask<Http1UpstreamConnection> AcquirePendingAsync(CancellationToken cancellationToken, IPEndPoint? downstreamSource, IPEndPoint? downstreamDestination, IReadOnlyList<(byte Type, byte[] Value)>? proxyProtocolTlvs)
    {
        var resources = _resources;
        var stats = _cluster.Info.Stats;
        if (!resources.PendingRequests.TryAcquire())
        {
            stats.UpstreamRqPendingOverflow.Inc();
            throw new UpstreamOverflowException("pending request");
        }

        stats.UpstreamRqPendingTotal.Inc();
        stats.UpstreamRqPendingActive.Inc();
        try
        {
            while (true)
            {
                TaskCompletionSource<Http1UpstreamConnection?>? waiter = null;
                lock (_lock)
                {
                    if (!_host.TryAcquireConnectionSlot(resources, _cluster.Info.CircuitBreakers.PerHostMaxConnections))
                    {
                        waiter = new TaskCompletionSource<Http1UpstreamConnection?>(TaskCreationOptions.RunContinuationsAsynchronously);
                        _waiters.Enqueue(waiter);
                    }
                }

                if (waiter is null)
                {
                    try
                    {
                        return await ConnectAsync(cancellationToken, downstreamSource, downstreamDestination, proxyProtocolTlvs).ConfigureAwait(false);
                    }
                    catch
                    {
                        OnConnectionClosed();
                        throw;
                    }
                }

                stats.UpstreamCxOverflow.Inc();
                Http1UpstreamConnection? handed;
                using (cancellationToken.UnsafeRegister(static (state, token) => ((TaskCompletionSource<Http1UpstreamConnection?>)state!).TrySetCanceled(token), waiter))
                {
                    handed = await waiter.Task.ConfigureAwait(false);
                }

                // A released connection, or null: a connection slot freed up, try again.
                if (handed is not null)
                {
                    return handed;
                }

                if (TryTakeIdle() is { } idle)
                {
                    return idle;
                }
            }
        }
        finally
        {
            resources.PendingRequests.Release();
            stats.UpstreamRqPendingActive.Dec();
        }
    }

    private Http1UpstreamConnection? TryTakeIdle()
    {
        var idleTimeout = _cluster.Info.IdleTimeout;
        while (true)
        {
            Http1UpstreamConnection? connection = null;
            lock (_lock)
            {
                if (_idle.Count > 0)
                {
                    connection = _idle[^1];
                    _idle.RemoveAt(_idle.Count - 1);
                }
            }

            if (connection is null)
            {
                break;
            }

            // The event's cached clock (no clock read per request): idle for seconds, not microseconds.
            var expired = idleTimeout > TimeSpan.Zero && Stopwatch.GetElapsedTime(connection.IdleSince, EventClock.Timestamp) > idleTimeout;
            connection.DisarmIdleTimeout();
            if (!expired && connection.IsReusable())
            {
                return connection;
            }

            if (expired)
            {
                _cluster.Info.Stats.UpstreamCxIdleTimeout.Inc();
                _cluster.Info.Stats.UpstreamCxDestroyLocal.Inc();
            }
            else
            {
                // Closed (or spoke out of turn) while idle: the upstream ended it, as Envoy sees the close event.
                _cluster.Info.Stats.UpstreamCxDestroyRemote.Inc();
            }

            _ = connection.DisposeAsync();
        }

        return null;
    }

    /// <summary>A connection closed or was never made: its slot goes back, and a waiting request may open one.</summary>
    private void OnConnectionClosed()
    {
        lock (_lock)
        {
            _host.ReleaseConnectionSlot(_resources);
            while (_waiters.TryDequeue(out var waiter))
            {
                if (waiter.TrySetResult(null))
                {
                    break;
                }
            }
        }
    }

    /// <summary>Returns a connection after an exchange; <paramref name="reusable"/> false closes it.</summary>
    public void Release(Http1UpstreamConnection connection, bool reusable)
    {
        var max = _cluster.Info.MaxRequestsPerConnection;
        if (reusable && max > 0 && connection.Requests >= max)
        {
            _cluster.Info.Stats.UpstreamCxMaxRequests.Inc();
            reusable = false;
        }

        if (!reusable || connection.IsClosed || _proxyProtocol is not null || connection.PoolGeneration != Volatile.Read(ref _generation))
        {
            _ = connection.DisposeAsync();
            return;
        }

        connection.IdleSince = EventClock.Timestamp;
        lock (_lock)
        {
            // A pending request takes the connection directly.
            while (_waiters.TryDequeue(out var waiter))
            {
                if (waiter.TrySetResult(connection))
                {
                    return;
                }
            }

            _idle.Add(connection);
        }

        if (_cluster.Info.IdleTimeout > TimeSpan.Zero)
        {
            connection.ArmIdleTimeout(_cluster.Info.IdleTimeout, s_onIdleTimeout, this);
        }
    }

    /// <summary>
    /// Envoy's drainConnections(DrainExistingConnections): idle connections close now, busy ones
    /// when their exchange ends; new requests get new connections.
    /// </summary>
    public void DrainConnections()
    {
        Http1UpstreamConnection[] idle;
        lock (_lock)
        {
            Interlocked.Increment(ref _generation);
            idle = [.. _idle];
            _idle.Clear();
        }

        foreach (var connection in idle)
        {
            connection.DisarmIdleTimeout();
            _cluster.Info.Stats.UpstreamCxDestroyLocal.Inc();
            _ = connection.DisposeAsync();
        }
    }

    private static readonly Action<Http1UpstreamConnection, object> s_onIdleTimeout = static (connection, pool) => ((Http1ConnectionPool)pool).OnIdleTimeout(connection);

    /// <summary>An idle connection's timer fired: close it unless a request took it meanwhile.</summary>
    private void OnIdleTimeout(Http1UpstreamConnection connection)
    {
        lock (_lock)
        {
            if (!_idle.Remove(connection))
            {
                return;
            }
        }

        _cluster.Info.Stats.UpstreamCxIdleTimeout.Inc();
        _cluster.Info.Stats.UpstreamCxDestroyLocal.Inc();
        _ = connection.DisposeAsync();
    }

    private async ValueTask<Http1UpstreamConnection> ConnectAsync(CancellationToken cancellationToken, IPEndPoint? downstreamSource, IPEndPoint? downstreamDestination, IReadOnlyList<(byte Type, byte[] Value)>? proxyProtocolTlvs)
    {
        var stats = _cluster.Info.Stats;
        var address = _host.Address;
        var generation = Volatile.Read(ref _generation);
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var started = Stopwatch.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_cluster.ConnectTimeout);
        ConnectionContext? plaintext = null;
        try
        {
            if (_tls is null && _proxyProtocol is null)
            {
                plaintext = await _transport.ConnectAsync(socket, address, timeout.Token).ConfigureAwait(false);
            }
            else
            {
                await socket.ConnectAsync(address, timeout.Token).ConfigureAwait(false);
                if (_proxyProtocol is { } proxyProtocol)
                {
                    await proxyProtocol.SendAsync(socket, downstreamSource, downstreamDestination, address, timeout.Token, proxyProtocolTlvs).ConfigureAwait(false);
                }

                if (_tls is null)
                {
                    // The PROXY header went out on .NET's socket engine; the connection runs on ours from here.
                    plaintext = _transport.Create(socket);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            stats.UpstreamCxConnectFail.Inc();
            stats.UpstreamCxConnectTimeout.Inc();
            _host.ConnectFailed();
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

        ConnectionContext connection;
        if (_tls is { } tls)
        {
            // Envoy's connect_timeout covers the handshake too: the connection is up once TLS is.
            var (ssl, session, failure) = await tls.HandshakeAsync(new NetworkStream(socket, ownsSocket: true), _serverName, _verifyName, ClientTlsContext.Http11Alpn, timeout.Token).ConfigureAwait(false);
            if (ssl is null)
            {
                cancellationToken.ThrowIfCancellationRequested();
                stats.UpstreamCxConnectFail.Inc();
                _host.ConnectFailed();
                if (timeout.IsCancellationRequested)
                {
                    stats.UpstreamCxConnectTimeout.Inc();
                    throw new UpstreamConnectException(UpstreamResetReasons.ConnectionTimeout, "connection timeout");
                }

                throw new UpstreamConnectException(UpstreamResetReasons.ConnectionFailure, failure!);
            }

            connection = new TlsConnection(ssl, session!, socket.LocalEndPoint, address, _cluster.Info.BufferLimitBytes);
        }
        else
        {
            connection = plaintext!;
        }

        stats.UpstreamCxConnectMs.Record((long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        stats.UpstreamCxTotal.Inc();
        stats.UpstreamCxHttp1Total.Inc();
        stats.UpstreamCxActive.Inc();
        _host.ConnectionOpened();
        return new Http1UpstreamConnection(_host, address, connection, stats, _time, _cluster.Info.Http1EnableTrailers ? s_trailerOptions : Http1ParserOptions.ClientDefaults)
        {
            Closed = OnConnectionClosed,
            PoolGeneration = generation,
        };
    }

    private static string SocketErrorText(SocketException ex) => ex.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "Connection refused",
        SocketError.HostUnreachable => "No route to host",
        SocketError.NetworkUnreachable => "Network is unreachable",
        SocketError.TimedOut => "Connection timed out",
        _ => ex.Message,
    };
}
