using System.Text.RegularExpressions;
using Legate.Admin;
using Microsoft.AspNetCore.Http;

namespace Legate.Stats;

/// <summary>The admin's <c>/stats</c>, <c>/stats/prometheus</c>, <c>/reset_counters</c> and <c>/stats/recentlookups</c> (with clear, enable, disable).</summary>
internal sealed class StatsAdminHandler
{
    public const string StatsHelp = "print server stats";
    public const string PrometheusHelp = "print server stats in prometheus format";
    public const string ResetCountersHelp = "reset all counters to zero";

    private readonly StatsStore _store;

    public StatsAdminHandler(StatsStore store) => _store = store;

    /// <summary>Registers the three endpoints on the admin's table.</summary>
    public void Register(AdminHandlerTable handlers)
    {
        handlers.Add("/stats", StatsHelp, false, StatsAsync);
        handlers.Add("/stats/prometheus", PrometheusHelp, false, PrometheusAsync);
        handlers.Add("/reset_counters", ResetCountersHelp, true, ResetCountersAsync);
        handlers.Add("/stats/recentlookups", "Show recent stat-name lookups", false, _ => Answer(_store.Lookups.Render()));
        handlers.Add("/stats/recentlookups/clear", "clear list of stat-name lookups and counter", true, _ => Answer(_store.Lookups.Clear));
        handlers.Add("/stats/recentlookups/disable", "disable recording of reset stat-name lookup names", true, _ => Answer(() => _store.Lookups.SetCapacity(0)));
        handlers.Add("/stats/recentlookups/enable", "enable recording of reset stat-name lookup names", true, _ => Answer(() => _store.Lookups.SetCapacity(RecentLookups.EnabledCapacity)));
    }

    private static ValueTask<AdminResponse> Answer(string text) => ValueTask.FromResult(AdminResponse.Text(text));

    private static ValueTask<AdminResponse> Answer(Action action)
    {
        action();
        return ValueTask.FromResult(AdminResponse.Text("OK\n"));
    }

    /// <summary><c>?format=text|json|prometheus</c> (text by default) plus the common selection.</summary>
    public ValueTask<AdminResponse> StatsAsync(HttpContext context)
    {
        var format = context.Request.Query["format"].ToString();
        return ValueTask.FromResult(format switch
        {
            "" or "text" => Render(context, StatsRenderer.Text, AdminResponse.Text),
            "json" => Render(context, StatsRenderer.Json, AdminResponse.Json),
            "prometheus" => Render(context, StatsRenderer.Prometheus, AdminResponse.Text),
            _ => AdminResponse.Text("usage: /stats?format=(json|prometheus|text)\n", StatusCodes.Status400BadRequest),
        });
    }

    public ValueTask<AdminResponse> PrometheusAsync(HttpContext context) =>
        ValueTask.FromResult(Render(context, StatsRenderer.Prometheus, AdminResponse.Text));

    public ValueTask<AdminResponse> ResetCountersAsync(HttpContext context)
    {
        _store.ResetCounters();
        return ValueTask.FromResult(AdminResponse.Text("OK\n"));
    }

    /// <summary>Parses the query; a bad filter or type is a 400 with Envoy's reason.</summary>
    public static bool TryParseQuery(IQueryCollection query, out StatsQuery result, out string error)
    {
        result = StatsQuery.Everything;
        error = "";
        Regex? filter = null;
        if (query.TryGetValue("filter", out var filterText) && filterText.ToString().Length > 0)
        {
            try
            {
                // A timeout bounds the cost of a pathological pattern, which RE2 in Envoy rules out by design.
                filter = new Regex(filterText.ToString(), RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException)
            {
                error = "Invalid re2 regex";
                return false;
            }
        }

        var type = StatsType.All;
        if (query.TryGetValue("type", out var typeText))
        {
            switch (typeText.ToString())
            {
                case "All": type = StatsType.All; break;
                case "Counters": type = StatsType.Counters; break;
                case "Gauges": type = StatsType.Gauges; break;
                case "Histograms": type = StatsType.Histograms; break;
                default:
                    error = "invalid &type= param";
                    return false;
            }
        }

        var buckets = HistogramBucketMode.Summary;
        if (query.TryGetValue("histogram_buckets", out var bucketsText))
        {
            switch (bucketsText.ToString())
            {
                case "" or "none" or "summary": buckets = HistogramBucketMode.Summary; break;
                case "cumulative": buckets = HistogramBucketMode.Cumulative; break;
                case "disjoint": buckets = HistogramBucketMode.Disjoint; break;
                default:
                    error = "usage: /stats?histogram_buckets=(cumulative|disjoint|summary|none)";
                    return false;
            }
        }

        result = new StatsQuery(filter, query.ContainsKey("usedonly"), type, buckets);
        return true;
    }

    private AdminResponse Render(HttpContext context, Func<StatsStore, StatsQuery, string> render, Func<string, int, AdminResponse> respond)
    {
        if (!TryParseQuery(context.Request.Query, out var query, out var error))
        {
            return AdminResponse.Text(error + "\n", StatusCodes.Status400BadRequest);
        }

        _store.Refresh();
        try
        {
            return respond(render(_store, query), StatusCodes.Status200OK);
        }
        catch (RegexMatchTimeoutException)
        {
            return AdminResponse.Text("filter regex timed out\n", StatusCodes.Status400BadRequest);
        }
    }
}
