using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Envoy.Config.Listener.V3;
using Legate.Config;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Http.Http2;
using Legate.Network.FilterChainMatching;
using Legate.Server.Logging;
using Microsoft.AspNetCore.Connections;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Network;

/// <summary>
/// One listener: binds its address, accepts connections on its own socket, picks each
/// connection's filter chain (Envoy's filter_chain_match precedence) and runs the chain's
/// terminal network filter, the HTTP connection manager. A connection that matches no chain is
/// closed and counted in <c>listener.&lt;address&gt;.no_filter_chain_match</c>, as Envoy does.
/// The chain's codec_type picks the codec: HTTP/1.1 (<see cref="Http1ServerConnection"/>), HTTP/2
/// (the chain's <see cref="Http2CodecServer"/>), or AUTO (HTTP/2 when the connection starts with the
/// HTTP/2 preface).
/// </summary>
internal sealed class Listener : IAsyncDisposable
{
    private const int Backlog = 1024;

    private readonly Logger _log;
    // The filter chains in force; LDS swaps in a new set while the socket stays (UpdateFrom).
    private volatile FilterChainSet _active;
    private readonly ConcurrentDictionary<FilterChainSet, bool> _generations = new();
    private readonly ConcurrentDictionary<ServedConnection, Task> _connections = new();
    private readonly ConcurrentDictionary<HttpConnectionManagerConfig, Lazy<Http2CodecServer>> _http2 = new();
    private readonly TimeProvider _time;
    private readonly int _bufferLimitBytes;
    private Socket? _socket;
    private SocketTransport? _transport;
    private Task? _acceptLoop;
    private ListenerStats? _stats;
    private readonly Legate.Stats.StatsStore _statsStore;

    private Listener(string name, IPEndPoint endpoint, FilterChainMatcher matcher, HttpConnectionManagerConfig?[] chains, HttpConnectionManagerConfig? defaultChain, int bufferLimitBytes, HttpFilterFactoryContext context)
    {
        Name = name;
        Endpoint = endpoint;
        _active = new FilterChainSet(matcher, chains, defaultChain);
        _generations.TryAdd(_active, true);
        _bufferLimitBytes = bufferLimitBytes;
        _log = context.Logs.Get(LogComponents.Listener);
        _time = context.Time;
        _statsStore = context.Stats;
    }

    public string Name { get; }

    /// <summary>The configured address (port 0 means "any free port").</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>The address actually bound, once started.</summary>
    public IPEndPoint? BoundEndpoint { get; private set; }

    /// <summary>The first HTTP connection manager of this listener, or null.</summary>
    public HttpConnectionManagerConfig? ConnectionManager => Array.Find(_active.Chains, c => c is not null) ?? _active.DefaultChain;

    /// <summary>Every HTTP connection manager of the filter chains in force (LDS warms a listener until their RDS arrives).</summary>
    public IEnumerable<HttpConnectionManagerConfig> ConnectionManagers =>
        _active.Chains.Append(_active.DefaultChain).OfType<HttpConnectionManagerConfig>();

    /// <summary>
    /// LDS changed this listener but not its address: new connections take <paramref name="compiled"/>'s
    /// filter chains from now on, on the same socket; connections on the old chains drain (HTTP/1.1
    /// closes after the current response, HTTP/2 gets GOAWAY) and whatever is left after
    /// <paramref name="drainTime"/> is closed. <paramref name="compiled"/> itself is never started.
    /// </summary>
    public void UpdateFrom(Listener compiled, TimeSpan drainTime)
    {
        var old = _active;
        _active = compiled._active;
        _generations.TryAdd(_active, true);
        old.Drain.Start();
        foreach (var hcm in old.Chains.Append(old.DefaultChain).OfType<HttpConnectionManagerConfig>())
        {
            if (_http2.TryRemove(hcm, out var server) && server.IsValueCreated)
            {
                _ = DrainHttp2Async(server.Value, drainTime);
            }
        }

        _generations.TryRemove(old, out _);
        _log.Info($"listener '{Name}': filter chains updated; connections on the previous ones are draining");
    }

