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
    private readonly TagExtractors _tags;
    private readonly List<Action> _refreshers = [];

    /// <param name="useAllDefaultTags"><c>stats_config.use_all_default_tags</c>, true unless set false.</param>
    public StatsStore(bool useAllDefaultTags = true) => _tags = new TagExtractors(useAllDefaultTags);

    public Counter Counter(string name) => _counters.GetOrAdd(name, static (n, tags) => new Counter(tags.Extract(n)), _tags);

    public Gauge Gauge(string name, ImportMode importMode) =>
        _gauges.GetOrAdd(name, static (n, s) => new Gauge(s.Tags.Extract(n), s.Mode), (Tags: _tags, Mode: importMode));

    public Histogram Histogram(string name, HistogramUnit unit) =>
        _histograms.GetOrAdd(name, static (n, s) => new Histogram(s.Tags.Extract(n), s.Unit), (Tags: _tags, Unit: unit));

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
    }

    private static T[] Sorted<T>(ConcurrentDictionary<string, T> stats) where T : IStat =>
        stats.Values.OrderBy(s => s.Name.Full, StringComparer.Ordinal).ToArray();
}
