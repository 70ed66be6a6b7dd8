using Envoy.Config.Bootstrap.V3;
using Legate.Config;
using Legate.Server.Logging;

namespace Legate.Network;

/// <summary>
/// Owns the static listeners: compiles them all before anything binds (so a bad config never
/// half-starts), binds them in order, and on the first bind failure closes the ones already
/// bound. Interim: LDS and listener updates come later.
/// </summary>
internal sealed class ListenerManager : IAsyncDisposable
{
    private readonly Lock _writeLock = new();
    private volatile Listener[] _listeners;
    private bool _started;
    private readonly LogManager _logs;
    private readonly int _ioQueueCount;

    private ListenerManager(Listener[] listeners, LogManager logs, int ioQueueCount)
    {
        _listeners = listeners;
        foreach (var listener in listeners)
        {
            listener.Manager = this;
        }

        _logs = logs;
        _ioQueueCount = ioQueueCount;
    }

    public IReadOnlyList<Listener> Listeners => _listeners;

    /// <summary>Every listener's accepted connections still open: what <c>overload.global_downstream_max_connections</c> limits.</summary>
    public ConnectionCount DownstreamConnections { get; } = new();

    /// <summary>Whether the server fails health checks, for the listeners that drain on it.</summary>
    public HealthCheckDrain HealthCheck { get; } = new();

    /// <summary>Compiles every static listener, adding problems to <paramref name="errors"/>.</summary>
    public static ListenerManager Compile(Bootstrap bootstrap, ConfigErrors errors, Legate.Http.HttpFilterFactoryContext context, int ioQueueCount)
    {
        var listeners = new List<Listener>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var configs = bootstrap.StaticResources?.Listeners;
        for (var i = 0; configs is not null && i < configs.Count; i++)
        {
            var path = FieldPath.Index("static_resources.listeners", i);
            // Envoy gives a nameless listener a generated one, so only given names must be unique.
            if (configs[i].Name.Length > 0 && !names.Add(configs[i].Name))
            {
                errors.Add(FieldPath.Field(path, "name"), $"duplicate listener name '{configs[i].Name}'");
                continue;
            }

            if (Listener.Compile(configs[i], path, errors, context) is { } listener)
            {
                listeners.Add(listener);
            }
        }

        return new ListenerManager(listeners.ToArray(), context.Logs, ioQueueCount);
    }

    public Listener? Find(string name) => Array.Find(_listeners, l => l.Name == name);

    /// <summary>
    /// The listener a <c>use_original_dst</c> listener hands a connection to <paramref name="destination"/>
    /// off to: one at exactly that address, else one at the wildcard address (0.0.0.0 / ::) of that port,
    /// never <paramref name="from"/> itself; null = keep it.
    /// </summary>
    public Listener? FindHandOffTarget(System.Net.IPEndPoint destination, Listener from)
    {
        Listener? wildcard = null;
        foreach (var listener in _listeners)
        {
            if (ReferenceEquals(listener, from))
            {
                continue;
            }

            // Every address of the listener counts, its additional_addresses too (as Envoy's by-address map).
            foreach (var endpoint in listener.AdditionalEndpoints.Prepend(listener.BoundEndpoint ?? listener.Endpoint))
            {
                if (endpoint.Port != destination.Port)
                {
                    continue;
                }

                if (endpoint.Address.Equals(destination.Address))
                {
                    return listener;
                }

                if (endpoint.Address.Equals(System.Net.IPAddress.Any) || endpoint.Address.Equals(System.Net.IPAddress.IPv6Any))
                {
                    wildcard ??= listener;
                }
            }
        }

        return wildcard;
    }

