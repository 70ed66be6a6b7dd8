using Google.Protobuf;

namespace Legate.Xds;

/// <summary>A dynamic resource in force or warming (a CDS cluster, an LDS listener), as config_dump shows it.</summary>
internal interface IXdsDynamicEntry
{
    string Name { get; }

    /// <summary>The resource as received (compared to tell an unchanged resource).</summary>
    IMessage Message { get; }

    /// <summary>The version it was built from (a response repeating it unchanged does not move it, as in Envoy).</summary>
    string Version { get; }
}

/// <summary>One version of a resource on its way into service, cancelled when superseded or removed.</summary>
internal interface IXdsWarming<out TEntry>
{
    TEntry Entry { get; }

    CancellationTokenSource Cancel { get; }
}

/// <summary>
/// The bookkeeping CDS and LDS share (Envoy's warming in the cluster and listener managers): the
/// resources in force and the ones warming, by name, under one lock; a newer version cancels the
/// one still warming; unchanged resources keep the version they were built from; the first update's
/// warm-up completes <see cref="FirstWarm"/> (or the initial fetch timeout does). What warming
/// means (endpoints, route tables, secrets) and what applying means stay with each API.
/// </summary>
internal sealed class XdsWarmingTable<TEntry, TWarming>
    where TEntry : class, IXdsDynamicEntry
    where TWarming : class, IXdsWarming<TEntry>
{
    private readonly Dictionary<string, TEntry> _active = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TWarming> _warming = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _firstWarm = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Guards both tables; an API may hold it to keep its own state in step with them.</summary>
    public Lock Gate { get; } = new();

    /// <summary>Completes when the resources of the first update have warmed, or at the initial fetch timeout.</summary>
    public Task FirstWarm => _firstWarm.Task;

    public TEntry[] Active
    {
        get
        {
            lock (Gate)
            {
                return _active.Values.ToArray();
            }
        }
    }

    public TWarming[] Warming
    {
        get
        {
            lock (Gate)
            {
                return _warming.Values.ToArray();
            }
        }
    }

    /// <summary>How many resources warm and how many are in force.</summary>
    public (int Warming, int Active) Counts
    {
        get
        {
            lock (Gate)
            {
                return (_warming.Count, _active.Count);
            }
        }
    }

    /// <summary>The version warming, else the one in force, has this very content: nothing to rebuild.</summary>
    public bool IsUnchanged(string name, IMessage message)
    {
        lock (Gate)
        {
            var current = _warming.TryGetValue(name, out var warming) ? warming.Entry : _active.GetValueOrDefault(name);
            return current is not null && current.Message.Equals(message);
        }
    }

    /// <summary>Neither warming nor in force: an add rather than a modify.</summary>
    public bool IsNew(string name)
    {
        lock (Gate)
        {
            return !_active.ContainsKey(name) && !_warming.ContainsKey(name);
        }
    }

    /// <summary><paramref name="warming"/> starts warming; a version of the same name still warming is cancelled (it never comes into force).</summary>
    public void StartWarming(TWarming warming)
    {
        lock (Gate)
        {
            if (_warming.Remove(warming.Entry.Name, out var previous))
            {
                previous.Cancel.Cancel();
            }

            _warming[warming.Entry.Name] = warming;
        }
    }

    /// <summary>Takes <paramref name="warming"/> off the warming table; false when a newer version or a removal replaced it there. Call under <see cref="Gate"/>.</summary>
    public bool EndWarming(TWarming warming)
    {
        if (!_warming.TryGetValue(warming.Entry.Name, out var current) || !ReferenceEquals(current, warming))
        {
            return false;
        }

        _warming.Remove(warming.Entry.Name);
        return true;
    }

    /// <summary>Takes whatever version of <paramref name="name"/> warms off the table, without cancelling it. Call under <see cref="Gate"/>.</summary>
    public void DropWarming(string name) => _warming.Remove(name);

    /// <summary>Puts <paramref name="entry"/> in force. Call under <see cref="Gate"/>.</summary>
    public void Activate(TEntry entry) => _active[entry.Name] = entry;

    /// <summary>Removes a resource: its warming version is cancelled; returns whether a version was in force. Call under <see cref="Gate"/>.</summary>
    public bool Remove(string name)
    {
        if (_warming.Remove(name, out var warming))
        {
            warming.Cancel.Cancel();
        }

        return _active.Remove(name);
    }

    /// <summary>The first update's warm-ups (later calls do nothing once it completed).</summary>
    public void OnWarms(List<Task> warms)
    {
        if (!_firstWarm.Task.IsCompleted)
        {
            Task.WhenAll(warms).ContinueWith(_ => _firstWarm.TrySetResult(), TaskScheduler.Default);
        }
    }

    /// <summary>The initial fetch timeout: init goes on without the first update.</summary>
    public void OnInitialFetchTimeout() => _firstWarm.TrySetResult();
}
