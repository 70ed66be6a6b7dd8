using System.Diagnostics.CodeAnalysis;
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
internal sealed class EcdsDispatcher : NamedResourceDispatcher<EcdsDispatcher.Entry, List<(DiscoveredHttpFilterFactory Filter, Http.HttpFilterFactory Factory)>>
{
    public EcdsDispatcher(StatsStore stats, TimeProvider time)
        : base(stats, time)
    {
    }

    /// <summary>Makes <paramref name="filter"/> follow the configuration named <paramref name="name"/> (the one in force applies at once).</summary>
    public void Watch(string name, DiscoveredHttpFilterFactory filter)
    {
        Entry entry;
        lock (Gate)
        {
            if (!ByName.TryGetValue(name, out entry!))
            {
                entry = new Entry(this, name);
                ByName.Add(name, entry);
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
            var timer = Time.CreateTimer(static state => ((Entry)state!).EndWarming(), entry, Subscription.Source.InitialFetchTimeout, Timeout.InfiniteTimeSpan);
            entry.Ready.ContinueWith(_ => timer.Dispose(), TaskScheduler.Default);
        }

        Subscription.AddName(name);
        // A listener that fails to compile after this gives the name back.
        SubscriptionHolds.Record(filter.Release);
    }

    public override void OnInitialFetchTimeout()
    {
        foreach (var entry in Entries)
        {
            entry.Stats.InitFetchTimeout.Inc();
            entry.EndWarming();
        }
    }

    /// <summary>An unchanged configuration: its filters keep what they run.</summary>
    protected override bool IsInForce(Entry entry, XdsResource resource) => resource.IsUnchanged;

    /// <summary>Compiles the configuration for every filter using the name; one failure releases the others' factories.</summary>
    protected override bool Prepare(Entry entry, XdsResource resource, [MaybeNullWhen(false)] out List<(DiscoveredHttpFilterFactory Filter, Http.HttpFilterFactory Factory)> value, [NotNullWhen(false)] out string? error)
    {
        var config = (TypedExtensionConfig)resource.Message;
        var factories = new List<(DiscoveredHttpFilterFactory, Http.HttpFilterFactory)>();
        error = null;
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
            Discard(factories);
            value = null;
            return false;
        }

        value = factories;
        return true;
    }

    protected override void Discard(List<(DiscoveredHttpFilterFactory Filter, Http.HttpFilterFactory Factory)> value)
    {
        foreach (var (_, factory) in value)
        {
            factory.Release();
        }
    }

    protected override void Commit(Entry entry, XdsResource resource, List<(DiscoveredHttpFilterFactory Filter, Http.HttpFilterFactory Factory)> value, DateTimeOffset now)
    {
        foreach (var (filter, factory) in value)
        {
            filter.Commit(factory);
        }

        entry.Updated(resource, now);
    }

    /// <summary>A removed configuration (Delta): the filters go back to their default_config.</summary>
    protected override void OnRemoved(Entry entry)
    {
        foreach (var filter in entry.Snapshot())
        {
            filter.Revert();
        }

        entry.Removed();
    }

    private void Release(Entry entry, DiscoveredHttpFilterFactory filter)
    {
        lock (Gate)
        {
            if (!entry.Filters.Remove(filter) || entry.Filters.Count > 0 || !ByName.TryGetValue(entry.Name, out var current) || !ReferenceEquals(current, entry))
            {
                return;
            }

            ByName.Remove(entry.Name);
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
            Stats = new XdsStats(owner.StatsStore, prefix);
            ConfigReload = owner.StatsStore.Counter(prefix + "config_reload");
            ConfigFail = owner.StatsStore.Counter(prefix + "config_fail");
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
            lock (_owner.Gate)
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