    /// <summary>
    /// LDS: adds <paramref name="listener"/> (compiled, not started) or replaces the one with its
    /// name. Same address: the running listener keeps its socket and takes the new filter chains
    /// (<see cref="Listener.UpdateFrom"/>). New address: the new listener binds first, then the
    /// old one drains. Before <see cref="StartAsync"/> the listener just joins the list.
    /// </summary>
    /// <exception cref="BindException">The new address could not be bound; nothing changed.</exception>
    public async Task AddOrUpdateAsync(Listener listener, TimeSpan drainTime, CancellationToken cancellationToken)
    {
        listener.Manager = this;
        Listener? existing;
        bool started;
        lock (_writeLock)
        {
            existing = Find(listener.Name);
            started = _started;
            if (existing is not null && (!started || existing.Endpoint.Equals(listener.Endpoint)))
            {
                if (!started)
                {
                    _listeners = Array.ConvertAll(_listeners, l => ReferenceEquals(l, existing) ? listener : l);
                }
            }
        }

        if (existing is not null && !started)
        {
            await existing.DisposeAsync().ConfigureAwait(false);
            return;
        }

        if (existing is not null && existing.Endpoint.Equals(listener.Endpoint))
        {
            existing.UpdateFrom(listener, drainTime);
            return;
        }

        if (started)
        {
            await listener.StartAsync(_ioQueueCount, cancellationToken).ConfigureAwait(false);
        }

        lock (_writeLock)
        {
            _listeners = existing is null ? [.. _listeners, listener] : Array.ConvertAll(_listeners, l => ReferenceEquals(l, existing) ? listener : l);
        }

        if (existing is not null)
        {
            _ = DrainAsync(existing, drainTime);
        }
    }

    /// <summary>
    /// LDS removed a listener: it stops accepting at once and its connections drain for up to
    /// <paramref name="drainTime"/>; the task completes when the listener is gone (drained and disposed).
    /// </summary>
    public async Task<bool> RemoveAsync(string name, TimeSpan drainTime)
    {
        Listener? removed;
        lock (_writeLock)
        {
            removed = Find(name);
            if (removed is null)
            {
                return false;
            }

            _listeners = Array.FindAll(_listeners, l => !ReferenceEquals(l, removed));
        }

        await DrainAsync(removed, drainTime).ConfigureAwait(false);
        return true;
    }

    private async Task DrainAsync(Listener listener, TimeSpan drainTime)
    {
        try
        {
            using var deadline = new CancellationTokenSource(drainTime);
            await listener.StopAsync(deadline.Token, drain: true).ConfigureAwait(false);
        }
        finally
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Binds every listener, in config order.</summary>
    /// <exception cref="BindException">A listener could not bind; the ones already bound are closed.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Listener[] _listeners;
        lock (_writeLock)
        {
            _listeners = this._listeners;
        }

        // Static listeners warm on their SDS secrets (bounded by the sources' initial_fetch_timeout):
        // no port opens before its certificates are here, as Envoy's init manager does.
        await Task.WhenAll(_listeners.Select(l => l.SecretsReady)).WaitAsync(cancellationToken).ConfigureAwait(false);
        lock (_writeLock)
        {
            _started = true;
            _listeners = this._listeners;
        }

        for (var i = 0; i < _listeners.Length; i++)
        {
            try
            {
                await _listeners[i].StartAsync(_ioQueueCount, cancellationToken).ConfigureAwait(false);
            }
            catch (BindException ex)
            {
                await StopStartedAsync(i).ConfigureAwait(false);
                throw new BindException($"listener '{_listeners[i].Name}': {ex.Message}", ex);
            }
            catch
            {
                await StopStartedAsync(i).ConfigureAwait(false);
                throw;
            }
        }
    }

    /// <summary>Stops every listener at once: stop accepting, let in-flight requests finish until the token fires.</summary>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_writeLock)
        {
            // Nothing starts after a stop (LDS updates arriving while the server drains).
            _started = false;
        }

        return Task.WhenAll(_listeners.Select(l => l.StopAsync(cancellationToken)));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var listener in _listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task StopStartedAsync(int count)
    {
        var listeners = _listeners;
        for (var i = 0; i < count && i < listeners.Length; i++)
        {
            await listeners[i].DisposeAsync().ConfigureAwait(false);
        }
    }
}
