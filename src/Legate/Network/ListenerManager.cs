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
    private readonly Listener[] _listeners;
    private readonly LogManager _logs;
    private readonly int _ioQueueCount;

    private ListenerManager(Listener[] listeners, LogManager logs, int ioQueueCount)
    {
        _listeners = listeners;
        _logs = logs;
        _ioQueueCount = ioQueueCount;
    }

    public IReadOnlyList<Listener> Listeners => _listeners;

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

    /// <summary>Binds every listener, in config order.</summary>
    /// <exception cref="BindException">A listener could not bind; the ones already bound are closed.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
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
    public Task StopAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(_listeners.Select(l => l.StopAsync(cancellationToken)));

    public async ValueTask DisposeAsync()
    {
        foreach (var listener in _listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task StopStartedAsync(int count)
    {
        for (var i = 0; i < count; i++)
        {
            await _listeners[i].DisposeAsync().ConfigureAwait(false);
        }
    }
}
