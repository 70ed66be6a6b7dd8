using System.Text.RegularExpressions;

namespace Legate.Stats;

/// <summary>Which stats <c>?type=</c> asks for (Envoy's names; text readouts are not implemented).</summary>
internal enum StatsType
{
    All,
    Counters,
    Gauges,
    Histograms,
}

/// <summary>How <c>/stats</c> prints histograms (<c>?histogram_buckets=</c>).</summary>
internal enum HistogramBucketMode
{
    /// <summary>The quantile summary (the default; <c>summary</c> or <c>none</c>).</summary>
    Summary,

    Cumulative,

    Disjoint,
}

/// <summary>The selection common to every <c>/stats</c> format: <c>?filter=</c>, <c>?usedonly</c>, <c>?type=</c>, <c>?histogram_buckets=</c>.</summary>
internal sealed record StatsQuery(Regex? Filter = null, bool UsedOnly = false, StatsType Type = StatsType.All, HistogramBucketMode Buckets = HistogramBucketMode.Summary)
{
    public static readonly StatsQuery Everything = new();

    public bool Wants(StatsType type) => Type == StatsType.All || Type == type;

    /// <summary>Envoy's filter is an unanchored (search) match on the full name.</summary>
    public bool Includes(IStat stat) =>
        (!UsedOnly || stat.Used) && (Filter is null || Filter.IsMatch(stat.Name.Full));
}
