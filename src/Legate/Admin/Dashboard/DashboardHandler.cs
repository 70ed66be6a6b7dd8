using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Legate.Http;
using Legate.Server;
using Legate.Stats;
using Microsoft.AspNetCore.Http;

namespace Legate.Admin.Dashboard;

/// <summary>
/// The live dashboard on the admin port (beyond Envoy): the home page <c>/</c> (and <c>/dashboard</c>) is one static page
/// embedded in the binary, which polls <c>/dashboard/data</c> — a JSON snapshot of the numbers an
/// operator reads first when something fails: request and 5xx counts per connection manager and
/// per cluster (the page turns them into rates), latency percentiles, active requests and
/// connections, circuit-breaker and ejection gauges, every host's health, and the latest local
/// replies with their response flags and details ("why did I get a 503").
/// </summary>
internal sealed class DashboardHandler
{
    private static readonly Lazy<string> s_page = new(() => ReadResource("Legate.Admin.Dashboard.dashboard.html"));

    private readonly IServerInstance _server;

    public DashboardHandler(IServerInstance server) => _server = server;

    /// <summary>Where the page's list of admin endpoints goes.</summary>
    private const string IndexPlaceholder = "<!--admin-index-->";

    private AdminHandlerTable? _handlers;

    /// <summary><c>/dashboard</c> stays as a second name of the home page (<c>/</c>), which the admin server serves.</summary>
    public void Register(AdminHandlerTable handlers)
    {
        _handlers = handlers;
        handlers.Add("/dashboard", "live dashboard: request and error rates, latency, hosts, recent local replies", false, PageAsync);
        handlers.Add("/dashboard/data", "the dashboard's numbers as JSON", false, DataAsync);
    }

    /// <summary>The page with the admin's list of endpoints (Envoy's home page table) in it.</summary>
    public string Page(string adminIndexHtml) => s_page.Value.Replace(IndexPlaceholder, adminIndexHtml, StringComparison.Ordinal);

    private ValueTask<AdminResponse> PageAsync(HttpContext context) =>
        ValueTask.FromResult(AdminResponse.Html(Page(_handlers?.IndexHtml() ?? string.Empty)));

