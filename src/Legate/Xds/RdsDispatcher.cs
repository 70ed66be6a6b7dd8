using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Http;
using Legate.Stats;

namespace Legate.Xds;

/// <summary>
/// The RDS subscription of one source: one provider per route configuration name, shared by
/// every connection manager that names it (Envoy's RdsRouteConfigProviderImpl). Each update is
/// compiled in full before any table is swapped. Providers are counted: when the last connection
/// manager using a name releases it, the name leaves the subscription (SotW: the next request no
/// longer lists it; Delta: <c>resource_names_unsubscribe</c>).
/// </summary>
internal sealed class RdsDispatcher : IXdsUpdateHandler
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, RdsRouteConfigProvider> _providers = new(StringComparer.Ordinal);
    private readonly StatsStore _stats;
    private readonly TimeProvider _time;

    public RdsDispatcher(StatsStore stats, TimeProvider time)
    {
        _stats = stats;
        _time = time;
    }

    public XdsSubscription Subscription { get; set; } = null!;

    public IReadOnlyList<RdsRouteConfigProvider> Providers
    {
        get
        {
            lock (_lock)
            {
                return _providers.Values.ToArray();
            }
        }
    }

    public RdsRouteConfigProvider GetProvider(string name, string statPrefix)
    {
        RdsRouteConfigProvider provider;
        lock (_lock)
        {
            if (_providers.TryGetValue(name, out var existing))
            {
                existing.References++;
                SubscriptionHolds.Record(existing.Release);
                return existing;
            }

            provider = new RdsRouteConfigProvider(name, _stats, statPrefix, Release) { References = 1 };
            _providers.Add(name, provider);
        }

        if (Subscription.Resources.TryGetValue(name, out var cached))
        {
            var errors = new ConfigErrors();
            var table = RouteTable.Compile((RouteConfiguration)cached.Message, "", errors);
            if (!errors.HasErrors)
            {
                provider.Update(table, (RouteConfiguration)cached.Message, cached.Version, cached.LastUpdated);
            }
        }
        else if (Subscription.Initialized.IsCompleted && Subscription.Source.InitialFetchTimeout > TimeSpan.Zero)
        {
            // The stream is up and answering; a listener must not warm forever on a name the server never sends.
            var timer = _time.CreateTimer(static state => ((RdsRouteConfigProvider)state!).EndWarming(), provider, Subscription.Source.InitialFetchTimeout, Timeout.InfiniteTimeSpan);
            provider.Ready.ContinueWith(_ => timer.Dispose(), TaskScheduler.Default);
        }

        Subscription.AddName(name);
        // A listener that fails to compile after this gives the reference back.
        SubscriptionHolds.Record(provider.Release);
        return provider;
    }

    private void Release(RdsRouteConfigProvider provider)
    {
        lock (_lock)
        {
            if (--provider.References > 0 || !_providers.TryGetValue(provider.Name, out var current) || !ReferenceEquals(current, provider))
            {
                return;
            }

            _providers.Remove(provider.Name);
        }

        provider.EndWarming();
        Subscription.RemoveName(provider.Name);

        // A connection manager may have asked for the name again between the two steps: it keeps it.
        bool wantedAgain;
        lock (_lock)
        {
            wantedAgain = _providers.ContainsKey(provider.Name);
        }

        if (wantedAgain)
        {
            Subscription.AddName(provider.Name);
        }
    }

    public ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken)
    {
        var errors = new List<XdsResourceError>();
        var compiled = new List<(XdsResource Resource, RouteTable Table)>();
        foreach (var resource in update.Resources)
        {
            var configErrors = new ConfigErrors();
            var table = RouteTable.Compile((RouteConfiguration)resource.Message, "", configErrors);
            if (configErrors.HasErrors)
            {
                errors.Add(new XdsResourceError(resource.Name, XdsResourceValidator.Describe(configErrors.Errors)));
            }
            else
            {
                compiled.Add((resource, table));
            }
        }

        foreach (var error in errors)
        {
            if (Find(error.Resource) is { } provider)
            {
                provider.Stats.UpdateAttempt.Inc();
                provider.Stats.UpdateRejected.Inc();
            }
        }

        if (update.IsStateOfWorld && errors.Count > 0)
        {
            return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
        }

        var now = _time.GetUtcNow();
        foreach (var (resource, table) in compiled)
        {
            if (Find(resource.Name) is not { } provider)
            {
                continue;
            }

            provider.Stats.UpdateAttempt.Inc();
            if (!ReferenceEquals(provider.Config, resource.Message) && !(provider.Config?.Equals(resource.Message) ?? false))
            {
                provider.Update(table, (RouteConfiguration)resource.Message, resource.Version, now);
            }

            provider.Stats.Accepted(resource.Version, now);
        }

        foreach (var name in update.Removed)
        {
            // Envoy keeps serving the last routes when RDS removes the resource; it only stops warming.
            Find(name)?.EndWarming();
        }

        return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
    }

    public void OnInitialFetchTimeout()
    {
        foreach (var provider in Providers)
        {
            provider.Stats.InitFetchTimeout.Inc();
            provider.EndWarming();
        }
    }

    private RdsRouteConfigProvider? Find(string name)
    {
        lock (_lock)
        {
            return _providers.GetValueOrDefault(name);
        }
    }
}
