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

/// <summary>The selection common to every <c>/stats</c> format: <c>?filter=</c>, <c>?usedonly</c>, <c>?type=</c>.</summary>
internal sealed record StatsQuery(Regex? Filter = null, bool UsedOnly = false, StatsType Type = StatsType.All)
{
    public static readonly StatsQuery Everything = new();

    public bool Wants(StatsType type) => Type == StatsType.All || Type == type;

    /// <summary>Envoy's filter is an unanchored (search) match on the full name.</summary>
    public bool Includes(IStat stat) =>
        (!UsedOnly || stat.Used) && (Filter is null || Filter.IsMatch(stat.Name.Full));
}
