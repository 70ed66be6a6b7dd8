using System.Collections.Concurrent;

namespace Legate.Stats;

/// <summary>
/// The server's stats, by Envoy name (Envoy's <c>Stats::Store</c>). Components ask for their stats once,
/// when their config is compiled, and keep the returned objects, so the request path never looks a
/// name up. Asking twice for a name returns the same object.
/// </summary>
internal sealed class StatsStore
{
    private readonly ConcurrentDictionary<string, Counter> _counters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Gauge> _gauges = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Histogram> _histograms = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IStat> _rejected = new(StringComparer.Ordinal);
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
    public Counter Counter(string name) => Accepts(name)
        ? _counters.GetOrAdd(name, static (n, tags) => new Counter(tags.Extract(n)), _tags)
        : (Counter)_rejected.GetOrAdd("c:" + name, static (_, n) => new Counter(new StatName(n, n, [])), name);

    public Gauge Gauge(string name, ImportMode importMode) => Accepts(name)
        ? _gauges.GetOrAdd(name, static (n, s) => new Gauge(s.Tags.Extract(n), s.Mode), (Tags: _tags, Mode: importMode))
        : (Gauge)_rejected.GetOrAdd("g:" + name, static (_, s) => new Gauge(new StatName(s.Name, s.Name, []), s.Mode), (Name: name, Mode: importMode));

    public Histogram Histogram(string name, HistogramUnit unit) => Accepts(name)
        ? _histograms.GetOrAdd(name, static (n, s) => new Histogram(s.Tags.Extract(n), s.Unit, s.Options.BucketsFor(n)) { Samples = s.Store._samples }, (Tags: _tags, Unit: unit, Options: _options, Store: this))
        : (Histogram)_rejected.GetOrAdd("h:" + name, static (_, s) => new Histogram(new StatName(s.Name, s.Name, []), s.Unit), (Name: name, Unit: unit));

    private volatile HistogramSampleQueue? _samples;

    /// <summary>
    /// From now on every accepted histogram (existing and future) also queues each sample for the
    /// statsd sinks. Called once, when the sinks are compiled.
    /// </summary>
    public HistogramSampleQueue EnableSampleQueue()
    {
        var queue = _samples ??= new HistogramSampleQueue();
        foreach (var histogram in _histograms.Values)
        {
            histogram.Samples = queue;
        }

        return queue;
    }

    /// <summary>Ends a stats flush interval: every histogram's interval half moves on.</summary>
    public void FlushIntervals()
    {
        foreach (var histogram in _histograms.Values)
        {
            histogram.FlushInterval();
        }
    }

    /// <summary>The lookups by name (admin <c>/stats/recentlookups</c>).</summary>
    public RecentLookups Lookups { get; } = new();

    private bool Accepts(string name)
    {
        // Every lookup by name passes here, so this is where /stats/recentlookups counts them.
        Lookups.Record(name);
        return _options.Accepts is not { } accepts || accepts(name);
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
        foreach (var counter in _counters.Values)
        {
            counter.Reset();
        }

        Lookups.Clear();
    }

    private static T[] Sorted<T>(ConcurrentDictionary<string, T> stats) where T : IStat =>
        stats.Values.OrderBy(s => s.Name.Full, StringComparer.Ordinal).ToArray();
}
