namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>
/// The server's tap filters configured for admin control (<c>common_config.admin_config.config_id</c>),
/// by config id, and the one <c>POST /tap</c> session attached to them. As in Envoy, a single admin
/// tap session exists at a time; it is installed on every filter with its config id (including
/// ones that arrive later by LDS) and removed from all of them when the admin client goes away.
/// </summary>
internal sealed class TapAdminRegistry
{
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<string, List<TapFilterFactory>> _factories = new(StringComparer.Ordinal);
    private string? _attachedId;
    private TapSettings? _attached;

    /// <summary>Cancelled when the server shuts down: open <c>/tap</c> responses end, so they do not hold up the admin's stop.</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>The server is shutting down: ends every admin tap session.</summary>
    public void Stop() => _stopping.Cancel();

    public void Register(string configId, TapFilterFactory factory)
    {
        lock (_lock)
        {
            if (!_factories.TryGetValue(configId, out var list))
            {
                _factories[configId] = list = new List<TapFilterFactory>();
            }

            list.Add(factory);
            if (_attached is not null && _attachedId == configId)
            {
                factory.Active = _attached;
            }
        }
    }

    /// <summary>
    /// The filter's listener version is gone: it leaves its config id (the id itself once no filter has
    /// it, so <c>/tap</c> answers "Unknown config id" again) and stops tapping. An attached session
    /// stays, as in Envoy, and reaches filters that register the id later.
    /// </summary>
    public void Unregister(string configId, TapFilterFactory factory)
    {
        lock (_lock)
        {
            if (_factories.TryGetValue(configId, out var list) && list.Remove(factory) && list.Count == 0)
            {
                _factories.Remove(configId);
            }

            factory.Active = null;
        }
    }

    /// <summary>Whether any filter is registered, under any id: Envoy's <c>/tap</c> endpoint exists only then.</summary>
    public bool HasRegistrations
    {
        get
        {
            lock (_lock)
            {
                return _factories.Count > 0;
            }
        }
    }

    /// <summary>How many filters have <paramref name="configId"/> (tests, diagnostics).</summary>
    public int CountRegistered(string configId)
    {
        lock (_lock)
        {
            return _factories.TryGetValue(configId, out var list) ? list.Count : 0;
        }
    }

    public bool IsRegistered(string configId)
    {
        lock (_lock)
        {
            return _factories.ContainsKey(configId);
        }
    }

    public bool IsAttached
    {
        get
        {
            lock (_lock)
            {
                return _attached is not null;
            }
        }
    }

    /// <summary>Installs <paramref name="settings"/> on the filters of <paramref name="configId"/>; false when a session is already attached.</summary>
    public bool TryAttach(string configId, TapSettings settings)
    {
        lock (_lock)
        {
            if (_attached is not null)
            {
                return false;
            }

            _attached = settings;
            _attachedId = configId;
            if (_factories.TryGetValue(configId, out var list))
            {
                foreach (var factory in list)
                {
                    factory.Active = settings;
                }
            }

            return true;
        }
    }

    /// <summary>Removes the session that installed <paramref name="settings"/>: its filters stop tapping new streams.</summary>
    public void Detach(TapSettings settings)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_attached, settings))
            {
                return;
            }

            if (_factories.TryGetValue(_attachedId!, out var list))
            {
                foreach (var factory in list)
                {
                    if (ReferenceEquals(factory.Active, settings))
                    {
                        factory.Active = null;
                    }
                }
            }

            _attached = null;
            _attachedId = null;
        }
    }
}
