using System.Collections.Concurrent;

namespace Legate.Stats;

/// <summary>
/// The server's stats, by Envoy name (Envoy's <c>Stats::Store</c>). Components ask for their stats once,
/// when their config is compiled, and keep the returned objects, so the request path never looks a
/// name up. Asking twice for a name returns the same object.
/// </summary>
internal sealed class StatsStore
{
    // Keyed by the name's two parts, compared as the joined text (StatKey): no string per stat.
    // Plain dictionaries under one lock, taken when a stat is created or listed, never when one
    // is updated: their entries are structs in one array, where a concurrent dictionary has a node
    // object per stat and makes them all anew each time it grows (hundreds of thousands with
    // thousands of CDS clusters).
    private readonly Lock _lock = new();
    private readonly Dictionary<StatKey, Counter> _counters = [];
    private readonly Dictionary<StatKey, Gauge> _gauges = [];
    private readonly Dictionary<StatKey, Histogram> _histograms = [];
    private readonly ConcurrentDictionary<string, IStat> _rejected = new(StringComparer.Ordinal);
    private readonly CounterCells _cells = new();
    private readonly TagExtractors _tags;
    private readonly StatsOptions _options;
    private readonly List<Action> _refreshers = [];

    /// <param name="useAllDefaultTags"><c>stats_config.use_all_default_tags</c>, true unless set false.</param>
    public StatsStore(bool useAllDefaultTags = true)
        : this(new StatsOptions { UseAllDefaultTags = useAllDefaultTags })
    {
    }

    /// <param name="options">The compiled <c>stats_config</c>.</param>
    public StatsStore(StatsOptions options)
    {
        _options = options;
        _tags = new TagExtractors(options);
    }

    /// <summary>
    /// The counter <paramref name="name"/>. A name <c>stats_matcher</c> rejects gets a counter that
    /// is never listed (Envoy's null stat): callers update it the same way, at the same cost.
    /// </summary>
    public Counter Counter(string name) => Counter("", name);

    /// <summary>
    /// The counter <paramref name="prefix"/> + <paramref name="suffix"/> (the same counter as asked by
    /// the joined name). Components with a scope (a cluster's <c>cluster.NAME.</c>) ask this way: the
    /// stat then keeps the two shared strings instead of a string of its own.
    /// </summary>
    public Counter Counter(string prefix, string suffix)
    {
        var key = new StatKey(prefix, suffix);
        return Accepts(key)
            ? GetOrAdd(_counters, key, static (k, s) => new Counter(s._tags.Extract(k.Prefix, k.Suffix), s._cells), this)
            : (Counter)_rejected.GetOrAdd("c:" + key.Join(), static (_, s) => new Counter(Whole(s.Key.Join()), s.Store._cells), (Key: key, Store: this));
    }

    public Gauge Gauge(string name, ImportMode importMode) => Gauge("", name, importMode);

    public Gauge Gauge(string prefix, string suffix, ImportMode importMode)
    {
        var key = new StatKey(prefix, suffix);
        return Accepts(key)
            ? GetOrAdd(_gauges, key, static (k, s) => new Gauge(s.Tags.Extract(k.Prefix, k.Suffix), s.Mode), (Tags: _tags, Mode: importMode))
            : (Gauge)_rejected.GetOrAdd("g:" + key.Join(), static (_, s) => new Gauge(Whole(s.Key.Join()), s.Mode), (Key: key, Mode: importMode));
    }

    public Histogram Histogram(string name, HistogramUnit unit) => Histogram("", name, unit);

    public Histogram Histogram(string prefix, string suffix, HistogramUnit unit)
    {
        var key = new StatKey(prefix, suffix);
        return Accepts(key)
            ? GetOrAdd(_histograms, key, static (k, s) => new Histogram(s.Tags.Extract(k.Prefix, k.Suffix), s.Unit, s.Options.BucketsFor(k.Join())) { Samples = s.Store._samples }, (Tags: _tags, Unit: unit, Options: _options, Store: this))
            : (Histogram)_rejected.GetOrAdd("h:" + key.Join(), static (_, s) => new Histogram(Whole(s.Key.Join()), s.Unit), (Key: key, Unit: unit));
    }

    private T GetOrAdd<T, TArg>(Dictionary<StatKey, T> stats, StatKey key, Func<StatKey, TArg, T> create, TArg arg)
        where T : class
    {
        lock (_lock)
        {
            ref var slot = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(stats, key, out var exists);
            if (!exists)
            {
                try
                {
                    slot = create(key, arg);
                }
                catch
                {
                    stats.Remove(key);
                    throw;
                }
            }

            return slot!;
        }
    }

    // A rejected stat's name: never listed, so no tags.
    private static StatName Whole(string name) => new("", name, name, []);

    private volatile HistogramSampleQueue? _samples;

    /// <summary>
    /// From now on every accepted histogram (existing and future) also queues each sample for the
    /// statsd sinks. Called once, when the sinks are compiled.
    /// </summary>
    public HistogramSampleQueue EnableSampleQueue()
    {
        lock (_lock)
        {
            // Under the lock: a histogram created meanwhile reads _samples under it too.
            var queue = _samples ??= new HistogramSampleQueue();
            foreach (var histogram in _histograms.Values)
            {
                histogram.Samples = queue;
            }

            return queue;
        }
    }

