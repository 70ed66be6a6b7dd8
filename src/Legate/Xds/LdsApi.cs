using Legate.Config;
using Legate.Http;
using Legate.Network;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Tls;
using ListenerConfig = Envoy.Config.Listener.V3.Listener;

namespace Legate.Xds;

/// <summary>
/// Applies LDS (Envoy's LdsApiImpl + the listener manager's dynamic side): a listener absent from
/// a state-of-the-world response is removed (drained); a new or changed one is compiled, warms
/// until the RDS route tables and SDS secrets it names have arrived, then replaces the old one — on the same
/// socket when the address is unchanged. Unchanged listeners are left alone. Stats:
/// <c>listener_manager.listener_added/modified/removed</c>, <c>total_listeners_{warming,active,draining}</c>.
/// </summary>
internal sealed class LdsApi : IXdsUpdateHandler
{
    private readonly XdsWarmingTable<DynamicListener, Warming> _table = new();

    // The route tables and secrets each active dynamic listener holds, released when it is replaced
    // or removed; kept in step with the table under its gate.
    private readonly Dictionary<string, HeldResources> _activeResources = new(StringComparer.Ordinal);
    private readonly ListenerManager _listeners;
    private readonly HashSet<string> _static;
    private readonly Func<HttpFilterFactoryContext> _context;
    private readonly TimeSpan _drainTime;
    private readonly Logger _log;
    private readonly Counter _added;
    private readonly Counter _modified;
    private readonly Counter _removed;
    private readonly Counter _createFailure;
    private readonly Gauge _warmingGauge;
    private readonly Gauge _activeGauge;
    private readonly Gauge _drainingGauge;
    private int _draining;

    public LdsApi(ListenerManager listeners, Func<HttpFilterFactoryContext> context, TimeSpan drainTime, StatsStore stats, Logger log)
    {
        _listeners = listeners;
        _static = new HashSet<string>(listeners.Listeners.Select(l => l.Name), StringComparer.Ordinal);
        _context = context;
        _drainTime = drainTime;
        _log = log;
        _added = stats.Counter("listener_manager.listener_added");
        _modified = stats.Counter("listener_manager.listener_modified");
        _removed = stats.Counter("listener_manager.listener_removed");
        _createFailure = stats.Counter("listener_manager.listener_create_failure");
        _warmingGauge = stats.Gauge("listener_manager.total_listeners_warming", ImportMode.NeverImport);
        _activeGauge = stats.Gauge("listener_manager.total_listeners_active", ImportMode.NeverImport);
        _drainingGauge = stats.Gauge("listener_manager.total_listeners_draining", ImportMode.NeverImport);
        _activeGauge.Set(_static.Count);
    }

    /// <summary>Completes when the listeners of the first update have warmed.</summary>
    public Task FirstWarm => _table.FirstWarm;

    public IReadOnlyList<DynamicListener> Active => _table.Active;

    public IReadOnlyList<DynamicListener> WarmingListeners => Array.ConvertAll(_table.Warming, w => w.Entry);

    /// <summary>
    /// Admin <c>/init_dump</c>: each warming listener with the route tables (RDS names) it still
    /// waits for, by name.
    /// </summary>
    public IReadOnlyList<(string Listener, string[] RouteConfigs)> UnreadyTargets()
    {
        return _table.Warming.OrderBy(w => w.Entry.Name, StringComparer.Ordinal)
            .Select(w => (w.Entry.Name, w.Listener.ConnectionManagers
                .Select(h => h.RouteProvider).OfType<RdsRouteConfigProvider>()
                .Where(p => !p.Ready.IsCompleted).Select(p => p.Name).Distinct(StringComparer.Ordinal).ToArray()))
            .ToArray();
    }

