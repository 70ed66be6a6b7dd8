using System.Diagnostics.CodeAnalysis;
using Legate.Stats;

namespace Legate.Xds;

/// <summary>
/// What the SDS and ECDS dispatchers share: one subscription of named resources, one entry per
/// name in use, and an update applied in two phases. Every changed resource is first prepared
/// for all users of its name; only then does any user switch. In state of the world one resource
/// that fails rejects the response with nothing applied (what was prepared is discarded); in
/// Delta the failing resource alone is rejected.
/// </summary>
internal abstract class NamedResourceDispatcher<TEntry, TPrepared> : IXdsUpdateHandler
    where TEntry : class
{
    protected NamedResourceDispatcher(StatsStore stats, TimeProvider time)
    {
        StatsStore = stats;
        Time = time;
    }

    /// <summary>Set right after construction: the subscription this dispatcher serves.</summary>
    public XdsSubscription Subscription { get; set; } = null!;

    /// <summary>Every name in use, for config_dump.</summary>
    public IReadOnlyList<TEntry> Entries
    {
        get
        {
            lock (Gate)
            {
                return ByName.Values.ToArray();
            }
        }
    }

    /// <summary>Guards <see cref="ByName"/> (and what a dispatcher keeps in step with it).</summary>
    protected Lock Gate { get; } = new();

    protected Dictionary<string, TEntry> ByName { get; } = new(StringComparer.Ordinal);

    protected StatsStore StatsStore { get; }

    protected TimeProvider Time { get; }

    public ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken)
    {
        var errors = new List<XdsResourceError>();
        var prepared = new List<(TEntry Entry, XdsResource Resource, TPrepared Value)>();
        foreach (var resource in update.Resources)
        {
            if (Find(resource.Name) is not { } entry || IsInForce(entry, resource))
            {
                continue;
            }

            if (Prepare(entry, resource, out var value, out var error))
            {
                prepared.Add((entry, resource, value));
            }
            else
            {
                errors.Add(new XdsResourceError(resource.Name, error));
            }
        }

        if (update.IsStateOfWorld && errors.Count > 0)
        {
            foreach (var (_, _, value) in prepared)
            {
                Discard(value);
            }

            return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
        }

        var now = Time.GetUtcNow();
        foreach (var (entry, resource, value) in prepared)
        {
            Commit(entry, resource, value, now);
        }

        foreach (var name in update.Removed)
        {
            if (Find(name) is { } entry)
            {
                OnRemoved(entry);
            }
        }

        return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
    }

    public abstract void OnInitialFetchTimeout();

    protected TEntry? Find(string name)
    {
        lock (Gate)
        {
            return ByName.GetValueOrDefault(name);
        }
    }

    /// <summary>True when <paramref name="resource"/> is what <paramref name="entry"/> has in force: nothing to prepare (the dispatcher may count it).</summary>
    protected abstract bool IsInForce(TEntry entry, XdsResource resource);

    /// <summary>Prepares <paramref name="resource"/> for every user of <paramref name="entry"/>; false with the reason (counted as rejected, and what was prepared released).</summary>
    protected abstract bool Prepare(TEntry entry, XdsResource resource, [MaybeNullWhen(false)] out TPrepared value, [NotNullWhen(false)] out string? error);

    /// <summary>A prepared value of a rejected state-of-the-world response, never committed.</summary>
    protected virtual void Discard(TPrepared value)
    {
    }

    /// <summary>Switches every user of <paramref name="entry"/> to the prepared value and counts the update.</summary>
    protected abstract void Commit(TEntry entry, XdsResource resource, TPrepared value, DateTimeOffset now);

    /// <summary>The server removed the resource (Delta's removed_resources; a named type's SotW keeps it).</summary>
    protected virtual void OnRemoved(TEntry entry)
    {
    }
}
