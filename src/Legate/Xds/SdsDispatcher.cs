using System.Diagnostics.CodeAnalysis;
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
internal sealed class SdsDispatcher : NamedResourceDispatcher<SdsDispatcher.Entry, List<(ISdsSecretSubscriber Subscriber, object Value)>>
{
    public SdsDispatcher(StatsStore stats, TimeProvider time)
        : base(stats, time)
    {
    }

    /// <summary>Adds a user of secret <see cref="ISdsSecretSubscriber.Name"/>: fed at once when the secret is already here.</summary>
    public void Add(ISdsSecretSubscriber subscriber)
    {
        var name = subscriber.Name;
        Entry entry;
        lock (Gate)
        {
            if (!ByName.TryGetValue(name, out entry!))
            {
                entry = new Entry(name, new XdsStats(StatsStore, "sds." + name + "."));
                ByName.Add(name, entry);
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
        lock (Gate)
        {
            if (!ByName.TryGetValue(name, out var entry))
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

            ByName.Remove(name);
        }

        Subscription.RemoveName(name);

        // A TLS context may have asked for the name again between the two steps: it keeps it.
        bool wantedAgain;
        lock (Gate)
        {
            wantedAgain = ByName.ContainsKey(name);
        }

        if (wantedAgain)
        {
            Subscription.AddName(name);
        }
    }

    public override void OnInitialFetchTimeout()
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

    /// <summary>The secret in force, sent again: counted as an accepted update, nothing reloaded.</summary>
    protected override bool IsInForce(Entry entry, XdsResource resource)
    {
        if (!resource.IsUnchanged || entry.Config is null)
        {
            return false;
        }

        entry.Stats.UpdateAttempt.Inc();
        entry.Stats.Accepted(resource.Version, Time.GetUtcNow());
        return true;
    }

    /// <summary>Loads the secret for every user of the name (each its own kind: certificate, validation context).</summary>
    protected override bool Prepare(Entry entry, XdsResource resource, [MaybeNullWhen(false)] out List<(ISdsSecretSubscriber Subscriber, object Value)> value, [NotNullWhen(false)] out string? error)
    {
        var values = new List<(ISdsSecretSubscriber, object)>();
        error = null;
        foreach (var subscriber in entry.SubscribersSnapshot())
        {
            try
            {
                values.Add((subscriber, subscriber.Compile((Secret)resource.Message)));
            }
            catch (ConfigException ex)
            {
                error = XdsResourceValidator.Describe(ex.Errors);
                break;
            }
            catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or ArgumentException or FormatException)
            {
                error = "cannot load the secret: " + ex.Message;
                break;
            }
        }

        if (error is not null)
        {
            entry.Stats.UpdateAttempt.Inc();
            entry.Stats.UpdateRejected.Inc();
            value = null;
            return false;
        }

        value = values;
        return true;
    }

    protected override void Commit(Entry entry, XdsResource resource, List<(ISdsSecretSubscriber Subscriber, object Value)> value, DateTimeOffset now)
    {
        foreach (var (subscriber, compiled) in value)
        {
            subscriber.Apply(compiled);
        }

        entry.Stats.UpdateAttempt.Inc();
        entry.Stats.Accepted(resource.Version, now);
        lock (Gate)
        {
            entry.Config = (Secret)resource.Message;
            entry.Version = resource.Version;
            entry.LastUpdated = now;
        }
    }

    private void Arm(ISdsSecretSubscriber subscriber)
    {
        if (Subscription.Source.InitialFetchTimeout <= TimeSpan.Zero)
        {
            return;
        }

        ITimer? timer = null;
        timer = Time.CreateTimer(_ =>
        {
            subscriber.EndWarming();
            timer?.Dispose();
        }, null, Subscription.Source.InitialFetchTimeout, Timeout.InfiniteTimeSpan);
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