    private async Task DrainHttp2Async(Http2CodecServer server, TimeSpan drainTime)
    {
        try
        {
            using var deadline = new CancellationTokenSource(drainTime, _time);
            await server.StopAsync(deadline.Token).ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _log.Debug($"listener '{Name}': draining an HTTP/2 codec: {ex.Message}");
        }
    }

    /// <summary>Connections being served right now.</summary>
    public int ActiveConnections => _connections.Count;

    /// <summary>Compiles <paramref name="config"/>; returns null when it has errors (added to <paramref name="errors"/>).</summary>
    public static Listener? Compile(Envoy.Config.Listener.V3.Listener config, string path, ConfigErrors errors, HttpFilterFactoryContext context)
    {
        var errorCount = errors.Errors.Count;
        var endpoint = SocketAddresses.ToTcpEndpoint(config.Address, FieldPath.Field(path, "address"), errors);

        if (config.FilterChains.Count == 0 && config.DefaultFilterChain is null)
        {
            errors.Add(path, $"listener '{config.Name}' has no filter chains");
            return null;
        }

        var bufferLimit = (int)Math.Min(config.PerConnectionBufferLimitBytes ?? HttpConnectionManagerConfig.DefaultBufferLimitBytes, int.MaxValue);
        var matcher = FilterChainMatcher.Compile(config, path, errors);
        var chains = new HttpConnectionManagerConfig?[config.FilterChains.Count];
        for (var i = 0; i < chains.Length; i++)
        {
            chains[i] = CompileChain(config.FilterChains[i], FieldPath.Index(FieldPath.Field(path, "filter_chains"), i), errors, context, bufferLimit);
        }

        var defaultChain = config.DefaultFilterChain is { } chain
            ? CompileChain(chain, FieldPath.Field(path, "default_filter_chain"), errors, context, bufferLimit)
            : null;

        if (endpoint is null || matcher is null || errors.Errors.Count > errorCount)
        {
            return null;
        }

        return new Listener(config.Name, endpoint, matcher, chains, defaultChain, bufferLimit, context);
    }

    /// <summary>Binds and starts accepting.</summary>
    /// <exception cref="BindException">The address could not be bound.</exception>
    public Task StartAsync(int ioQueueCount, CancellationToken cancellationToken)
    {
        var socket = new Socket(Endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (Endpoint.AddressFamily == AddressFamily.InterNetworkV6 && Endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                // Envoy's "::" listener with ipv4_compat off still takes IPv4 on Linux by default; keep dual mode.
                socket.DualMode = true;
            }

            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(Endpoint);
            socket.Listen(Backlog);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            var reason = ex.SocketErrorCode == SocketError.AddressAlreadyInUse ? "address already in use" : ex.Message;
            throw new BindException($"cannot bind '{SocketAddresses.Format(Endpoint)}': {reason}", ex);
        }

        _socket = socket;
        BoundEndpoint = (IPEndPoint)socket.LocalEndPoint!;
        _stats = new ListenerStats(_statsStore, SocketAddresses.Format(BoundEndpoint));
        _transport = new SocketTransport(_bufferLimitBytes, ioQueueCount);
        _acceptLoop = AcceptLoopAsync(socket);
        _log.Info($"listener '{Name}' listening on {SocketAddresses.Format(BoundEndpoint)}");
        return Task.CompletedTask;
    }

    /// <summary>
    /// Stops accepting, lets connections finish their current request (idle ones close now), and
    /// when <paramref name="cancellationToken"/> fires closes whatever is left.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_socket is not { } socket)
        {
            return;
        }

