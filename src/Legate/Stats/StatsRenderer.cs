using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Legate.Stats;

/// <summary>The three <c>/stats</c> output formats: Envoy's text, JSON and Prometheus exposition 0.0.4.</summary>
internal static class StatsRenderer
{
    /// <summary>
    /// <c>name: value</c> lines, counters and gauges sorted together by name, then histograms as Envoy's
    /// quantile summary <c>P0(interval,cumulative) …</c>, where the interval half is the last stats
    /// flush interval (<c>nan</c> when it had no samples, as Envoy). With <c>?histogram_buckets=</c>
    /// each histogram prints its buckets instead: <c>B&lt;bound&gt;(interval,cumulative)</c>, counts
    /// added up to the bound (<c>cumulative</c>) or per bucket (<c>disjoint</c>).
    /// </summary>
    public static string Text(StatsStore store, StatsQuery query)
    {
        var sb = new StringBuilder();
        foreach (var (name, value) in Scalars(store, query))
        {
            sb.Append(name).Append(": ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        foreach (var histogram in Histograms(store, query))
        {
            sb.Append(histogram.Name.Full).Append(": ");
            if (query.Buckets != HistogramBucketMode.Summary)
            {
                AppendBuckets(sb, histogram, query.Buckets == HistogramBucketMode.Cumulative);
                continue;
            }

            if (histogram.Count == 0)
            {
                sb.Append("No recorded values\n");
                continue;
            }

            var first = true;
            foreach (var q in Histogram.SupportedQuantiles)
            {
                sb.Append(first ? "" : " ").Append('P').Append(Number(q))
                  .Append('(').Append(Number(histogram.IntervalQuantile(q))).Append(',').Append(Number(histogram.Quantile(q))).Append(')');
                first = false;
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }

    private static void AppendBuckets(StringBuilder sb, Histogram histogram, bool cumulative)
    {
        var total = histogram.BucketCounts();
        var interval = histogram.IntervalBucketCounts();
        long runningTotal = 0, runningInterval = 0;
        var bounds = histogram.Bounds;
        for (var i = 0; i < bounds.Count; i++)
        {
            runningTotal = cumulative ? runningTotal + total[i] : total[i];
            runningInterval = cumulative ? runningInterval + interval[i] : interval[i];
            sb.Append(i == 0 ? "" : " ").Append('B').Append(Number(bounds[i]))
              .Append('(').Append(runningInterval.ToString(CultureInfo.InvariantCulture)).Append(',')
              .Append(runningTotal.ToString(CultureInfo.InvariantCulture)).Append(')');
        }

        sb.Append('\n');
    }

    /// <summary>
    /// <c>{"stats":[{"name":..,"value":..},...,{"histograms":{"supported_quantiles":[..],"computed_quantiles":[..]}}]}</c>,
    /// the histograms element present only when a histogram is selected, as in Envoy.
    /// </summary>
    public static string Json(StatsStore store, StatsQuery query)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("stats");
            foreach (var (name, value) in Scalars(store, query))
            {
                json.WriteStartObject();
                json.WriteString("name", name);
                json.WriteNumber("value", value);
                json.WriteEndObject();
            }

            var histograms = Histograms(store, query).ToArray();
            if (histograms.Length > 0)
            {
                json.WriteStartObject();
                json.WriteStartObject("histograms");
                json.WriteStartArray("supported_quantiles");
                foreach (var q in Histogram.SupportedQuantiles)
                {
                    json.WriteNumberValue(q);
                }

                json.WriteEndArray();
                json.WriteStartArray("computed_quantiles");
                foreach (var histogram in histograms)
                {
                    json.WriteStartObject();
                    json.WriteString("name", histogram.Name.Full);
                    json.WriteStartArray("values");
                    foreach (var q in Histogram.SupportedQuantiles)
                    {
                        // NaN has no JSON form: null, as in Envoy.
                        json.WriteStartObject();
                        var interval = histogram.IntervalQuantile(q);
                        if (double.IsNaN(interval))
                        {
                            json.WriteNull("interval");
                        }
                        else
                        {
                            json.WriteNumber("interval", interval);
                        }

                        var cumulative = histogram.Quantile(q);
                        if (double.IsNaN(cumulative))
                        {
                            json.WriteNull("cumulative");
                        }
                        else
                        {
                            json.WriteNumber("cumulative", cumulative);
                        }

                        json.WriteEndObject();
                    }

                    json.WriteEndArray();
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// Prometheus text exposition 0.0.4: per metric family (tag-extracted name, <c>envoy_</c>-prefixed,
    /// sanitized) one <c># TYPE</c> line then one line per stat with its tags as labels. Counters, then
    /// gauges, then histograms, each sorted by family name; an untagged stat keeps Envoy's <c>{}</c>.
    /// </summary>
    public static string Prometheus(StatsStore store, StatsQuery query)
    {
        var sb = new StringBuilder();
        if (query.Wants(StatsType.Counters))
        {
            Families(sb, store.Counters().Where(query.Includes), "counter", (c, family, sb) => Series(sb, family, c.Name, c.Value));
        }

        if (query.Wants(StatsType.Gauges))
        {
            Families(sb, store.Gauges().Where(query.Includes), "gauge", (g, family, sb) => Series(sb, family, g.Name, g.Value));
        }

        if (query.Wants(StatsType.Histograms))
        {
            Families(sb, store.Histograms().Where(query.Includes), "histogram", HistogramSeries);
        }

        return sb.ToString();
    }

    /// <summary>Envoy's Prometheus name: non-<c>[a-zA-Z0-9_]</c> characters become <c>_</c>.</summary>
    public static string Sanitize(string name)
    {
        var chars = name.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!char.IsAsciiLetterOrDigit(chars[i]) && chars[i] != '_')
            {
                chars[i] = '_';
            }
        }

        return new string(chars);
    }

    private static void Families<T>(StringBuilder sb, IEnumerable<T> stats, string type, Action<T, string, StringBuilder> series)
        where T : IStat
    {
        var families = stats
            .GroupBy(s => "envoy_" + Sanitize(s.Name.TagExtracted), StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal);
        foreach (var family in families)
        {
            sb.Append("# TYPE ").Append(family.Key).Append(' ').Append(type).Append('\n');
            foreach (var stat in family.OrderBy(s => s.Name.Full, StringComparer.Ordinal))
            {
                series(stat, family.Key, sb);
            }
        }
    }

    private static void Series(StringBuilder sb, string family, StatName name, long value) =>
        sb.Append(family).Append('{').Append(Labels(name)).Append("} ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');

    private static void HistogramSeries(Histogram histogram, string family, StringBuilder sb)
    {
        var labels = Labels(histogram.Name);
        var leSeparator = labels.Length > 0 ? "," : "";
        var counts = histogram.BucketCounts();
        long cumulative = 0;
        var bounds = histogram.Bounds;
        for (var i = 0; i < bounds.Count; i++)
        {
            cumulative += counts[i];
            sb.Append(family).Append("_bucket{").Append(labels).Append(leSeparator)
              .Append("le=\"").Append(Number(bounds[i])).Append("\"} ")
              .Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        cumulative += counts[^1];
        sb.Append(family).Append("_bucket{").Append(labels).Append(leSeparator).Append("le=\"+Inf\"} ")
          .Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append(family).Append("_sum{").Append(labels).Append("} ")
          .Append(histogram.Sum.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append(family).Append("_count{").Append(labels).Append("} ")
          .Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    private static string Labels(StatName name)
    {
        var sb = new StringBuilder();
        foreach (var tag in name.Tags)
        {
            if (sb.Length > 0)
            {
                sb.Append(',');
            }

            sb.Append(Sanitize(tag.Name)).Append("=\"");
            foreach (var c in tag.Value)
            {
                // The exposition format's three label-value escapes.
                sb.Append(c switch { '\\' => @"\\", '"' => "\\\"", '\n' => @"\n", _ => c.ToString() });
            }

            sb.Append('"');
        }

        return sb.ToString();
    }

    /// <summary>Counters and gauges, merged and sorted by name as Envoy's text and JSON show them.</summary>
    private static IEnumerable<(string Name, long Value)> Scalars(StatsStore store, StatsQuery query)
    {
        var scalars = new List<(string Name, long Value)>();
        if (query.Wants(StatsType.Counters))
        {
            scalars.AddRange(store.Counters().Where(query.Includes).Select(c => (c.Name.Full, c.Value)));
        }

        if (query.Wants(StatsType.Gauges))
        {
            scalars.AddRange(store.Gauges().Where(query.Includes).Select(g => (g.Name.Full, g.Value)));
        }

        return scalars.OrderBy(s => s.Name, StringComparer.Ordinal);
    }

    private static IEnumerable<Histogram> Histograms(StatsStore store, StatsQuery query) =>
        query.Wants(StatsType.Histograms) ? store.Histograms().Where(query.Includes) : [];

    private static string Number(double value) =>
        double.IsNaN(value) ? "nan" : value.ToString("R", CultureInfo.InvariantCulture);
}
