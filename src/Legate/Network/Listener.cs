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
using Legate.Tls;
using Legate.Extensions.Filters.Network.TcpProxy;
using System.Net.Security;
using TcpProxyProto = Envoy.Extensions.Filters.Network.TcpProxy.V3.TcpProxy;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Microsoft.AspNetCore.Connections;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

using SocketState = Envoy.Config.Core.V3.SocketOption.Types.SocketState;

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
    private readonly Logger _log;
    // The listener filters and filter chains in force; LDS swaps in a new set while the socket stays (UpdateFrom).
    private volatile FilterChainSet _active;
    private readonly ConcurrentDictionary<FilterChainSet, bool> _generations = new();
    private readonly ConcurrentDictionary<ServedConnection, Task> _connections = new();
    private readonly ConcurrentDictionary<HttpConnectionManagerConfig, Lazy<Http2CodecServer>> _http2 = new();
    private readonly TimeProvider _time;
    private readonly int _bufferLimitBytes;
    private Socket? _socket;
    private (Socket Socket, Task AcceptLoop)[] _additional = [];
    private SocketTransport? _transport;
    private Task? _acceptLoop;
    private ListenerStats? _stats;
    private readonly Legate.Stats.StatsStore _statsStore;
    private readonly AccessLog.AccessLogInstance[] _accessLogs;

    private Listener(string name, IPEndPoint endpoint, FilterChainMatcher matcher, CompiledFilterChain?[] chains, CompiledFilterChain? defaultChain, int bufferLimitBytes, HttpFilterFactoryContext context, IListenerFilter[] listenerFilters, TimeSpan listenerFiltersTimeout, bool continueOnTimeout, AccessLog.AccessLogInstance[] accessLogs)
    {
        _accessLogs = accessLogs;
        _active = new FilterChainSet(matcher, chains, defaultChain, listenerFilters, listenerFiltersTimeout, continueOnTimeout);
        _generations.TryAdd(_active, true);
        Name = name;
        Endpoint = endpoint;
        _bufferLimitBytes = bufferLimitBytes;
        _log = context.Logs.Get(LogComponents.Listener);
        _time = context.Time;
        _statsStore = context.Stats;
        _runtime = context.Runtime;
        _connectionLimitKey = "envoy.resource_limits.listener." + name + ".connection_limit";
    }

    private readonly Runtime.RuntimeLoader? _runtime;
    private readonly string _connectionLimitKey;
    private readonly ConnectionCount _openConnections = new();

    public string Name { get; }

    /// <summary>The configured address (port 0 means "any free port").</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>The address actually bound, once started.</summary>
    public IPEndPoint? BoundEndpoint { get; private set; }

    /// <summary>Every HTTP connection manager of the filter chains in force (LDS warms a listener until their RDS arrives).</summary>
    public IEnumerable<HttpConnectionManagerConfig> ConnectionManagers =>
        _active.Chains.Append(_active.DefaultChain).Select(c => c?.Hcm).OfType<HttpConnectionManagerConfig>();

    /// <summary>The TLS contexts of the filter chains in force (LDS releases their SDS secrets when the listener goes).</summary>
    public IEnumerable<ServerTlsContext> TlsContexts =>
        _active.Chains.Append(_active.DefaultChain).Select(c => c?.Tls).OfType<ServerTlsContext>();

    /// <summary>
    /// Completes when the SDS secrets of every TLS filter chain have arrived (or their sources
    /// stopped waiting): the listener warms until then and does not bind, as Envoy's.
    /// </summary>
    public Task SecretsReady =>
        Task.WhenAll(_active.Chains.Append(_active.DefaultChain).Select(c => c?.Tls?.Ready).OfType<Task>());

    /// <summary>
    /// LDS changed this listener but not its address: new connections take <paramref name="compiled"/>'s
    /// listener filters and filter chains from now on, on the same socket; connections on the old
    /// chains drain (HTTP/1.1 closes after the current response, HTTP/2 gets GOAWAY) and whatever is
    /// left after <paramref name="drainTime"/> is closed. <paramref name="compiled"/> itself is never started.
    /// </summary>
    public void UpdateFrom(Listener compiled, TimeSpan drainTime)
    {
        var old = _active;
        _active = compiled._active;
        _generations.TryAdd(_active, true);
        old.Drain.Start();
        foreach (var hcm in old.Chains.Append(old.DefaultChain).Select(c => c?.Hcm).OfType<HttpConnectionManagerConfig>())
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
            await server.DrainAsync(deadline.Token).ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _log.Debug($"listener '{Name}': draining an HTTP/2 codec: {ex.Message}");
        }
    }

    /// <summary>Connections being served right now.</summary>
    public int ActiveConnections => _connections.Count;

    /// <summary>True once the connections on the filter chains in force were told to drain.</summary>
    public bool IsDraining => _active.Drain.IsDraining;

    /// <summary>Compiles <paramref name="config"/>; returns null when it has errors (added to <paramref name="errors"/>).</summary>
    public static Listener? Compile(Envoy.Config.Listener.V3.Listener config, string path, ConfigErrors errors, HttpFilterFactoryContext context)
    {
        context = context.ForTrafficDirection(config.TrafficDirection);
        var errorCount = errors.Errors.Count;
        var endpoint = SocketAddresses.ToTcpEndpoint(config.Address, FieldPath.Field(path, "address"), errors);

        if (config.FilterChains.Count == 0 && config.DefaultFilterChain is null)
        {
            errors.Add(path, $"listener '{config.Name}' has no filter chains");
            return null;
        }

        var bufferLimit = (int)Math.Min(config.PerConnectionBufferLimitBytes ?? HttpConnectionManagerConfig.DefaultBufferLimitBytes, int.MaxValue);
        var matcher = FilterChainMatcher.Compile(config, path, errors);
        var chains = new CompiledFilterChain?[config.FilterChains.Count];
        for (var i = 0; i < chains.Length; i++)
        {
            chains[i] = CompileChain(config.FilterChains[i], FieldPath.Index(FieldPath.Field(path, "filter_chains"), i), errors, context, bufferLimit);
        }

        var defaultChain = config.DefaultFilterChain is { } chain
            ? CompileChain(chain, FieldPath.Field(path, "default_filter_chain"), errors, context, bufferLimit)
            : null;

        var listenerFilters = new List<IListenerFilter>();
        for (var i = 0; i < config.ListenerFilters.Count; i++)
        {
            if (ListenerFilterFactory.Create(config.ListenerFilters[i], FieldPath.Index(FieldPath.Field(path, "listener_filters"), i), errors, context.Stats) is { } filter)
            {
                listenerFilters.Add(filter);
            }
        }

        var additionalAddresses = new List<(IPEndPoint, Envoy.Config.Core.V3.SocketOption[]?)>();
        for (var i = 0; i < config.AdditionalAddresses.Count; i++)
        {
            var additional = config.AdditionalAddresses[i];
            var additionalPath = FieldPath.Index(FieldPath.Field(path, "additional_addresses"), i);
            if (SocketAddresses.ToTcpEndpoint(additional.Address, FieldPath.Field(additionalPath, "address"), errors) is { } additionalEndpoint)
            {
                additionalAddresses.Add((additionalEndpoint, additional.SocketOptions is { } overrides ? [.. overrides.SocketOptions] : null));
            }
        }

        // Envoy's default is 15 s; 0 disables the timeout.
        var filtersTimeout = config.ListenerFiltersTimeout is { } t ? t.ToTimeSpan() : TimeSpan.FromSeconds(15);

        var accessLogs = config.AccessLog.Count == 0 ? []
            : AccessLog.AccessLogFactory.Compile(config.AccessLog, FieldPath.Field(path, "access_log"), errors,
                context.AccessLogs ?? throw new InvalidOperationException("access logs need the server's access log manager"), context.Runtime);

#pragma warning disable CS0612 // reuse_port is deprecated in the API, still honoured as Envoy does
        var deprecatedReusePort = config.ReusePort;
#pragma warning restore CS0612
        if (deprecatedReusePort && config.EnableReusePort is not null)
        {
            errors.Warn(FieldPath.Field(path, "reuse_port"), $"reuse_port was configured for listener '{config.Name}' and is ignored in favor of enable_reuse_port");
        }

        if (endpoint is null || matcher is null || errors.Errors.Count > errorCount)
        {
            return null;
        }

        return new Listener(config.Name, endpoint, matcher, chains, defaultChain, bufferLimit, context, [.. listenerFilters], filtersTimeout, config.ContinueOnListenerFiltersTimeout, accessLogs)
        {
            BindToPort = config.BindToPort ?? true,
            UseOriginalDst = config.UseOriginalDst ?? false,
            StatPrefix = config.StatPrefix.Length > 0 ? config.StatPrefix : null,
            SocketOptions = [.. config.SocketOptions],
            Freebind = config.Freebind ?? false,
            Transparent = config.Transparent ?? false,
            ReusePort = ResolveReusePort(config),
            IgnoreGlobalConnLimit = config.IgnoreGlobalConnLimit,
            EnableMptcp = config.EnableMptcp,
            TcpFastOpenQueueLength = config.TcpFastOpenQueueLength,
            DrainsOnHealthCheckFail = config.DrainType == Envoy.Config.Listener.V3.Listener.Types.DrainType.Default,
            AdditionalAddresses = [.. additionalAddresses],
            TcpBacklogSize = config.TcpBacklogSize is { } backlog ? (int)Math.Min(backlog, int.MaxValue) : s_defaultBacklog.Value,
        };
    }

    /// <summary>
    /// <c>socket_options</c>: raw setsockopt calls on the listening socket, each at its state (before
    /// bind, after bind, after listen). Linux passes most of them (SO_KEEPALIVE, SO_RCVBUF, TCP
    /// keepalive timers…) on to the connections accepted from it.
    /// </summary>
    public Envoy.Config.Core.V3.SocketOption[] SocketOptions { get; init; } = [];

    /// <summary><c>freebind</c>: bind to an address this host does not (yet) have (IP_FREEBIND / IPV6_FREEBIND).</summary>
    public bool Freebind { get; init; }

    /// <summary>
    /// <c>transparent</c>: IP_TRANSPARENT / IPV6_TRANSPARENT, for connections redirected by TPROXY
    /// (the kernel hands over connections to addresses that are not the host's). Needs
    /// CAP_NET_ADMIN; without it the listener fails to start with the kernel's reason, as Envoy's.
    /// </summary>
    public bool Transparent { get; init; }

    /// <summary>
    /// <c>enable_reuse_port</c> (default true; the deprecated <c>reuse_port</c> when it is unset):
    /// SO_REUSEPORT before bind, so another process (a second Legate or Envoy, a hot restart's new
    /// generation) can bind the same address and the kernel spreads new connections over them.
    /// Linux only: elsewhere SO_REUSEPORT does not balance and Envoy ignores the flag, as Legate.
    /// Legate keeps one listening socket per listener (Envoy opens one per worker) and spreads its
    /// accepted connections over the event loops itself.
    /// </summary>
    public bool ReusePort { get; init; }

    // Envoy's order: enable_reuse_port when set, else reuse_port when true, else the default (true).
    private static bool ResolveReusePort(Envoy.Config.Listener.V3.Listener config) =>
        OperatingSystem.IsLinux() && (config.EnableReusePort ?? true);

    /// <summary>
    /// <c>enable_mptcp</c>: the listening sockets are Multipath TCP (IPPROTO_MPTCP), so MPTCP clients
    /// get MPTCP connections and the others plain TCP; where the kernel has no MPTCP the listener
    /// fails to start, as Envoy's.
    /// </summary>
    public bool EnableMptcp { get; init; }

    /// <summary>
    /// <c>ignore_global_conn_limit</c>: the listener accepts past <c>overload.global_downstream_max_connections</c>
    /// (its connections still count toward it), as Envoy's admin listener does.
    /// </summary>
    public bool IgnoreGlobalConnLimit { get; init; }

    /// <summary>
    /// Envoy's accept-time limits, read from the runtime on every accept (so <c>/runtime_modify</c>
    /// and RTDS apply to the next connection): the server-wide
    /// <c>overload.global_downstream_max_connections</c> (unless <see cref="IgnoreGlobalConnLimit"/>;
    /// counted in <c>downstream_global_cx_overflow</c>), then the listener's
    /// <c>envoy.resource_limits.listener.&lt;name&gt;.connection_limit</c> (<c>downstream_cx_overflow</c>).
    /// A connection over either is closed before it is counted or read from.
    /// </summary>
    private bool AcceptsUnderLimits(ListenerStats stats)
    {
        if (_runtime?.Snapshot is not { } runtime)
        {
            return true;
        }

        if (!IgnoreGlobalConnLimit && Manager is { } manager
            && manager.DownstreamConnections.Current >= Limit(runtime.GetInteger("overload.global_downstream_max_connections", ulong.MaxValue)))
        {
            stats.DownstreamGlobalCxOverflow.Inc();
            _log.Debug($"listener '{Name}': closing a connection: the global downstream connection limit is reached");
            return false;
        }

        if (_openConnections.Current >= Limit(runtime.GetInteger(_connectionLimitKey, ulong.MaxValue)))
        {
            stats.DownstreamCxOverflow.Inc();
            _log.Debug($"listener '{Name}': closing a connection: the listener's connection limit is reached");
            return false;
        }

        return true;

        static long Limit(ulong value) => value > long.MaxValue ? long.MaxValue : (long)value;
    }

    /// <summary>
    /// <c>drain_type</c> DEFAULT (Envoy's default): <c>/healthcheck/fail</c> drains the listener's
    /// connections too; MODIFY_ONLY: only a listener update or removal does.
    /// </summary>
    public bool DrainsOnHealthCheckFail { get; init; } = true;

    private void ApplySocketOptions(Socket socket, IPEndPoint endpoint, Envoy.Config.Core.V3.SocketOption[] options, SocketState state)
    {
        if (state == SocketState.StatePrebind)
        {
            // Linux: IPPROTO_IP IP_FREEBIND (15) / IP_TRANSPARENT (19), IPPROTO_IPV6 IPV6_FREEBIND (78) / IPV6_TRANSPARENT (75).
            if (Freebind)
            {
                SetIpFlag(socket, endpoint, "freebind", "IP_FREEBIND", 15, 78, string.Empty);
            }

            if (Transparent)
            {
                SetIpFlag(socket, endpoint, "transparent", "IP_TRANSPARENT", 19, 75, " (IP_TRANSPARENT needs CAP_NET_ADMIN)");
            }
        }

        foreach (var option in options)
        {
            if (option.State != state)
            {
                continue;
            }

            // int_value goes down as a C int, as Envoy's SocketOptionImpl passes it.
            var value = option.ValueCase == Envoy.Config.Core.V3.SocketOption.ValueOneofCase.BufValue
                ? option.BufValue.ToByteArray()
                : BitConverter.GetBytes(unchecked((int)option.IntValue));
            try
            {
                socket.SetRawSocketOption(unchecked((int)option.Level), unchecked((int)option.Name), value);
            }
            catch (SocketException ex)
            {
                var what = option.Description.Length > 0 ? $"'{option.Description}' (level {option.Level}, name {option.Name})" : $"level {option.Level}, name {option.Name}";
                throw new BindException($"cannot set socket option {what} on '{SocketAddresses.Format(endpoint)}': {ex.Message}", ex);
            }
        }
    }

    /// <summary>
    /// <c>tcp_fast_open_queue_length</c>: TCP_FASTOPEN with that queue length once listening (0
    /// turns it off; unset leaves the socket alone), as Envoy. Linux only here (elsewhere the listener
    /// fails naming it); the kernel serves TFO only where net.ipv4.tcp_fastopen allows servers (bit 2).
    /// </summary>
    public uint? TcpFastOpenQueueLength { get; init; }


    /// <summary>The listening socket (tests read its options back); null before start or without bind_to_port.</summary>
    internal Socket? ListeningSocket => _socket;

    /// <summary>Sets a Linux IP-level flag (the IPv6 one on an IPv6 socket); a refusal fails the listener with the kernel's reason.</summary>
    private static void SetIpFlag(Socket socket, IPEndPoint endpoint, string field, string optionName, int v4Name, int v6Name, string hint)
    {
        var v6 = socket.AddressFamily == AddressFamily.InterNetworkV6;
        SetLinuxOption(socket, endpoint, field, optionName, v6 ? 41 : 0, v6 ? v6Name : v4Name, 1, hint);
    }

    /// <summary>
    /// One raw setsockopt of a Linux-only option the config asked for: elsewhere, or when the kernel
    /// refuses it, the listener fails naming the field and the reason.
    /// </summary>
    private static void SetLinuxOption(Socket socket, IPEndPoint endpoint, string field, string optionName, int level, int name, int value, string hint = "")
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new BindException($"cannot set {field} on '{SocketAddresses.Format(endpoint)}': {optionName} exists on Linux only", new PlatformNotSupportedException());
        }

        try
        {
            socket.SetRawSocketOption(level, name, BitConverter.GetBytes(value));
        }
        catch (SocketException ex)
        {
            throw new BindException($"cannot set {field} on '{SocketAddresses.Format(endpoint)}': {ex.Message}{hint}", ex);
        }
    }

    /// <summary>
    /// <c>stat_prefix</c>: the listener's stats are <c>listener.&lt;stat_prefix&gt;.*</c> instead of
    /// <c>listener.&lt;address&gt;.*</c> (null: the address).
    /// </summary>
    public string? StatPrefix { get; init; }

    /// <summary>
    /// <c>tcp_backlog_size</c>: the accept queue's length. Envoy's default is net.core.somaxconn on
    /// Linux and 128 elsewhere; the kernel caps any value at somaxconn.
    /// </summary>
    public int TcpBacklogSize { get; init; } = 128;

    private static readonly Lazy<int> s_defaultBacklog = new(static () =>
    {
        try
        {
            return OperatingSystem.IsLinux() && int.TryParse(File.ReadAllText("/proc/sys/net/core/somaxconn").Trim(), out var somaxconn) && somaxconn > 0
                ? somaxconn
                : 128;
        }
        catch (IOException)
        {
            return 128;
        }
        catch (UnauthorizedAccessException)
        {
            return 128;
        }
    });

    /// <summary>
    /// <c>bind_to_port</c> (default true). False: no socket of its own; the listener only serves
    /// connections another listener hands off to it (<c>use_original_dst</c>).
    /// </summary>
    public bool BindToPort { get; private init; } = true;

    /// <summary>
    /// <c>use_original_dst</c>: a connection whose destination a listener filter restored
    /// (original_dst, proxy_protocol) goes to the listener owning that address, as Envoy's hand-off.
    /// </summary>
    public bool UseOriginalDst { get; private init; }

    /// <summary>The manager this listener belongs to: where <c>use_original_dst</c> looks for the owner of an address.</summary>
    internal ListenerManager? Manager { get; set; }

    /// <summary>The server's health check state, for a <c>drain_type</c> DEFAULT listener (null: MODIFY_ONLY).</summary>
    private HealthCheckDrain? HealthCheckDrain => DrainsOnHealthCheckFail ? Manager?.HealthCheck : null;

    private int _unboundStopped;

    /// <summary>
    /// Takes a connection another listener accepted and hands off (its restored destination is this
    /// listener's address): this listener's filters, chains and stats serve it from here on.
    /// </summary>
    internal void ServeHandedOff(Socket socket, IPEndPoint local, IPEndPoint remote, ConnectionSlot slot)
    {
        if (_stats is null || _transport is null || Volatile.Read(ref _unboundStopped) != 0 || (BindToPort && _socket is null))
        {
            socket.Dispose();
            slot.Release();
            return;
        }

        Serve(socket, local, remote, slot);
    }

    /// <summary>Binds and starts accepting.</summary>
    /// <exception cref="BindException">The address could not be bound.</exception>
    public Task StartAsync(int ioQueueCount, CancellationToken cancellationToken)
    {
        if (!BindToPort)
        {
            BoundEndpoint = Endpoint;
            _stats = new ListenerStats(_statsStore, StatPrefix ?? SocketAddresses.Format(Endpoint));
            _transport = new SocketTransport(_bufferLimitBytes, ioQueueCount);
            _log.Info($"listener '{Name}' on {SocketAddresses.Format(Endpoint)} does not bind (bind_to_port: false); it serves handed-off connections");
            return Task.CompletedTask;
        }

        var socket = BindSocket(Endpoint, SocketOptions);
        var additional = new List<Socket>();
        try
        {
            foreach (var (endpoint, options) in AdditionalAddresses)
            {
                additional.Add(BindSocket(endpoint, options ?? SocketOptions));
            }
        }
        catch (BindException)
        {
            // All or nothing, as Envoy: a listener whose additional address cannot be bound does not start.
            socket.Dispose();
            additional.ForEach(extra => extra.Dispose());
            throw;
        }

        _socket = socket;
        BoundEndpoint = (IPEndPoint)socket.LocalEndPoint!;
        _stats = new ListenerStats(_statsStore, StatPrefix ?? SocketAddresses.Format(BoundEndpoint));
        _transport = new SocketTransport(_bufferLimitBytes, ioQueueCount);
        _acceptLoop = AcceptLoopAsync(socket);
        _additional = [.. additional.Select(extra => (extra, AcceptLoopAsync(extra)))];
        AdditionalBoundEndpoints = [.. additional.Select(extra => (IPEndPoint)extra.LocalEndPoint!)];
        _log.Info($"listener '{Name}' listening on {string.Join(", ", AdditionalBoundEndpoints.Prepend(BoundEndpoint).Select(SocketAddresses.Format))}");
        return Task.CompletedTask;
    }

    /// <summary>A listening socket on <paramref name="endpoint"/> with <paramref name="options"/> applied at their states.</summary>
    /// <exception cref="BindException">The address could not be bound or an option was refused.</exception>
    private Socket BindSocket(IPEndPoint endpoint, Envoy.Config.Core.V3.SocketOption[] options)
    {
        Socket socket;
        try
        {
            socket = EnableMptcp ? MptcpSocket.Create(endpoint.AddressFamily) : new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        }
        catch (PlatformNotSupportedException ex)
        {
            // Envoy's message for a listener that asks for MPTCP where the kernel has none.
            throw new BindException($"enable_mptcp is set but {ex.Message}", ex);
        }

        try
        {
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                // Envoy's "::" listener with ipv4_compat off still takes IPv4 on Linux by default; keep dual mode.
                socket.DualMode = true;
            }

            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            if (OperatingSystem.IsLinux())
            {
                // SOL_SOCKET (1), SO_REUSEPORT (15). Set either way: .NET's ReuseAddress on Unix
                // turns SO_REUSEPORT on as well.
                SetLinuxOption(socket, endpoint, "enable_reuse_port", "SO_REUSEPORT", 1, 15, ReusePort ? 1 : 0);
            }

            ApplySocketOptions(socket, endpoint, options, SocketState.StatePrebind);
            socket.Bind(endpoint);
            ApplySocketOptions(socket, endpoint, options, SocketState.StateBound);
            socket.Listen(TcpBacklogSize);
            ApplySocketOptions(socket, endpoint, options, SocketState.StateListening);
            if (TcpFastOpenQueueLength is { } queue)
            {
                // IPPROTO_TCP (6), TCP_FASTOPEN (23).
                SetLinuxOption(socket, endpoint, "tcp_fast_open_queue_length", "TCP_FASTOPEN", 6, 23, (int)Math.Min(queue, int.MaxValue));
            }
            return socket;
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            var reason = ex.SocketErrorCode == SocketError.AddressAlreadyInUse ? "address already in use" : ex.Message;
            throw new BindException($"cannot bind '{SocketAddresses.Format(endpoint)}': {reason}", ex);
        }
        catch (BindException)
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <c>additional_addresses</c>: more addresses the listener accepts on, with the same listener
    /// filters, filter chains and stats; each with the listener's <c>socket_options</c> unless its
    /// own <c>socket_options</c> override them (an empty override: none).
    /// </summary>
    public (IPEndPoint Endpoint, Envoy.Config.Core.V3.SocketOption[]? SocketOptions)[] AdditionalAddresses { get; init; } = [];

    /// <summary>The additional addresses actually bound, once started (in config order).</summary>
    public IPEndPoint[] AdditionalBoundEndpoints { get; private set; } = [];

    /// <summary>
    /// The listener's additional addresses as bound once started, else as configured (a
    /// <c>bind_to_port: false</c> listener never binds them).
    /// </summary>
    public IEnumerable<IPEndPoint> AdditionalEndpoints =>
        AdditionalBoundEndpoints.Length > 0 ? AdditionalBoundEndpoints : AdditionalAddresses.Select(a => a.Endpoint);

    /// <summary>
    /// Stops accepting, lets connections finish their current request (idle ones close now), and
    /// when <paramref name="cancellationToken"/> fires closes whatever is left. A listener drain
    /// (<paramref name="drain"/>: LDS, <c>/drain_listeners</c>) gives HTTP/2 connections Envoy's drain
    /// sequence (GOAWAY notice, <c>drain_timeout</c>, final GOAWAY); a server stop sends the GOAWAY at once.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken, bool drain = false)
    {
        if (_socket is { } socket)
        {
            _socket = null;
            socket.Dispose();
            var additional = _additional;
            _additional = [];
            foreach (var (extra, _) in additional)
            {
                extra.Dispose();
            }

            if (_acceptLoop is not null)
            {
                await _acceptLoop.ConfigureAwait(false);
            }

            foreach (var (_, loop) in additional)
            {
                await loop.ConfigureAwait(false);
            }
        }
        else if (BindToPort || _transport is null || Interlocked.Exchange(ref _unboundStopped, 1) != 0)
        {
            return;
        }

        foreach (var generation in _generations.Keys)
        {
            generation.Drain.Start();
        }

        // HTTP/2 connections get a GOAWAY and close when their streams are done; Kestrel aborts the rest when the token fires.
        var http2Stops = Task.WhenAll(_http2.Values.Select(server => drain ? server.Value.DrainAsync(cancellationToken) : server.Value.StopAsync(cancellationToken)));
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

    /// <summary>
    /// The admin's <c>/drain_listeners?graceful&amp;skip_exit</c>: the connections open now drain as on
    /// an LDS update (HTTP/1.1 closes after the current response, HTTP/2 gets GOAWAY, whatever is left
    /// after <paramref name="drainTime"/> is closed) while the socket keeps accepting: new connections
    /// take a fresh generation of the same filter chains.
    /// </summary>
    public void DrainConnections(TimeSpan drainTime)
    {
        var old = _active;
        _active = old.Renewed();
        _generations.TryAdd(_active, true);
        old.Drain.Start();
        foreach (var hcm in old.Chains.Append(old.DefaultChain).Select(c => c?.Hcm).OfType<HttpConnectionManagerConfig>())
        {
            if (_http2.TryRemove(hcm, out var server) && server.IsValueCreated)
            {
                _ = DrainHttp2Async(server.Value, drainTime);
            }
        }

        _generations.TryRemove(old, out _);
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
    /// socket Legate does not implement: the transport is raw_buffer or TLS, the terminal filter the HCM.
    /// </remarks>
    private static CompiledFilterChain? CompileChain(FilterChain chain, string chainPath, ConfigErrors errors, HttpFilterFactoryContext context, int bufferLimit)
    {
        var count = errors.Errors.Count;
        var filtersPath = FieldPath.Field(chainPath, "filters");
        if (chain.Filters.Count == 0)
        {
            errors.Add(filtersPath, "a filter chain needs at least one network filter");
            return null;
        }

        ServerTlsContext? tls = null;
        if (chain.TransportSocket?.TypedConfig is { } transport)
        {
            var transportPath = FieldPath.Field(FieldPath.Field(chainPath, "transport_socket"), "typed_config");
            if (transport.Is(DownstreamTlsContext.Descriptor))
            {
                tls = ServerTlsContext.Compile(transport.Unpack<DownstreamTlsContext>(), transportPath, errors, context.Secrets);
            }
            else if (transport.Is(UpstreamTlsContext.Descriptor))
            {
                errors.Add(transportPath, "a listener's filter chain takes a DownstreamTlsContext, not an UpstreamTlsContext");
            }
        }

        var handshakeTimeout = chain.TransportSocketConnectTimeout is { } t && t.ToTimeSpan() > TimeSpan.Zero
            ? t.ToTimeSpan()
            : CompiledFilterChain.DefaultHandshakeTimeout;

        var last = chain.Filters.Count - 1;
        var terminalPath = FieldPath.Index(filtersPath, last);
        HttpConnectionManagerConfig? hcm = null;
        TcpProxyConfig? tcpProxy = null;
        if (chain.Filters[last].TypedConfig is { } any && any.Is(Hcm.Descriptor))
        {
            hcm = HttpConnectionManagerConfig.Compile(any.Unpack<Hcm>(), FieldPath.Field(terminalPath, "typed_config"), errors, context, bufferLimit);
        }
        else if (chain.Filters[last].TypedConfig is { } tcp && tcp.Is(TcpProxyProto.Descriptor))
        {
            tcpProxy = TcpProxyConfig.Compile(tcp.Unpack<TcpProxyProto>(), FieldPath.Field(terminalPath, "typed_config"), errors, context.Stats, context.ClusterManager, bufferLimit, context);
        }
        else
        {
            errors.Add(terminalPath, $"network filter '{chain.Filters[last].Name}' is not supported yet");
        }

        return errors.Errors.Count > count
            ? null
            : new CompiledFilterChain { Name = chain.Name, Tls = tls, HandshakeTimeout = handshakeTimeout, Hcm = hcm, TcpProxy = tcpProxy };
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
        var local = socket.LocalEndPoint as IPEndPoint;
        var remote = socket.RemoteEndPoint as IPEndPoint;
        if (local is null || remote is null)
        {
            _stats!.DownstreamCxTotal.Inc();
            socket.Dispose();
            return;
        }

        if (!AcceptsUnderLimits(_stats!))
        {
            socket.Dispose();
            return;
        }

        socket.NoDelay = true;
        Serve(socket, local, remote, new ConnectionSlot(_openConnections, Manager?.DownstreamConnections));
    }

    /// <param name="local">The socket's local address, or the restored destination of a handed-off connection.</param>
    private void Serve(Socket socket, IPEndPoint local, IPEndPoint remote, ConnectionSlot slot)
    {
        var stats = _stats!;
        var served = new ServedConnection(socket) { Slot = slot, Id = ConnectionIds.Next(), StartTimestamp = System.Diagnostics.Stopwatch.GetTimestamp(), Local = local, Remote = remote, DirectRemote = socket.RemoteEndPoint as IPEndPoint ?? remote };
        if (!UseOriginalDst || local is OriginalDestinationEndPoint)
        {
            // A use_original_dst listener counts a connection once it knows it keeps it (no hand-off), as Envoy
            // counts a handed-off connection on the listener that takes it only.
            served.Counted = true;
            stats.DownstreamCxTotal.Inc();
            stats.DownstreamCxActive.Inc();
        }

        var task = RunConnectionAsync(served, local, remote, stats, _active);
        _connections.TryAdd(served, task);
        if (task.IsCompleted)
        {
            _connections.TryRemove(served, out _);
        }
    }

    private async Task RunConnectionAsync(ServedConnection served, IPEndPoint local, IPEndPoint remote, ListenerStats stats, FilterChainSet active)
    {
        await Task.Yield();
        DataPathContext.Enter();
        try
        {
            var filterContext = new ListenerFilterContext(served.Socket, local, remote);
            if (local is OriginalDestinationEndPoint)
            {
                // Handed off by another listener: the destination stays the restored one.
                filterContext.LocalAddressRestored = true;
            }

            if (active.ListenerFilters.Length > 0 && !await RunListenerFiltersAsync(filterContext, stats, active).ConfigureAwait(false))
            {
                return;
            }

            if (UseOriginalDst && filterContext.LocalAddressRestored && local is not OriginalDestinationEndPoint
                && Manager?.FindHandOffTarget(filterContext.LocalEndPoint, this) is { } target)
            {
                // Envoy's hand-off: the listener owning the restored destination takes the connection
                // (its listener filters run again there); only when none does is it served here.
                _log.Debug($"listener '{Name}': handing the connection to {SocketAddresses.Format(filterContext.LocalEndPoint)} off to listener '{target.Name}'");
                served.MovedToListener = true;
                target.ServeHandedOff(served.Socket, OriginalDestinationEndPoint.From(filterContext.LocalEndPoint), filterContext.RemoteEndPoint, served.Slot);
                return;
            }

            if (!served.Counted)
            {
                served.Counted = true;
                stats.DownstreamCxTotal.Inc();
                stats.DownstreamCxActive.Inc();
            }

            // A restored destination is marked as such: ORIGINAL_DST clusters connect only there.
            local = filterContext.LocalAddressRestored ? OriginalDestinationEndPoint.From(filterContext.LocalEndPoint) : filterContext.LocalEndPoint;
            remote = filterContext.RemoteEndPoint;
            var match = filterContext.ToMatchInfo();
            var hello = filterContext.ClientHello;
            var index = active.Matcher.Match(match);
            var chain = index switch
            {
                FilterChainMatcher.NoMatch => null,
                FilterChainMatcher.DefaultFilterChain => active.DefaultChain,
                _ => active.Chains[index],
            };
            served.Local = local;
            served.Remote = remote;
            served.DynamicMetadata = filterContext.DynamicMetadata;
            served.Ja3Hash = filterContext.Ja3Hash;
            if (chain is null)
            {
                stats.NoFilterChainMatch.Inc();
                _log.Debug($"listener '{Name}': no filter chain for connection from {SocketAddresses.Format(remote)} to {SocketAddresses.Format(local)}; closing");

                // Envoy logs the refused connection with NR and "filter_chain_not_found".
                served.Flags = ResponseFlags.NoRouteFound;
                served.TerminationDetails = "filter_chain_not_found";
                return;
            }

            Stream? ssl = null;
            TlsSessionInfo? session = null;
            if (chain.Tls is { } tls)
            {
                if (hello is null && tls.NeedsClientHello)
                {
                    hello = await PeekClientHelloAsync(served.Socket, chain.HandshakeTimeout).ConfigureAwait(false);
                }

                (ssl, session) = await HandshakeAsync(served, tls, hello, chain, remote, stats, active.Drain).ConfigureAwait(false);
                if (ssl is null || session is null)
                {
                    return;
                }

                session.Ja3Hash = filterContext.Ja3Hash;
            }

            if (chain.TcpProxy is { } tcpProxy)
            {
                // Raw sockets (or the TLS stream), not Kestrel's transport: it ends a connection on the peer's FIN.
                // A plaintext session owns the socket until it returns (its epoll relay closes it).
                served.Stream = ssl;
                served.SessionOwnsSocket = ssl is null;
                Func<ValueTask> shutdown = ssl is not null
                    ? () => new ValueTask(TlsStreams.ShutdownAsync(ssl))
                    : () =>
                    {
                        served.Socket.Shutdown(SocketShutdown.Send);
                        return ValueTask.CompletedTask;
                    };
                // One info for the connection: tcp_proxy fills it, its access log and the listener's read it.
                served.Info = NewConnectionInfo(served);
                served.Info.RequestedServerName = match.RequestedServerName.Length > 0 ? match.RequestedServerName : null;
                served.Info.DownstreamTls = session;
                await TcpProxySession.RunAsync(served.Socket, ssl, shutdown, tcpProxy, served.Info, _log, _time, served.Aborted, local as OriginalDestinationEndPoint, filterContext.ProxyProtocolTlvs).ConfigureAwait(false);
                return;
            }

            if (ssl is not null)
            {
                served.Transport = new TlsConnection(ssl, session!, local, remote, _bufferLimitBytes);
            }
            else
            {
                var transport = _transport!.Create(served.Socket);
                if (!remote.Equals(filterContext.DirectRemoteEndPoint) || filterContext.LocalAddressRestored)
                {
                    // proxy_protocol / original_dst: the codecs and access logs see the restored addresses.
                    transport.RemoteEndPoint = remote;
                    transport.LocalEndPoint = local;
                }

                served.Transport = transport;
            }

            if (chain.Hcm is { } hcm)
            {
                await RunHttpAsync(served, hcm, active.Drain, filterContext.ProxyProtocolTlvs.Count > 0 ? filterContext.ProxyProtocolTlvs : null).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            _log.Error($"listener '{Name}': connection failed: {ex}");
        }
        finally
        {
            if (!served.MovedToListener)
            {
                served.Slot.Release();
            }

            if (served.Counted)
            {
                stats.DownstreamCxActive.Dec();
                stats.DownstreamCxDestroy.Inc();
                stats.DownstreamCxLengthMs.Record((long)System.Diagnostics.Stopwatch.GetElapsedTime(served.StartTimestamp).TotalMilliseconds);
            }
            else if (!served.MovedToListener)
            {
                // Ended in its listener filters before the hand-off decision: still this listener's connection.
                stats.DownstreamCxTotal.Inc();
                stats.DownstreamCxDestroy.Inc();
            }

            _connections.TryRemove(served, out _);
            if (!served.MovedToListener)
            {
                await served.CloseAsync(_log, Name).ConfigureAwait(false);
                if (_accessLogs.Length > 0)
                {
                    LogConnection(served);
                }
            }
        }
    }

    /// <summary>
    /// Runs the listener filters in order under <c>listener_filters_timeout</c>. False when a
    /// filter closed the connection or the timeout fired without <c>continue_on_listener_filters_timeout</c>.
    /// </summary>
    private async Task<bool> RunListenerFiltersAsync(ListenerFilterContext context, ListenerStats stats, FilterChainSet active)
    {
        using var timeout = active.ListenerFiltersTimeout > TimeSpan.Zero ? new CancellationTokenSource(active.ListenerFiltersTimeout, _time) : new CancellationTokenSource();
        using var drain = active.Drain.Register(static state => ((CancellationTokenSource)state!).Cancel(), timeout);
        stats.DownstreamPreCxActive.Inc();
        try
        {
            foreach (var filter in active.ListenerFilters)
            {
                if (!await filter.OnAcceptAsync(context, timeout.Token).ConfigureAwait(false))
                {
                    return false;
                }
            }

            return true;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            if (active.Drain.IsDraining)
            {
                return false;
            }

            stats.DownstreamPreCxTimeout.Inc();
            return active.ContinueOnListenerFiltersTimeout;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            stats.DownstreamPreCxActive.Dec();
        }
    }

    /// <summary>The TLS handshake, bounded by the chain's handshake timeout and the drain; null when it failed (counted).</summary>
    private async Task<(Stream? Stream, TlsSessionInfo? Session)> HandshakeAsync(ServedConnection served, ServerTlsContext tls, ClientHello? hello, CompiledFilterChain chain, IPEndPoint remote, ListenerStats stats, ConnectionDrain connectionDrain)
    {
        using var timeout = new CancellationTokenSource(chain.HandshakeTimeout, _time);
        using var drain = connectionDrain.Register(static state => ((CancellationTokenSource)state!).Cancel(), timeout);
        var (ssl, session, failure) = await tls.HandshakeAsync(new NetworkStream(served.Socket, ownsSocket: true), hello, stats.Tls, timeout.Token).ConfigureAwait(false);
        if (ssl is null || session is null)
        {
            _log.Debug($"listener '{Name}': TLS handshake with {SocketAddresses.Format(remote)} failed: {failure}");
            return (null, null);
        }

        served.Stream = ssl;
        return (ssl, session);
    }

    /// <summary>
    /// Reads the ClientHello without consuming it (MSG_PEEK). A hello split across packets is
    /// peeked again after a short, growing pause: a socket cannot signal "more bytes than last
    /// time", only "some bytes".
    /// </summary>
    internal static async Task<ClientHello?> PeekClientHelloAsync(Socket socket, TimeSpan timeout)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ClientHello.MaxSize + 64);
        try
        {
            using var cancel = new CancellationTokenSource(timeout);
            var pause = 1;
            var last = 0;
            while (true)
            {
                var peeked = await socket.ReceiveAsync(buffer.AsMemory(0, ClientHello.MaxSize + 64), SocketFlags.Peek, cancel.Token).ConfigureAwait(false);
                if (peeked == 0)
                {
                    return null;
                }

                switch (ClientHello.TryParse(buffer.AsSpan(0, peeked), out var hello))
                {
                    case ClientHello.ParseStatus.Done:
                        return hello;
                    case ClientHello.ParseStatus.NeedMoreData:
                        if (peeked == last)
                        {
                            await Task.Delay(pause, cancel.Token).ConfigureAwait(false);
                            pause = Math.Min(pause * 2, 50);
                        }

                        last = peeked;
                        continue;
                    default:
                        return null;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            return null;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task RunHttpAsync(ServedConnection served, HttpConnectionManagerConfig hcm, ConnectionDrain drain, IReadOnlyList<(byte Type, byte[] Value)>? proxyProtocolTlvs)
    {
        var connection = served.Transport!;
        var session = (connection as TlsConnection)?.Session;
        switch (await SelectCodecAsync(connection, hcm, session, drain).ConfigureAwait(false))
        {
            case Codec.Http1:
                served.Http1 = new Http1ServerConnection(connection, hcm, drain, _time) { ConnectionId = served.Id, DynamicMetadata = served.DynamicMetadata, ProxyProtocolTlvs = proxyProtocolTlvs, HealthCheck = HealthCheckDrain };
                await served.Http1.RunAsync().ConfigureAwait(false);
                break;
            case Codec.Http2:
                // Kestrel owns and closes the connection from here on.
                served.HandedOver = true;
                var info = new Http2ConnectionInfo(connection.LocalEndPoint as IPEndPoint, connection.RemoteEndPoint as IPEndPoint, isTls: session is not null, connection) { Tls = session, ConnectionId = served.Id, DynamicMetadata = served.DynamicMetadata, ProxyProtocolTlvs = proxyProtocolTlvs, HealthCheck = HealthCheckDrain };
                await Http2Server(hcm).ServeAsync(connection, info).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>
    /// codec_type: HTTP1 and HTTP2 decide alone; AUTO peeks at the first bytes for the HTTP/2
    /// preface (unconsumed: the codec reads them again). <see cref="Codec.None"/> when the peer
    /// closed, went idle past the idle timeout, or the listener drained before a decision.
    /// </summary>
    private async ValueTask<Codec> SelectCodecAsync(ConnectionContext connection, HttpConnectionManagerConfig hcm, TlsSessionInfo? session, ConnectionDrain connectionDrain)
    {
        if (hcm.CodecType == Hcm.Types.CodecType.Auto && session is not null)
        {
            // ALPN decides when it was negotiated, as Envoy's codec selection does.
            switch (session.ApplicationProtocol)
            {
                case "h2":
                    return connectionDrain.IsDraining ? Codec.None : Codec.Http2;
                case "http/1.1" or "http/1.0":
                    return Codec.Http1;
            }
        }

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

    /// <summary>Envoy's listener access log: one entry per connection, when it closes or is refused.</summary>
    private void LogConnection(ServedConnection served)
    {
        var info = served.Info ?? NewConnectionInfo(served);
        if (info.EndTimestamp == 0)
        {
            info.EndTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
        }

        info.SetResponseFlag(served.Flags);
        info.ConnectionTerminationDetails = served.TerminationDetails;
        try
        {
            AccessLog.AccessLogInstance.LogAll(_accessLogs, new Http.Formatter.FormatterContext(info));
        }
        catch (Exception ex)
        {
            _log.Error($"listener '{Name}': access log failed: {ex.Message}");
        }
    }

    /// <summary>The connection-level info of <paramref name="served"/> (start, id, addresses as filter chain matching saw them).</summary>
    private StreamInfo NewConnectionInfo(ServedConnection served)
    {
        var info = new StreamInfo();
        info.Reset(_time.GetUtcNow() - System.Diagnostics.Stopwatch.GetElapsedTime(served.StartTimestamp), served.StartTimestamp);
        info.ConnectionId = served.Id;
        info.DownstreamLocalAddress = served.Local;
        info.DownstreamRemoteAddress = served.Remote;
        info.DownstreamDirectRemoteAddress = served.DirectRemote ?? served.Remote;
        info.DynamicMetadata = served.DynamicMetadata;
        info.Ja3Hash = served.Ja3Hash;
        return info;
    }

    /// <summary>The HTTP/2 codec of <paramref name="hcm"/>, created on first use.</summary>
    private Http2CodecServer Http2Server(HttpConnectionManagerConfig hcm) =>
        _http2.GetOrAdd(hcm, static (config, name) => new Lazy<Http2CodecServer>(() => new Http2CodecServer(config, name)), Name).Value;

    /// <summary>One generation of listener filters and filter chains, with the drain signal of the connections it serves.</summary>
    private sealed class FilterChainSet(FilterChainMatcher matcher, CompiledFilterChain?[] chains, CompiledFilterChain? defaultChain, IListenerFilter[] listenerFilters, TimeSpan listenerFiltersTimeout, bool continueOnListenerFiltersTimeout)
    {
        public FilterChainMatcher Matcher { get; } = matcher;

        public CompiledFilterChain?[] Chains { get; } = chains;

        public CompiledFilterChain? DefaultChain { get; } = defaultChain;

        public IListenerFilter[] ListenerFilters { get; } = listenerFilters;

        public TimeSpan ListenerFiltersTimeout { get; } = listenerFiltersTimeout;

        public bool ContinueOnListenerFiltersTimeout { get; } = continueOnListenerFiltersTimeout;

        public ConnectionDrain Drain { get; } = new();

        /// <summary>The same chains with a drain signal of their own (the connections of this one drain).</summary>
        public FilterChainSet Renewed() => new(Matcher, Chains, DefaultChain, ListenerFilters, ListenerFiltersTimeout, ContinueOnListenerFiltersTimeout);
    }

    private enum Codec
    {
        None,
        Http1,
        Http2,
    }

    /// <summary>One accepted connection, for drain and forced close.</summary>
    private sealed class ServedConnection(Socket socket)
    {
        public Socket Socket { get; } = socket;

        /// <summary>The connection's place in the connection limits' counts, given back when it ends.</summary>
        public required ConnectionSlot Slot { get; init; }

        public ulong Id { get; init; }

        public long StartTimestamp { get; init; }

        /// <summary>The addresses as filter chain matching saw them (after proxy_protocol / original_dst).</summary>
        public IPEndPoint? Local { get; set; }

        public IPEndPoint? Remote { get; set; }

        /// <summary>The socket's own peer (before proxy_protocol).</summary>
        public IPEndPoint? DirectRemote { get; init; }

        /// <summary>The ClientHello's JA3 hash (tls_inspector), or null.</summary>
        public string? Ja3Hash { get; set; }

        /// <summary>Handed off to another listener (use_original_dst): that listener owns and closes the socket.</summary>
        public bool MovedToListener { get; set; }

        /// <summary>Counted in this listener's downstream_cx_total / _active (deferred on a use_original_dst listener until it keeps the connection).</summary>
        public bool Counted { get; set; }

        /// <summary>Dynamic metadata listener filters set (proxy_protocol rules), or null.</summary>
        public Envoy.Config.Core.V3.Metadata? DynamicMetadata { get; set; }

        /// <summary>The connection-level info when a network filter keeps one (tcp_proxy), else null.</summary>
        public StreamInfo? Info { get; set; }

        /// <summary>What the listener access log reports for a refused connection.</summary>
        public ResponseFlags Flags { get; set; }

        public string? TerminationDetails { get; set; }

        /// <summary>The transport the codec runs on, once the transport socket is set up.</summary>
        public ConnectionContext? Transport { get; set; }

        /// <summary>A plaintext tcp_proxy session owns the socket: <see cref="Abort"/> only cancels it.</summary>
        public bool SessionOwnsSocket { get; set; }

        /// <summary>The byte stream of a TLS or TCP proxy connection, when there is no codec transport.</summary>
        public Stream? Stream { get; set; }

        private readonly CancellationTokenSource _aborted = new();

        /// <summary>Fires when the listener forces the connection closed (drain deadline).</summary>
        public CancellationToken Aborted => _aborted.Token;

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
            else if (Transport is { } transport)
            {
                transport.Abort(new ConnectionAbortedException("the listener stopped"));
            }
            else
            {
                // Listener filters, the TLS handshake or a TCP proxy session (a plaintext one ends
                // on the cancellation and closes the socket itself: closing it here could let its
                // descriptor number be reused under the relay's next receive).
                _aborted.Cancel();
                if (!SessionOwnsSocket)
                {
                    Socket.Dispose();
                }
            }
        }

        public async ValueTask CloseAsync(Logger log, string listener)
        {
            try
            {
                if (Transport is null)
                {
                    if (Stream is not null)
                    {
                        await Stream.DisposeAsync().ConfigureAwait(false);
                    }

                    Socket.Dispose();
                    _aborted.Dispose();
                }
                else if (!HandedOver)
                {
                    await Transport.DisposeAsync().ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
            {
                log.Debug($"listener '{listener}': closing a connection: {ex.Message}");
            }
        }
    }
}
