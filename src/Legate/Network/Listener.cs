using System.Net;
using Envoy.Config.Listener.V3;
using Legate.Config;
using Legate.Http;
using Legate.Network.FilterChainMatching;
using Legate.Server.Logging;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Network;

/// <summary>
/// One static listener: its address, its filter chains and the matcher that picks one per
/// connection (Envoy's filter_chain_match precedence on the connection's addresses; SNI and ALPN
/// arrive with TLS). Interim: listener filters, TLS and TCP proxying come later; a connection
/// that matches no chain is closed, as Envoy does.
/// </summary>
internal sealed class Listener : IAsyncDisposable
{
    /// <summary>Key of the chosen connection manager in the connection's items.</summary>
    private static readonly object s_chainKey = new();

    private readonly Logger _log;
    private readonly FilterChainMatcher _matcher;
    private readonly HttpConnectionManager?[] _chains;
    private readonly HttpConnectionManager? _defaultChain;
    private KestrelListener? _kestrel;

    private Listener(string name, IPEndPoint endpoint, FilterChainMatcher matcher, HttpConnectionManager?[] chains, HttpConnectionManager? defaultChain, Logger log)
    {
        Name = name;
        Endpoint = endpoint;
        _matcher = matcher;
        _chains = chains;
        _defaultChain = defaultChain;
        _log = log;
        ConnectionManager = Array.Find(chains, c => c is not null) ?? defaultChain;
    }

    public string Name { get; }

    /// <summary>The configured address (port 0 means "any free port").</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>The address actually bound, once started.</summary>
    public IPEndPoint? BoundEndpoint => _kestrel?.BoundEndpoint;

    /// <summary>The first HTTP connection manager of this listener (its codec decides the listener's protocols), or null.</summary>
    public HttpConnectionManager? ConnectionManager { get; }

    /// <summary>Compiles <paramref name="config"/>; returns null when it has errors (added to <paramref name="errors"/>).</summary>
    public static Listener? Compile(Envoy.Config.Listener.V3.Listener config, string path, ConfigErrors errors, LogManager logs)
    {
        var errorCount = errors.Errors.Count;
        var endpoint = SocketAddresses.ToTcpEndpoint(config.Address, FieldPath.Field(path, "address"), errors);

        if (config.FilterChains.Count == 0 && config.DefaultFilterChain is null)
        {
            errors.Add(path, $"listener '{config.Name}' has no filter chains");
            return null;
        }

        var matcher = FilterChainMatcher.Compile(config, path, errors);
        var chains = new HttpConnectionManager?[config.FilterChains.Count];
        for (var i = 0; i < chains.Length; i++)
        {
            chains[i] = CompileChain(config.FilterChains[i], FieldPath.Index(FieldPath.Field(path, "filter_chains"), i), errors, logs);
        }

        var defaultChain = config.DefaultFilterChain is { } chain
            ? CompileChain(chain, FieldPath.Field(path, "default_filter_chain"), errors, logs)
            : null;

        if (endpoint is null || matcher is null || errors.Errors.Count > errorCount)
        {
            return null;
        }

        var listener = new Listener(config.Name, endpoint, matcher, chains, defaultChain, logs.Get(LogComponents.Listener));
        var protocols = listener.ConnectionManager?.Protocols;
        foreach (var hcm in chains.Append(defaultChain))
        {
            if (hcm is not null && hcm.Protocols != protocols)
            {
                // One cleartext Kestrel endpoint speaks one HTTP version; the first chain's codec decides.
                errors.Warn(FieldPath.Field(path, "filter_chains"), "filter chains with different codec_type on one listener are not supported yet; the first chain's codec is used for all");
                break;
            }
        }

        return listener;
    }

    /// <summary>Binds and starts serving.</summary>
    /// <exception cref="BindException">The address could not be bound.</exception>
    public async Task StartAsync(int ioQueueCount, LogManager logs, CancellationToken cancellationToken)
    {
        _kestrel = new KestrelListener(
            Endpoint,
            ConnectionManager?.Protocols ?? HttpProtocols.Http1,
            ioQueueCount,
            logs.Get(LogComponents.Http),
            SelectFilterChain);
        try
        {
            await _kestrel.StartAsync(HandleRequestAsync, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await _kestrel.DisposeAsync().ConfigureAwait(false);
            _kestrel = null;
            throw;
        }

        _log.Info($"listener '{Name}' listening on {SocketAddresses.Format(_kestrel.BoundEndpoint)}");
    }

    /// <summary>Stops accepting and lets in-flight requests finish until <paramref name="cancellationToken"/> fires.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _kestrel?.StopAsync(cancellationToken) ?? Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_kestrel is { } kestrel)
        {
            _kestrel = null;
            await kestrel.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <remarks>
    /// The loader's extension check has already rejected every network filter and transport
    /// socket Legate does not implement, so a chain here is raw_buffer + the HCM.
    /// </remarks>
    private static HttpConnectionManager? CompileChain(FilterChain chain, string chainPath, ConfigErrors errors, LogManager logs)
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
            return HttpConnectionManager.Compile(any.Unpack<Hcm>(), FieldPath.Field(terminalPath, "typed_config"), errors, logs.Get(LogComponents.Router));
        }

        errors.Add(terminalPath, $"network filter '{chain.Filters[last].Name}' is not supported yet");
        return null;
    }

    /// <summary>
    /// Picks the filter chain of each new connection. No match, or a chain Legate cannot serve,
    /// ends the connection before any HTTP: Kestrel closes the socket (a FIN, like Envoy).
    /// </summary>
    private ConnectionDelegate SelectFilterChain(ConnectionDelegate next) => connection =>
    {
        if (connection.LocalEndPoint is not IPEndPoint local || connection.RemoteEndPoint is not IPEndPoint remote)
        {
            return Task.CompletedTask;
        }

        var index = _matcher.Match(new ConnectionMatchInfo(local, remote));
        var hcm = index switch
        {
            FilterChainMatcher.NoMatch => null,
            FilterChainMatcher.DefaultFilterChain => _defaultChain,
            _ => _chains[index],
        };
        if (hcm is null)
        {
            _log.Debug($"listener '{Name}': no filter chain for connection from {SocketAddresses.Format(remote)} to {SocketAddresses.Format(local)}; closing");
            return Task.CompletedTask;
        }

        connection.Items[s_chainKey] = hcm;
        return next(connection);
    };

    private static Task HandleRequestAsync(HttpContext context)
    {
        var items = context.Features.Get<IConnectionItemsFeature>()!.Items;
        return ((HttpConnectionManager)items[s_chainKey]!).HandleAsync(context);
    }
}
