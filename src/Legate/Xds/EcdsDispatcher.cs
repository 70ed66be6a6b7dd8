using Envoy.Config.Core.V3;
using Legate.Stats;

namespace Legate.Xds;

/// <summary>
/// The ECDS subscription of one source (<c>TypedExtensionConfig</c> resources by name): one entry
/// per filter configuration name, shared by every discovered HTTP filter that names it. An update
/// is compiled for every filter using the name before any of them switches (SotW: one failure
/// rejects the response; Delta: the resource). Stats per name under
/// <c>extension_config_discovery.http_filter.&lt;name&gt;.</c>: config_reload, config_fail and the
/// subscription counters (update_success, ...). The last filter using a name gives it up.
/// </summary>
internal sealed class EcdsDispatcher : IXdsUpdateHandler
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly StatsStore _stats;
    private readonly TimeProvider _time;

    public EcdsDispatcher(StatsStore stats, TimeProvider time)
    {
        _stats = stats;
        _time = time;
    }

    public XdsSubscription Subscription { get; set; } = null!;

    public IReadOnlyList<Entry> Entries
    {
        get
        {
            lock (_lock)
            {
                return _entries.Values.ToArray();
            }
        }
    }

    /// <summary>Makes <paramref name="filter"/> follow the configuration named <paramref name="name"/> (the one in force applies at once).</summary>
    public void Watch(string name, DiscoveredHttpFilterFactory filter)
    {
        Entry entry;
        lock (_lock)
        {
            if (!_entries.TryGetValue(name, out entry!))
            {
                entry = new Entry(this, name);
                _entries.Add(name, entry);
            }

            entry.Filters.Add(filter);
        }

        filter.Bind(entry);
        if (Subscription.Resources.TryGetValue(name, out var cached) && filter.Prepare((TypedExtensionConfig)cached.Message, out _) is { } factory)
        {
            filter.Commit(factory);
        }
        else if (!entry.Ready.IsCompleted && Subscription.Initialized.IsCompleted && Subscription.Source.InitialFetchTimeout > TimeSpan.Zero)
        {
            // The stream answers already; a listener must not warm forever on a name the server never sends.
            var timer = _time.CreateTimer(static state => ((Entry)state!).EndWarming(), entry, Subscription.Source.InitialFetchTimeout, Timeout.InfiniteTimeSpan);
            entry.Ready.ContinueWith(_ => timer.Dispose(), TaskScheduler.Default);
        }

        Subscription.AddName(name);
        // A listener that fails to compile after this gives the name back.
        SubscriptionHolds.Record(filter.Release);
    }

    public ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken)
    {
        var errors = new List<XdsResourceError>();
        var prepared = new List<(Entry Entry, XdsResource Resource, List<(DiscoveredHttpFilterFactory Filter, Http.HttpFilterFactory Factory)> Factories)>();
        foreach (var resource in update.Resources)
        {
            if (resource.IsUnchanged || Find(resource.Name) is not { } entry)
            {
                continue;
            }

            var config = (TypedExtensionConfig)resource.Message;
            var factories = new List<(DiscoveredHttpFilterFactory, Http.HttpFilterFactory)>();
            string? error = null;
            foreach (var filter in entry.Snapshot())
            {
                if (filter.Prepare(config, out error) is not { } factory)
                {
                    break;
                }

                factories.Add((filter, factory));
            }

            if (error is not null)
            {
                entry.ConfigFail.Inc();
                entry.Stats.UpdateAttempt.Inc();
                entry.Stats.UpdateRejected.Inc();
                errors.Add(new XdsResourceError(resource.Name, error));
                ReleaseAll(factories);
                continue;
            }

            prepared.Add((entry, resource, factories));
        }

        if (update.IsStateOfWorld && errors.Count > 0)
        {
            foreach (var (_, _, factories) in prepared)
            {
                ReleaseAll(factories);
            }

            return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
        }

        var now = _time.GetUtcNow();
        foreach (var (entry, resource, factories) in prepared)
        {
            foreach (var (filter, factory) in factories)
            {
                filter.Commit(factory);
            }

            entry.Updated(resource, now);
        }

        foreach (var name in update.Removed)
        {
            if (Find(name) is { } entry)
            {
                foreach (var filter in entry.Snapshot())
                {
                    filter.Revert();
                }

                entry.Removed();
            }
        }

        return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
    }

    public void OnInitialFetchTimeout()
    {
        foreach (var entry in Entries)
        {
            entry.Stats.InitFetchTimeout.Inc();
            entry.EndWarming();
        }
    }

    private static void ReleaseAll(List<(DiscoveredHttpFilterFactory Filter, Http.HttpFilterFactory Factory)> factories)
    {
        foreach (var (_, factory) in factories)
        {
            factory.Release();
        }
    }

    private Entry? Find(string name)
    {
        lock (_lock)
        {
            return _entries.GetValueOrDefault(name);
        }
    }

    private void Release(Entry entry, DiscoveredHttpFilterFactory filter)
    {
        lock (_lock)
        {
            if (!entry.Filters.Remove(filter) || entry.Filters.Count > 0 || !_entries.TryGetValue(entry.Name, out var current) || !ReferenceEquals(current, entry))
            {
                return;
            }

            _entries.Remove(entry.Name);
        }

        entry.EndWarming();
        Subscription.RemoveName(entry.Name);
    }

    /// <summary>One filter configuration name: its users, the configuration in force, its stats.</summary>
    internal sealed class Entry
    {
        private readonly EcdsDispatcher _owner;
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Entry(EcdsDispatcher owner, string name)
        {
            _owner = owner;
            Name = name;
            var prefix = $"extension_config_discovery.http_filter.{name}.";
            Stats = new XdsStats(owner._stats, prefix);
            ConfigReload = owner._stats.Counter(prefix + "config_reload");
            ConfigFail = owner._stats.Counter(prefix + "config_fail");
        }

        public string Name { get; }

        /// <summary>The filters using the name; guarded by the dispatcher's lock.</summary>
        public List<DiscoveredHttpFilterFactory> Filters { get; } = new();

        public XdsStats Stats { get; }

        public Counter ConfigReload { get; }

        public Counter ConfigFail { get; }

        /// <summary>The configuration in force (null before the first, or after a removal).</summary>
        public TypedExtensionConfig? Config { get; private set; }

        public string Version { get; private set; } = string.Empty;

        public DateTimeOffset LastUpdated { get; private set; }

        public Task Ready => _ready.Task;

        public DiscoveredHttpFilterFactory[] Snapshot()
        {
            lock (_owner._lock)
            {
                return Filters.ToArray();
            }
        }

        public void Updated(XdsResource resource, DateTimeOffset now)
        {
            Config = (TypedExtensionConfig)resource.Message;
            Version = resource.Version;
            LastUpdated = now;
            ConfigReload.Inc();
            Stats.UpdateAttempt.Inc();
            Stats.Accepted(resource.Version, now);
            _ready.TrySetResult();
        }

        public void Removed()
        {
            Config = null;
            Version = string.Empty;
        }

        public void EndWarming() => _ready.TrySetResult();

        public void Release(DiscoveredHttpFilterFactory filter) => _owner.Release(this, filter);
    }
}