    private ValueTask<AdminResponse> DataAsync(HttpContext context)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            Write(json);
        }

        return ValueTask.FromResult(AdminResponse.Json(System.Text.Encoding.UTF8.GetString(buffer.ToArray())));
    }

    /// <summary>The snapshot; public for tests.</summary>
    public void Write(Utf8JsonWriter json)
    {
        var stats = _server.Stats;
        stats?.Refresh();
        var counters = stats?.Counters().ToDictionary(c => c.Name.Full, c => c.Value, StringComparer.Ordinal) ?? [];
        var gauges = stats?.Gauges().ToDictionary(g => g.Name.Full, g => g.Value, StringComparer.Ordinal) ?? [];
        var histograms = stats?.Histograms().ToDictionary(h => h.Name.Full, StringComparer.Ordinal) ?? [];

        json.WriteStartObject();
        json.WriteNumber("time_ms", _server.Time.GetUtcNow().ToUnixTimeMilliseconds());
        json.WriteString("state", _server.State.ToString().ToUpperInvariant());
        json.WriteNumber("uptime_s", (long)(_server.Time.GetUtcNow() - _server.StartTime).TotalSeconds);

        json.WriteStartArray("connection_managers");
        const string HttpPrefix = "http.";
        const string RqTotal = ".downstream_rq_total";
        foreach (var name in counters.Keys.Where(n => n.StartsWith(HttpPrefix, StringComparison.Ordinal) && n.EndsWith(RqTotal, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var prefix = name[HttpPrefix.Length..^RqTotal.Length];
            var p = HttpPrefix + prefix + ".";
            json.WriteStartObject();
            json.WriteString("name", prefix);
            json.WriteNumber("rq_total", counters[name]);
            WriteClasses(json, counters, p + "downstream_rq_");
            json.WriteNumber("rq_active", gauges.GetValueOrDefault(p + "downstream_rq_active"));
            json.WriteNumber("cx_active", gauges.GetValueOrDefault(p + "downstream_cx_active"));
            WriteLatency(json, histograms.GetValueOrDefault(p + "downstream_rq_time"));
            json.WriteEndObject();
        }

        json.WriteEndArray();

        json.WriteStartArray("clusters");
        foreach (var cluster in _server.Clusters?.Clusters ?? [])
        {
            var p = "cluster." + cluster.Name + ".";
            json.WriteStartObject();
            json.WriteString("name", cluster.Name);
            json.WriteString("type", cluster.Type.ToString().ToUpperInvariant());
            json.WriteNumber("rq_total", counters.GetValueOrDefault(p + "upstream_rq_total"));
            WriteClasses(json, counters, p + "upstream_rq_");
            json.WriteNumber("rq_active", gauges.GetValueOrDefault(p + "upstream_rq_active"));
            json.WriteNumber("rq_pending_active", gauges.GetValueOrDefault(p + "upstream_rq_pending_active"));
            json.WriteNumber("cx_active", gauges.GetValueOrDefault(p + "upstream_cx_active"));
            json.WriteNumber("cx_connect_fail", counters.GetValueOrDefault(p + "upstream_cx_connect_fail"));
            json.WriteNumber("rq_timeout", counters.GetValueOrDefault(p + "upstream_rq_timeout"));
            json.WriteNumber("rq_overflow", counters.GetValueOrDefault(p + "upstream_rq_pending_overflow"));
            json.WriteNumber("ejections_active", gauges.GetValueOrDefault(p + "outlier_detection.ejections_active"));
            WriteLatency(json, histograms.GetValueOrDefault(p + "upstream_rq_time"));

            // Whatever circuit-breaker gauges the cluster has: open flags and remaining capacity.
            json.WriteStartObject("circuit_breakers");
            var breakers = p + "circuit_breakers.";
            foreach (var (gauge, value) in gauges.Where(g => g.Key.StartsWith(breakers, StringComparison.Ordinal)).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                json.WriteNumber(gauge[breakers.Length..], value);
            }

            json.WriteEndObject();

            json.WriteStartArray("hosts");
            foreach (var host in cluster.PrioritySet.Current.Hosts)
            {
                json.WriteStartObject();
                json.WriteString("address", host.IsLogical && host.Hostname.Length > 0 ? host.Hostname : host.Address.ToString());
                json.WriteString("health", host.Health.ToString().ToLowerInvariant());
                json.WriteString("flags", HealthFlagsText(host));
                json.WriteNumber("priority", host.Priority);
                json.WriteNumber("weight", host.Weight);
                json.WriteNumber("rq_active", host.ActiveRequests);
                json.WriteNumber("rq_total", host.TotalRequests);
                json.WriteNumber("cx_active", host.ActiveConnections);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();

        json.WriteStartArray("local_replies");
        foreach (var reply in _server.RecentLocalReplies?.Snapshot() ?? [])
        {
            json.WriteStartObject();
            json.WriteString("time", reply.Time.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            json.WriteString("connection_manager", reply.StatPrefix);
            json.WriteString("method", reply.Method);
            json.WriteString("authority", reply.Authority);
            json.WriteString("path", reply.Path);
            json.WriteNumber("status", reply.Status);
            json.WriteString("flags", ResponseFlagNames.Format(reply.Flags));
            json.WriteString("flags_long", ResponseFlagNames.FormatLong(reply.Flags));
            json.WriteString("details", reply.Details);
            json.WriteString("route", reply.Route ?? "-");
            json.WriteString("cluster", reply.Cluster ?? "-");
            json.WriteString("host", reply.Host ?? "-");
            json.WriteBoolean("reset", reply.Reset);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteClasses(Utf8JsonWriter json, Dictionary<string, long> counters, string prefix)
    {
        for (var c = 1; c <= 5; c++)
        {
            var klass = c.ToString(CultureInfo.InvariantCulture) + "xx";
            json.WriteNumber("rq_" + klass, counters.GetValueOrDefault(prefix + klass));
        }
    }

    private static void WriteLatency(Utf8JsonWriter json, Histogram? histogram)
    {
        json.WriteStartObject("latency_ms");
        if (histogram is { Count: > 0 })
        {
            json.WriteNumber("p50", Math.Round(histogram.Quantile(50), 1));
            json.WriteNumber("p90", Math.Round(histogram.Quantile(90), 1));
            json.WriteNumber("p99", Math.Round(histogram.Quantile(99), 1));
            json.WriteNumber("count", histogram.Count);
        }

        json.WriteEndObject();
    }

    /// <summary>Envoy's /clusters health_flags spelling: "healthy" or "/failed_active_hc/failed_outlier_check…".</summary>
    private static string HealthFlagsText(Legate.Upstream.Host host)
    {
        var flags = host.HealthFlags;
        if (flags == Legate.Upstream.HostHealthFlags.None)
        {
            return "healthy";
        }

        var text = string.Empty;
        if ((flags & Legate.Upstream.HostHealthFlags.FailedActiveHealthCheck) != 0)
        {
            text += "/failed_active_hc";
        }

        if ((flags & Legate.Upstream.HostHealthFlags.FailedOutlierCheck) != 0)
        {
            text += "/failed_outlier_check";
        }

        if ((flags & Legate.Upstream.HostHealthFlags.FailedEdsHealth) != 0)
        {
            text += "/failed_eds_health";
        }

        if ((flags & Legate.Upstream.HostHealthFlags.DegradedActiveHealthCheck) != 0)
        {
            text += "/degraded_active_hc";
        }

        if ((flags & Legate.Upstream.HostHealthFlags.DegradedEdsHealth) != 0)
        {
            text += "/degraded_eds_health";
        }

        if ((flags & Legate.Upstream.HostHealthFlags.EdsStatusDraining) != 0)
        {
            text += "/eds_status_draining";
        }

        return text;
    }

    private static string ReadResource(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded resource {name} is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
