namespace Legate.Stats.Sinks;

/// <summary>A stats sink (Envoy's <c>Stats::Sink</c>): receives a snapshot at every stats flush.</summary>
internal interface IStatsSink : IAsyncDisposable
{
    /// <summary>Sends the snapshot; failures are the sink's to count and log, never thrown.</summary>
    ValueTask FlushAsync(StatsSnapshot snapshot, CancellationToken cancellationToken);
}

/// <summary>
/// What one flush hands the sinks: used counters with their change since the last flush, used gauges,
/// and every histogram sample recorded since the last flush (when a sink wants them).
/// </summary>
internal sealed record StatsSnapshot(IReadOnlyList<(Counter Counter, long Delta)> Counters, IReadOnlyList<Gauge> Gauges)
{
    public IReadOnlyList<(Histogram Histogram, long Value)> Samples { get; init; } = [];
}