    public ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken)
    {
        var errors = new List<XdsResourceError>();
        var built = new List<(DynamicListener Entry, Listener Listener, bool IsNew)>();
        foreach (var resource in update.Resources)
        {
            var config = (ListenerConfig)resource.Message;
            if (_static.Contains(resource.Name))
            {
                errors.Add(new XdsResourceError(resource.Name, $"listener '{resource.Name}' is a static listener and cannot be added or updated by LDS"));
                continue;
            }

            if (_table.IsUnchanged(resource.Name, config))
            {
                continue;
            }

            var isNew = _table.IsNew(resource.Name);

            var configErrors = new ConfigErrors();
            Listener? listener;
            using (var holds = SubscriptionHolds.Begin())
            {
                listener = Listener.Compile(config, "", configErrors, _context());
                if (listener is null || configErrors.HasErrors)
                {
                    // The route tables and secrets its filter chains had already asked for are given back.
                    holds.ReleaseAll();
                    errors.Add(new XdsResourceError(resource.Name, XdsResourceValidator.Describe(configErrors.Errors)));
                    continue;
                }
            }

            if (_listeners.Find(resource.Name) is { } running && running.Endpoint.Equals(listener.Endpoint) && running.ReusePort != listener.ReusePort)
            {
                // The update would keep the running socket (same address), whose SO_REUSEPORT was
                // set before bind: Envoy rejects it too; removing and re-adding the listener works.
                listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
                HeldResources.Of(listener).Release();
                errors.Add(new XdsResourceError(resource.Name, $"Listener {resource.Name}: reuse port cannot be changed during an update"));
                continue;
            }

            foreach (var warning in configErrors.Warnings)
            {
                _log.Warn($"lds: listener '{resource.Name}': {warning}");
            }

            built.Add((new DynamicListener(resource.Name, config, resource.Version, resource.LastUpdated), listener, isNew));
        }

        if (update.IsStateOfWorld && errors.Count > 0)
        {
            foreach (var (_, listener, _) in built)
            {
                listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
                HeldResources.Of(listener).Release();
            }

            return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
        }

        var warms = new List<Task>();
        foreach (var (entry, listener, isNew) in built)
        {
            (isNew ? _added : _modified).Inc();
            warms.Add(Warm(entry, listener));
        }

        foreach (var name in update.Removed)
        {
            if (!_static.Contains(name))
            {
                Remove(name);
            }
        }

        _table.OnWarms(warms);

        UpdateGauges();
        return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
    }

    public void OnInitialFetchTimeout() => _table.OnInitialFetchTimeout();

    private Task Warm(DynamicListener entry, Listener listener)
    {
        var warming = new Warming(entry, listener);
        _table.StartWarming(warming);

        return WarmAsync(warming);
    }

    private async Task WarmAsync(Warming warming)
    {
        var name = warming.Entry.Name;
        try
        {
            // A listener warms until every route table and SDS secret it names has arrived (or timed out).
            var routes = warming.Listener.ConnectionManagers.Select(h => h.RouteProvider?.Ready).OfType<Task>().Append(warming.Listener.SecretsReady)
                // A filter configured over ECDS warms the listener until its first configuration (unless apply_default_config_without_warming).
                .Concat(warming.Listener.ConnectionManagers.SelectMany(h => h.FilterFactories).OfType<DiscoveredHttpFilterFactory>().Select(f => f.Ready))
                .ToArray();
            await Task.WhenAll(routes).WaitAsync(warming.Cancel.Token).ConfigureAwait(false);
            lock (_table.Gate)
            {
                if (!_table.EndWarming(warming))
                {
                    throw new OperationCanceledException();
                }
            }

            await _listeners.AddOrUpdateAsync(warming.Listener, _drainTime, CancellationToken.None).ConfigureAwait(false);
            HeldResources? replaced;
            lock (_table.Gate)
            {
                _table.Activate(warming.Entry);
                _activeResources.Remove(name, out replaced);
                _activeResources[name] = warming.Resources;
            }

            // The new version holds its route tables and secrets now; the previous one lets go of its
            // own (a name both use stays subscribed; one only the old version used is unsubscribed).
            replaced?.Release();

            _log.Info($"lds: add/update listener '{name}'");
        }
        catch (OperationCanceledException)
        {
            await warming.Listener.DisposeAsync().ConfigureAwait(false);
            warming.Resources.Release();
        }
        catch (Exception ex)
        {
            _createFailure.Inc();
            _log.Error($"lds: listener '{name}' could not be added: {ex.Message}");
            lock (_table.Gate)
            {
                _table.EndWarming(warming);
            }

            await warming.Listener.DisposeAsync().ConfigureAwait(false);
            warming.Resources.Release();
        }
        finally
        {
            warming.Cancel.Dispose();
            UpdateGauges();
        }
    }

    private void Remove(string name)
    {
        HeldResources? held;
        lock (_table.Gate)
        {
            if (!_table.Remove(name))
            {
                return;
            }

            _activeResources.Remove(name, out held);
        }

        _removed.Inc();
        _log.Info($"lds: removing listener '{name}'");
        Interlocked.Increment(ref _draining);
        UpdateGauges();
        _ = DrainAsync(name, held);
    }

    private async Task DrainAsync(string name, HeldResources? held)
    {
        try
        {
            await _listeners.RemoveAsync(name, _drainTime).ConfigureAwait(false);
        }
        finally
        {
            // As Envoy: the RDS and SDS subscriptions end with the listener, once it has drained.
            held?.Release();
            Interlocked.Decrement(ref _draining);
            UpdateGauges();
        }
    }

    /// <summary>
    /// What one compiled listener version took when it was built: an RDS provider per connection
    /// manager, its filter chains' TLS contexts (their SDS secrets) and its HTTP filter configs. Captured at build time, since
    /// a running listener later takes the chains of newer versions.
    /// </summary>
    private sealed class HeldResources(RdsRouteConfigProvider[] routes, ServerTlsContext[] tls, HttpFilterFactory[] filters)
    {
        public static HeldResources Of(Listener listener) => new(
            listener.ConnectionManagers.Select(h => h.RouteProvider).OfType<RdsRouteConfigProvider>().ToArray(),
            listener.TlsContexts.ToArray(),
            listener.ConnectionManagers.SelectMany(h => h.FilterFactories).ToArray());

        public void Release()
        {
            foreach (var route in routes)
            {
                route.Release();
            }

            // Filters registered by config id (the admin tap) leave the registry with their listener version.
            foreach (var filter in filters)
            {
                filter.Release();
            }

            foreach (var context in tls)
            {
                context.ReleaseSecrets();
            }
        }
    }

    private void UpdateGauges()
    {
        var (warming, active) = _table.Counts;
        _warmingGauge.Set(warming);
        _activeGauge.Set(_static.Count + active);
        _drainingGauge.Set(Volatile.Read(ref _draining));
    }

    /// <summary>A dynamic listener as config_dump shows it.</summary>
    internal sealed class DynamicListener(string name, ListenerConfig config, string version, DateTimeOffset lastUpdated) : IXdsDynamicEntry
    {
        public string Name { get; } = name;

        public ListenerConfig Config { get; } = config;

        Google.Protobuf.IMessage IXdsDynamicEntry.Message => Config;

        public string Version { get; } = version;

        public DateTimeOffset LastUpdated { get; } = lastUpdated;
    }

    private sealed class Warming(DynamicListener entry, Listener listener) : IXdsWarming<DynamicListener>
    {
        public DynamicListener Entry { get; } = entry;

        public Listener Listener { get; } = listener;

        /// <summary>The route tables and secrets this version took (each holds one reference).</summary>
        public HeldResources Resources { get; } = HeldResources.Of(listener);

        public CancellationTokenSource Cancel { get; } = new();
    }
}