        _socket = null;
        socket.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }

        foreach (var generation in _generations.Keys)
        {
            generation.Drain.Start();
        }

        // HTTP/2 connections get a GOAWAY and close when their streams are done; Kestrel aborts the rest when the token fires.
        var http2Stops = Task.WhenAll(_http2.Values.Select(server => server.Value.StopAsync(cancellationToken)));
        var remaining = _connections.Values.ToArray();
        try
        {
            await Task.WhenAll(remaining).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            foreach (var connection in _connections.Keys)
            {
                connection.Abort();
            }

            await Task.WhenAll(_connections.Values.ToArray()).ConfigureAwait(false);
        }

        await http2Stops.ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);
        foreach (var server in _http2.Values)
        {
            await server.Value.DisposeAsync().ConfigureAwait(false);
        }

        _transport?.Dispose();
        foreach (var generation in _generations.Keys)
        {
            generation.Drain.Dispose();
        }
    }

    /// <remarks>
    /// The loader's extension check has already rejected every network filter and transport
    /// socket Legate does not implement, so a chain here is raw_buffer + the HCM.
    /// </remarks>
    private static HttpConnectionManagerConfig? CompileChain(FilterChain chain, string chainPath, ConfigErrors errors, HttpFilterFactoryContext context, int bufferLimit)
    {
        var filtersPath = FieldPath.Field(chainPath, "filters");
        if (chain.Filters.Count == 0)
        {
            errors.Add(filtersPath, "a filter chain needs at least one network filter");
            return null;
        }

        var last = chain.Filters.Count - 1;
        var terminalPath = FieldPath.Index(filtersPath, last);
        if (chain.Filters[last].TypedConfig is { } any && any.Is(Hcm.Descriptor))
        {
            return HttpConnectionManagerConfig.Compile(any.Unpack<Hcm>(), FieldPath.Field(terminalPath, "typed_config"), errors, context, bufferLimit);
        }

        errors.Add(terminalPath, $"network filter '{chain.Filters[last].Name}' is not supported yet");
        return null;
    }

    private async Task AcceptLoopAsync(Socket socket)
    {
        // Accepting continues on whichever thread completes the accept; each connection runs on its own.
        await Task.Yield();
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await socket.AcceptAsync().ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted or SocketError.InvalidArgument)
            {
                return;
            }
            catch (SocketException ex)
            {
                // Out of file descriptors and the like: log, keep accepting.
                _log.Warn($"listener '{Name}': accept failed: {ex.Message}");
                continue;
            }

            Serve(accepted);
        }
    }

    private void Serve(Socket socket)
    {
        var stats = _stats!;
        stats.DownstreamCxTotal.Inc();
        var local = socket.LocalEndPoint as IPEndPoint;
        var remote = socket.RemoteEndPoint as IPEndPoint;
        if (local is null || remote is null)
        {
            socket.Dispose();
            return;
        }

        var active = _active;
        var index = active.Matcher.Match(new ConnectionMatchInfo(local, remote));
        var hcm = index switch
        {
            FilterChainMatcher.NoMatch => null,
            FilterChainMatcher.DefaultFilterChain => active.DefaultChain,
            _ => active.Chains[index],
        };
        if (hcm is null)
        {
            stats.NoFilterChainMatch.Inc();
            _log.Debug($"listener '{Name}': no filter chain for connection from {SocketAddresses.Format(remote)} to {SocketAddresses.Format(local)}; closing");
            socket.Dispose();
            return;
        }

        socket.NoDelay = true;
        var connection = _transport!.Create(socket);
        var served = new ServedConnection(connection);
        stats.DownstreamCxActive.Inc();
        var task = RunConnectionAsync(served, hcm, stats, active.Drain);
        _connections.TryAdd(served, task);
        if (task.IsCompleted)
        {
            _connections.TryRemove(served, out _);
        }
    }

    private async Task RunConnectionAsync(ServedConnection served, HttpConnectionManagerConfig hcm, ListenerStats stats, ConnectionDrain drain)
    {
        await Task.Yield();
        var connection = served.Transport;
        try
        {
            switch (await SelectCodecAsync(connection, hcm, drain).ConfigureAwait(false))
            {
                case Codec.Http1:
                    served.Http1 = new Http1ServerConnection(connection, hcm, drain, _time);
                    await served.Http1.RunAsync().ConfigureAwait(false);
                    break;
                case Codec.Http2:
                    // Kestrel owns and closes the connection from here on.
                    served.HandedOver = true;
                    var info = new Http2ConnectionInfo(connection.LocalEndPoint as System.Net.IPEndPoint, connection.RemoteEndPoint as System.Net.IPEndPoint, isTls: false);
                    await Http2Server(hcm).ServeAsync(connection, info).ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception ex)
        {
            _log.Error($"listener '{Name}': connection failed: {ex}");
        }
        finally
        {
            stats.DownstreamCxActive.Dec();
            stats.DownstreamCxDestroy.Inc();
            _connections.TryRemove(served, out _);
            try
            {
                if (!served.HandedOver)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
            {
                _log.Debug($"listener '{Name}': closing a connection: {ex.Message}");
            }
        }
    }

    /// <summary>
    /// codec_type: HTTP1 and HTTP2 decide alone; AUTO peeks at the first bytes for the HTTP/2
    /// preface (unconsumed: the codec reads them again). <see cref="Codec.None"/> when the peer
    /// closed, went idle past the idle timeout, or the listener drained before a decision.
    /// </summary>
    private async ValueTask<Codec> SelectCodecAsync(ConnectionContext connection, HttpConnectionManagerConfig hcm, ConnectionDrain connectionDrain)
    {
        switch (hcm.CodecType)
        {
            case Hcm.Types.CodecType.Http2:
                return connectionDrain.IsDraining ? Codec.None : Codec.Http2;
            case Hcm.Types.CodecType.Auto:
                break;
            default:
                return Codec.Http1;
        }

        using var cancel = hcm.IdleTimeout > TimeSpan.Zero ? new CancellationTokenSource(hcm.IdleTimeout, _time) : new CancellationTokenSource();
        using var drain = connectionDrain.Register(static state => ((CancellationTokenSource)state!).Cancel(), cancel);
        try
        {
            return await Http2Preface.DetectAsync(connection.Transport.Input, cancel.Token).ConfigureAwait(false) ? Codec.Http2 : Codec.Http1;
        }
        catch (OperationCanceledException)
        {
            if (!connectionDrain.IsDraining)
            {
                hcm.Stats.DownstreamCxIdleTimeout.Inc();
            }

            return Codec.None;
        }
    }

    /// <summary>The HTTP/2 codec of <paramref name="hcm"/>, created on first use.</summary>
    private Http2CodecServer Http2Server(HttpConnectionManagerConfig hcm) =>
        _http2.GetOrAdd(hcm, static (config, name) => new Lazy<Http2CodecServer>(() => new Http2CodecServer(config, name)), Name).Value;

    /// <summary>One generation of filter chains, with the drain signal of the connections it serves.</summary>
    private sealed class FilterChainSet(FilterChainMatcher matcher, HttpConnectionManagerConfig?[] chains, HttpConnectionManagerConfig? defaultChain)
    {
        public FilterChainMatcher Matcher { get; } = matcher;

        public HttpConnectionManagerConfig?[] Chains { get; } = chains;

        public HttpConnectionManagerConfig? DefaultChain { get; } = defaultChain;

        public ConnectionDrain Drain { get; } = new();
    }

    private enum Codec
    {
        None,
        Http1,
        Http2,
    }

    /// <summary>One accepted connection, for drain and forced close.</summary>
    private sealed class ServedConnection(ConnectionContext transport)
    {
        public ConnectionContext Transport { get; } = transport;

        /// <summary>The HTTP/1.1 codec, once chosen.</summary>
        public Http1ServerConnection? Http1 { get; set; }

        /// <summary>True once Kestrel's HTTP/2 codec owns the transport (it disposes it).</summary>
        public bool HandedOver { get; set; }

        public void Abort()
        {
            if (Http1 is { } http1)
            {
                http1.ResetStream();
            }
            else
            {
                Transport.Abort(new ConnectionAbortedException("the listener stopped"));
            }
        }
    }
}