    /// <summary>Ends a stats flush interval: every histogram's interval half moves on.</summary>
    public void FlushIntervals()
    {
        foreach (var histogram in Snapshot(_histograms))
        {
            histogram.FlushInterval();
        }
    }

    /// <summary>The lookups by name (admin <c>/stats/recentlookups</c>).</summary>
    public RecentLookups Lookups { get; } = new();

    private bool Accepts(StatKey key)
    {
        // Every lookup by name passes here, so this is where /stats/recentlookups counts them.
        Lookups.Record(key);
        return _options.Accepts is not { } accepts || accepts(key.Join());
    }

    /// <summary>
    /// Registers an action run before every read of the whole store, for gauges that are cheaper to
    /// compute when asked (<c>server.uptime</c>, <c>server.memory_allocated</c>) than to keep current.
    /// </summary>
    public void OnRefresh(Action refresh)
    {
        lock (_refreshers)
        {
            _refreshers.Add(refresh);
        }
    }

    /// <summary>
    /// Drops the stats of the scopes <paramref name="root"/> + name + "." for each name in
    /// <paramref name="removed"/> (Envoy frees a scope's stats with it: the <c>cluster.NAME.*</c>
    /// stats of a cluster CDS removed leave <c>/stats</c>). Names may nest (<c>cluster.a.</c> is a
    /// prefix of <c>cluster.a.b.</c>): a stat belongs to the longest name of
    /// <paramref name="removed"/> and <paramref name="live"/> that prefixes it, so a live cluster
    /// <c>a.b</c> keeps its stats when <c>a</c> goes. A component still holding a dropped stat may
    /// update it, unlisted; asking for the name again makes a new stat from zero. Returns how many
    /// stats were dropped. One pass over the store, under its lock (called per CDS update that
    /// removes clusters, never per request).
    /// </summary>
    public int RemoveScopes(string root, HashSet<string> removed, HashSet<string> live)
    {
        if (removed.Count == 0)
        {
            return 0;
        }

        // Looked up by the name's characters: no string per candidate (the store may hold 100,000s of stats).
        var removedNames = removed.GetAlternateLookup<ReadOnlySpan<char>>();
        var liveNames = live.GetAlternateLookup<ReadOnlySpan<char>>();

        lock (_lock)
        {
            return Drop(_counters) + Drop(_gauges) + Drop(_histograms);
        }

        int Drop<T>(Dictionary<StatKey, T> stats)
        {
            List<StatKey>? gone = null;
            Span<char> buffer = stackalloc char[256];
            foreach (var key in stats.Keys)
            {
                var text = key.Length <= buffer.Length ? buffer[..key.Length] : new char[key.Length];
                key.CopyTo(text);
                if (OwnedByRemoved(text))
                {
                    (gone ??= []).Add(key);
                }
            }

            foreach (var key in gone ?? [])
            {
                stats.Remove(key);
            }

            return gone?.Count ?? 0;
        }

        // The longest known name N with root + N + "." a prefix of the stat's name.
        bool OwnedByRemoved(ReadOnlySpan<char> name)
        {
            if (!name.StartsWith(root, StringComparison.Ordinal))
            {
                return false;
            }

            var owned = false;
            var rest = name[root.Length..];
            var end = 0;
            while (rest[end..].IndexOf('.') is var dot && dot >= 0)
            {
                end += dot;
                var candidate = rest[..end];
                if (removedNames.Contains(candidate))
                {
                    owned = true;
                }
                else if (liveNames.Contains(candidate))
                {
                    owned = false;
                }

                end++;
            }

            return owned;
        }
    }

    /// <summary>The counters, sorted by name (call <see cref="Refresh"/> first for current server gauges).</summary>
    public IReadOnlyList<Counter> Counters() => Sorted(_counters);

    public IReadOnlyList<Gauge> Gauges() => Sorted(_gauges);

    public IReadOnlyList<Histogram> Histograms() => Sorted(_histograms);

    /// <summary>Runs the refresh actions; the admin calls this once per request.</summary>
    public void Refresh()
    {
        Action[] refreshers;
        lock (_refreshers)
        {
            refreshers = [.. _refreshers];
        }

        foreach (var refresh in refreshers)
        {
            refresh();
        }
    }

    /// <summary><c>/reset_counters</c>: every counter back to zero (gauges and histograms are untouched, as in Envoy).</summary>
    public void ResetCounters()
    {
        foreach (var counter in Snapshot(_counters))
        {
            counter.Reset();
        }

        Lookups.Clear();
    }

    private T[] Sorted<T>(Dictionary<StatKey, T> stats) where T : IStat =>
        Snapshot(stats).OrderBy(s => s.Name.Full, StringComparer.Ordinal).ToArray();

    /// <summary>The stats of one kind as they are now, to go through without holding the lock.</summary>
    private T[] Snapshot<T>(Dictionary<StatKey, T> stats)
    {
        lock (_lock)
        {
            return [.. stats.Values];
        }
    }
}
