using System.Diagnostics;
using System.Net;
using Legate.Admin;
using Legate.Stats;
using Legate.Tests.Harness;
using Microsoft.AspNetCore.Http;

namespace Legate.Tests.Stats;

public sealed class StatsAdminTests
{
    private static DefaultHttpContext Request(string query)
    {
        var context = new DefaultHttpContext();
        context.Request.QueryString = new QueryString(query);
        return context;
    }

    private static (StatsStore Store, StatsAdminHandler Handler) Create()
    {
        var store = new StatsStore();
        store.Counter("cluster.foo.upstream_rq_200").Add(3);
        store.Counter("cluster.foo.upstream_rq_404");
        store.Gauge("server.live", ImportMode.NeverImport).Set(1);
        return (store, new StatsAdminHandler(store));
    }

    [Fact]
    public async Task FormatsFilterUsedOnlyAndType()
    {
        var (_, handler) = Create();

        var text = await handler.StatsAsync(Request(""));
        var json = await handler.StatsAsync(Request("?format=json&filter=live"));
        var prometheus = await handler.StatsAsync(Request("?format=prometheus&usedonly&type=Counters"));

        Assert.Equal(AdminResponse.TextContentType, text.ContentType);
        Assert.Equal("cluster.foo.upstream_rq_200: 3\ncluster.foo.upstream_rq_404: 0\nserver.live: 1\n", text.Body);
        Assert.Equal(AdminResponse.JsonContentType, json.ContentType);
        Assert.Equal("{\"stats\":[{\"name\":\"server.live\",\"value\":1}]}", json.Body);
        Assert.Equal(
            "# TYPE envoy_cluster_upstream_rq counter\nenvoy_cluster_upstream_rq{envoy_cluster_name=\"foo\",envoy_response_code=\"200\"} 3\n",
            prometheus.Body);
    }

    [Theory]
    [InlineData("?filter=(", "Invalid re2 regex\n")]
    [InlineData("?type=Bogus", "invalid &type= param\n")]
    [InlineData("?format=xml", "usage: /stats?format=(json|prometheus|text)\n")]
    public async Task BadParametersAre400(string query, string body)
    {
        var response = await Create().Handler.StatsAsync(Request(query));

        Assert.Equal(400, response.Status);
        Assert.Equal(body, response.Body);
    }

    [Fact]
    public async Task ResetCountersZeroesCounters()
    {
        var (store, handler) = Create();

        var response = await handler.ResetCountersAsync(Request(""));

        Assert.Equal("OK\n", response.Body);
        Assert.Equal(0, store.Counter("cluster.foo.upstream_rq_200").Value);
        Assert.Equal(1, store.Gauge("server.live", ImportMode.NeverImport).Value);
    }

    [Fact]
    public async Task EndToEndThroughTheAdmin()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        var text = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats"));
        var prometheus = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats/prometheus"));
        var viaFormat = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats?format=prometheus&filter=server%5C.state"));
        var resetByGet = await legate.Http.GetAsync(new Uri(legate.AdminUri, "reset_counters"));
        var reset = await legate.Http.PostAsync(new Uri(legate.AdminUri, "reset_counters"), null);
        var help = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "help"));

        Assert.Contains("server.live: 1\n", text, StringComparison.Ordinal);
        Assert.Contains("server.state: 0\n", text, StringComparison.Ordinal);
        Assert.Contains("\n# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n", prometheus, StringComparison.Ordinal);
        Assert.Equal("# TYPE envoy_server_state gauge\nenvoy_server_state{} 0\n", viaFormat);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, resetByGet.StatusCode);
        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        Assert.Contains("  /stats: print server stats\n", help, StringComparison.Ordinal);
        Assert.Contains("  /stats/prometheus: print server stats in prometheus format\n", help, StringComparison.Ordinal);
        Assert.Contains("  /reset_counters (POST): reset all counters to zero\n", help, StringComparison.Ordinal);
    }

    [PromtoolFact]
    public async Task PromtoolAcceptsTheOutput()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());
        var store = legate.Server.Stats;
        store.Counter("cluster.foo.upstream_rq_200").Inc();
        store.Histogram("cluster.foo.upstream_rq_time", HistogramUnit.Milliseconds).Record(12);
        var prometheus = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "stats/prometheus"));

        using var promtool = Process.Start(new ProcessStartInfo("promtool", "check metrics")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        await promtool.StandardInput.WriteAsync(prometheus);
        promtool.StandardInput.Close();
        var errors = await promtool.StandardError.ReadToEndAsync();
        await promtool.WaitForExitAsync();

        // Lint warnings (e.g. counters not ending in _total) are Envoy's naming, not format errors.
        Assert.True(promtool.ExitCode is 0 or 3, errors);
    }
}

/// <summary>Runs only where <c>promtool</c> is installed; elsewhere reported as skipped, never passed.</summary>
public sealed class PromtoolFactAttribute : FactAttribute
{
    public PromtoolFactAttribute()
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, "promtool")));
        if (!onPath)
        {
            Skip = "promtool is not installed";
        }
    }
}
