using Legate.Config;
using Legate.Stats;
using Legate.Tls;
using Secret = Envoy.Extensions.TransportSockets.Tls.V3.Secret;

namespace Legate.Xds;

/// <summary>
/// The SDS subscription of one source (Envoy's SdsApi, one per secret name, sharing the source's
/// stream): asks for the names that TLS contexts use and hands each accepted <c>Secret</c> to the
/// subscribers of that name. Every subscriber compiles an update before any applies it, so an
/// invalid secret (bad PEM, a key that does not match, a secret of the wrong kind) is NACKed
/// with its name and reason and the previous secret stays in force. A secret removed by the
/// server keeps serving its last value (Envoy does not tear TLS contexts down). Stats per secret:
/// <c>sds.&lt;name&gt;.update_*</c>.
/// </summary>
internal sealed class SdsDispatcher : IXdsUpdateHandler
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly StatsStore _stats;
    private readonly TimeProvider _time;

    public SdsDispatcher(StatsStore stats, TimeProvider time)
    {
        _stats = stats;
        _time = time;
    }

    /// <summary>Set right after construction: the subscription this dispatcher serves.</summary>
    public XdsSubscription Subscription { get; set; } = null!;

    /// <summary>Every secret asked for, for config_dump (a warming one has no <see cref="Entry.Config"/> yet).</summary>
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

    /// <summary>Adds a user of secret <see cref="ISdsSecretSubscriber.Name"/>: fed at once when the secret is already here.</summary>
    public void Add(ISdsSecretSubscriber subscriber)
    {
        var name = subscriber.Name;
        Entry entry;
        lock (_lock)
        {
            if (!_entries.TryGetValue(name, out entry!))
            {
                entry = new Entry(name, new XdsStats(_stats, "sds." + name + "."));
                _entries.Add(name, entry);
            }

            lock (entry.Subscribers)
            {
                entry.Subscribers.Add(subscriber);
            }
        }

        if (Subscription.Resources.TryGetValue(name, out var cached))
        {
            try
            {
                subscriber.Apply(subscriber.Compile((Secret)cached.Message));
            }
            catch (ConfigException)
            {
                // The secret in force does not fit this use (a validation context named as a
                // certificate): this user warms until the server sends one that does.
                Arm(subscriber);
            }
        }
        else if (Subscription.Initialized.IsCompleted)
        {
            // The stream is up and answering; a listener must not warm forever on a name the server never sends.
            Arm(subscriber);
        }

        Subscription.AddName(name);
    }

    /// <summary>
    /// Takes a user off its secret; the last user of a name ends the subscription to it (SotW: the
    /// next request omits it; Delta: <c>resource_names_unsubscribe</c>), as Envoy's SdsApi does when
    /// its last TLS context is destroyed.
    /// </summary>
    public void Remove(ISdsSecretSubscriber subscriber)
    {
        var name = subscriber.Name;
        lock (_lock)
        {
            if (!_entries.TryGetValue(name, out var entry))
            {
                return;
            }

            lock (entry.Subscribers)
            {
                if (!entry.Subscribers.Remove(subscriber) || entry.Subscribers.Count > 0)
                {
                    return;
                }
            }

            _entries.Remove(name);
        }

        Subscription.RemoveName(name);

        // A TLS context may have asked for the name again between the two steps: it keeps it.
        bool wantedAgain;
        lock (_lock)
        {
            wantedAgain = _entries.ContainsKey(name);
        }

        if (wantedAgain)
        {
            Subscription.AddName(name);
        }
    }

    public ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken)
    {
        var errors = new List<XdsResourceError>();
        var compiled = new List<(Entry Entry, XdsResource Resource, List<(ISdsSecretSubscriber Subscriber, object Value)> Values)>();
        foreach (var resource in update.Resources)
        {
            if (Find(resource.Name) is not { } entry)
            {
                continue;
            }

            if (resource.IsUnchanged && entry.Config is not null)
            {
                entry.Stats.UpdateAttempt.Inc();
                entry.Stats.Accepted(resource.Version, _time.GetUtcNow());
                continue;
            }

            var values = new List<(ISdsSecretSubscriber, object)>();
            string? failure = null;
            foreach (var subscriber in entry.SubscribersSnapshot())
            {
                try
                {
                    values.Add((subscriber, subscriber.Compile((Secret)resource.Message)));
                }
                catch (ConfigException ex)
                {
                    failure = XdsResourceValidator.Describe(ex.Errors);
                    break;
                }
                catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or ArgumentException or FormatException)
                {
                    failure = "cannot load the secret: " + ex.Message;
                    break;
                }
            }

            if (failure is not null)
            {
                entry.Stats.UpdateAttempt.Inc();
                entry.Stats.UpdateRejected.Inc();
                errors.Add(new XdsResourceError(resource.Name, failure));
                continue;
            }

            compiled.Add((entry, resource, values));
        }

        if (update.IsStateOfWorld && errors.Count > 0)
        {
            return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
        }

        var now = _time.GetUtcNow();
        foreach (var (entry, resource, values) in compiled)
        {
            foreach (var (subscriber, value) in values)
            {
                subscriber.Apply(value);
            }

            entry.Stats.UpdateAttempt.Inc();
            entry.Stats.Accepted(resource.Version, now);
            lock (_lock)
            {
                entry.Config = (Secret)resource.Message;
                entry.Version = resource.Version;
                entry.LastUpdated = now;
            }
        }

        return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
    }

    public void OnInitialFetchTimeout()
    {
        foreach (var entry in Entries)
        {
            entry.Stats.InitFetchTimeout.Inc();
            foreach (var subscriber in entry.SubscribersSnapshot())
            {
                subscriber.EndWarming();
            }
        }
    }

    private void Arm(ISdsSecretSubscriber subscriber)
    {
        if (Subscription.Source.InitialFetchTimeout <= TimeSpan.Zero)
        {
            return;
        }

        ITimer? timer = null;
        timer = _time.CreateTimer(_ =>
        {
            subscriber.EndWarming();
            timer?.Dispose();
        }, null, Subscription.Source.InitialFetchTimeout, Timeout.InfiniteTimeSpan);
    }

    private Entry? Find(string name)
    {
        lock (_lock)
        {
            return _entries.GetValueOrDefault(name);
        }
    }

    /// <summary>One secret name: its users and the last accepted value.</summary>
    internal sealed class Entry(string name, XdsStats stats)
    {
        public string Name { get; } = name;

        public XdsStats Stats { get; } = stats;

        public List<ISdsSecretSubscriber> Subscribers { get; } = [];

        /// <summary>The secret in force, or null while it warms.</summary>
        public Secret? Config { get; set; }

        public string Version { get; set; } = string.Empty;

        public DateTimeOffset LastUpdated { get; set; }

        public ISdsSecretSubscriber[] SubscribersSnapshot()
        {
            lock (Subscribers)
            {
                return Subscribers.ToArray();
            }
        }
    }
}
