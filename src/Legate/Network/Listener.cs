using System.Net;
using Envoy.Config.Listener.V3;
using Legate.Config;
using Legate.Http;
using Legate.Server.Logging;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Network;

/// <summary>
/// One static listener: its address and the HTTP connection manager of its filter chain.
/// Interim: filter chain matching, listener filters, TLS and TCP proxying come later; a listener
/// whose chain Legate cannot serve yet still binds (so the port is held as in Envoy) but closes
/// each connection, as Envoy does when no filter chain matches.
/// </summary>
internal sealed class Listener : IAsyncDisposable
{
    private readonly Logger _log;
    private KestrelListener? _kestrel;

    private Listener(string name, IPEndPoint endpoint, HttpConnectionManager? hcm, Logger log)
    {
        Name = name;
        Endpoint = endpoint;
        ConnectionManager = hcm;
        _log = log;
    }

    public string Name { get; }

    /// <summary>The configured address (port 0 means "any free port").</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>The address actually bound, once started.</summary>
    public IPEndPoint? BoundEndpoint => _kestrel?.BoundEndpoint;

    /// <summary>The HTTP connection manager serving this listener, or null when connections are closed.</summary>
    public HttpConnectionManager? ConnectionManager { get; }

    /// <summary>Compiles <paramref name="config"/>; returns null when it has errors (added to <paramref name="errors"/>).</summary>
    public static Listener? Compile(Envoy.Config.Listener.V3.Listener config, string path, ConfigErrors errors, LogManager logs)
    {
        var errorCount = errors.Errors.Count;
        var endpoint = SocketAddresses.ToTcpEndpoint(config.Address, FieldPath.Field(path, "address"), errors);

        for (var i = 0; i < config.ListenerFilters.Count; i++)
        {
            errors.Warn(FieldPath.Index(FieldPath.Field(path, "listener_filters"), i), $"listener filter '{config.ListenerFilters[i].Name}' is not implemented yet and is skipped");
        }

        FilterChain chain;
        string chainPath;
        if (config.FilterChains.Count > 0)
        {
            chain = config.FilterChains[0];
            chainPath = FieldPath.Index(FieldPath.Field(path, "filter_chains"), 0);
            if (config.FilterChains.Count > 1 || config.DefaultFilterChain is not null)
            {
                errors.Warn(FieldPath.Field(path, "filter_chains"), "filter chain matching is not implemented yet; every connection uses filter_chains[0]");
            }
        }
        else if (config.DefaultFilterChain is not null)
        {
            chain = config.DefaultFilterChain;
            chainPath = FieldPath.Field(path, "default_filter_chain");
        }
        else
        {
            errors.Add(path, $"listener '{config.Name}' has no filter chains");
            return null;
        }

        var hcm = CompileChain(chain, chainPath, errors, logs);
        if (endpoint is null || errors.Errors.Count > errorCount)
        {
            return null;
        }

        return new Listener(config.Name, endpoint, hcm, logs.Get(LogComponents.Listener));
    }

    /// <summary>Binds and starts serving.</summary>
    /// <exception cref="BindException">The address could not be bound.</exception>
    public async Task StartAsync(int ioQueueCount, LogManager logs, CancellationToken cancellationToken)
    {
        var hcm = ConnectionManager;
        _kestrel = new KestrelListener(
            Endpoint,
            hcm?.Protocols ?? HttpProtocols.Http1,
            ioQueueCount,
            logs.Get(LogComponents.Http),
            hcm is null ? CloseConnections : null);
        try
        {
            await _kestrel.StartAsync(hcm is null ? _ => Task.CompletedTask : hcm.HandleAsync, cancellationToken).ConfigureAwait(false);
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

    private static HttpConnectionManager? CompileChain(FilterChain chain, string chainPath, ConfigErrors errors, LogManager logs)
    {
        if (chain.TransportSocket is not null)
        {
            errors.Warn(FieldPath.Field(chainPath, "transport_socket"), "TLS is not implemented yet; connections to this listener are closed");
            return null;
        }

        var filtersPath = FieldPath.Field(chainPath, "filters");
        if (chain.Filters.Count == 0)
        {
            errors.Add(filtersPath, "a filter chain needs at least one network filter");
            return null;
        }

        for (var i = 0; i < chain.Filters.Count - 1; i++)
        {
            errors.Warn(FieldPath.Index(filtersPath, i), $"network filter '{chain.Filters[i].Name}' is not implemented yet and is skipped");
        }

        var last = chain.Filters.Count - 1;
        var terminal = chain.Filters[last];
        var terminalPath = FieldPath.Index(filtersPath, last);
        if (terminal.TypedConfig is { } any && any.Is(Hcm.Descriptor))
        {
            return HttpConnectionManager.Compile(any.Unpack<Hcm>(), FieldPath.Field(terminalPath, "typed_config"), errors, logs.Get(LogComponents.Router));
        }

        errors.Warn(terminalPath, $"network filter '{terminal.Name}' is not implemented yet; connections to this listener are closed");
        return null;
    }

    // Returning without calling the HTTP layer ends the connection: Kestrel closes the socket
    // (a FIN, not a reset, like Envoy when no filter chain matches).
    private static ConnectionDelegate CloseConnections(ConnectionDelegate next) => _ => Task.CompletedTask;
}
