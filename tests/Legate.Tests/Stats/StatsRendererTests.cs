using System.Text.Json;
using System.Text.RegularExpressions;
using Legate.Stats;

namespace Legate.Tests.Stats;

public sealed class StatsRendererTests
{
    private static StatsStore Sample()
    {
        var store = new StatsStore();
        store.Counter("cluster.foo.upstream_rq_200").Add(3);
        store.Counter("cluster.bar.upstream_rq_200").Add(1);
        store.Counter("cluster.foo.upstream_rq_503");
        store.Gauge("server.live", ImportMode.NeverImport).Set(1);
        store.Gauge("cluster.foo.upstream_cx_active", ImportMode.Accumulate).Set(2);
        return store;
    }

    [Fact]
    public void TextIsNameColonValueSortedByNameAcrossCountersAndGauges()
    {
        var text = StatsRenderer.Text(Sample(), StatsQuery.Everything);

        Assert.Equal(
            "cluster.bar.upstream_rq_200: 1\n" +
            "cluster.foo.upstream_cx_active: 2\n" +
            "cluster.foo.upstream_rq_200: 3\n" +
            "cluster.foo.upstream_rq_503: 0\n" +
            "server.live: 1\n",
            text);
    }

    [Fact]
    public void TextHistogramsComeLastAsQuantileSummaries()
    {
        var store = new StatsStore();
        store.Counter("z.counter").Inc();
        store.Histogram("a.empty", HistogramUnit.Milliseconds);
        var h = store.Histogram("b.time", HistogramUnit.Milliseconds);
        h.Record(1);
        h.Record(1);

        var lines = StatsRenderer.Text(store, StatsQuery.Everything).Split('\n');

        Assert.Equal("z.counter: 1", lines[0]);
        Assert.Equal("a.empty: No recorded values", lines[1]);
        Assert.Equal("b.time: P0(nan,1) P25(nan,1) P50(nan,1) P75(nan,1) P90(nan,1) P95(nan,1) P99(nan,1) P99.5(nan,1) P99.9(nan,1) P100(nan,1)", lines[2]);
    }

    [Fact]
    public void FilterIsAnUnanchoredRegexAndUsedOnlyHidesUntouchedStats()
    {
        var store = Sample();

        Assert.Equal(
            "cluster.foo.upstream_rq_200: 3\ncluster.foo.upstream_rq_503: 0\n",
            StatsRenderer.Text(store, new StatsQuery(new Regex("foo\\.upstream_rq"))));
        Assert.Equal(
            "cluster.foo.upstream_rq_200: 3\n",
            StatsRenderer.Text(store, new StatsQuery(new Regex("foo\\.upstream_rq"), UsedOnly: true)));
        Assert.Equal("server.live: 1\n", StatsRenderer.Text(store, new StatsQuery(Type: StatsType.Gauges, Filter: new Regex("live"))));
        Assert.Equal("", StatsRenderer.Text(store, new StatsQuery(Type: StatsType.Histograms)));
    }

    [Fact]
    public void JsonHasStatsArrayWithHistogramsElement()
    {
        var store = Sample();
        store.Histogram("cluster.foo.upstream_rq_time", HistogramUnit.Milliseconds).Record(10);
        store.Histogram("cluster.foo.upstream_cx_length_ms", HistogramUnit.Milliseconds);

        using var doc = JsonDocument.Parse(StatsRenderer.Json(store, StatsQuery.Everything));
        var stats = doc.RootElement.GetProperty("stats");

        Assert.Equal(6, stats.GetArrayLength());
        Assert.Equal("cluster.bar.upstream_rq_200", stats[0].GetProperty("name").GetString());
        Assert.Equal(1, stats[0].GetProperty("value").GetInt64());
        var histograms = stats[5].GetProperty("histograms");
        Assert.Equal(
            [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100],
            histograms.GetProperty("supported_quantiles").EnumerateArray().Select(e => e.GetDouble()));
        var computed = histograms.GetProperty("computed_quantiles");
        Assert.Equal("cluster.foo.upstream_cx_length_ms", computed[0].GetProperty("name").GetString());
        Assert.Equal(JsonValueKind.Null, computed[0].GetProperty("values")[0].GetProperty("cumulative").ValueKind);
        Assert.Equal(JsonValueKind.Null, computed[1].GetProperty("values")[0].GetProperty("interval").ValueKind);
        Assert.Equal(10, computed[1].GetProperty("values")[9].GetProperty("cumulative").GetDouble());
    }

    [Fact]
    public void JsonWithoutHistogramsHasNoHistogramsElement()
    {
        using var doc = JsonDocument.Parse(StatsRenderer.Json(Sample(), StatsQuery.Everything));

        Assert.All(doc.RootElement.GetProperty("stats").EnumerateArray(), e => Assert.True(e.TryGetProperty("name", out _)));
    }

    [Fact]
    public void PrometheusClusterFamily()
    {
        var text = StatsRenderer.Prometheus(Sample(), new StatsQuery(Type: StatsType.Counters));

        Assert.Equal(
            "# TYPE envoy_cluster_upstream_rq counter\n" +
            "envoy_cluster_upstream_rq{envoy_cluster_name=\"bar\",envoy_response_code=\"200\"} 1\n" +
            "envoy_cluster_upstream_rq{envoy_cluster_name=\"foo\",envoy_response_code=\"200\"} 3\n" +
            "envoy_cluster_upstream_rq{envoy_cluster_name=\"foo\",envoy_response_code=\"503\"} 0\n",
            text);
    }

    [Fact]
    public void PrometheusHttpResponseCodeClassAndListenerAddressAndUntagged()
    {
        var store = new StatsStore();
        store.Counter("http.ingress.downstream_rq_2xx").Add(4);
        store.Counter("listener.127.0.0.1_10000.downstream_cx_total").Add(2);
        store.Gauge("server.live", ImportMode.NeverImport).Set(1);

        var lines = StatsRenderer.Prometheus(store, StatsQuery.Everything).Split('\n');

        Assert.Equal(
            [
                "# TYPE envoy_http_downstream_rq_xx counter",
                "envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix=\"ingress\",envoy_response_code_class=\"2\"} 4",
                "# TYPE envoy_listener_downstream_cx_total counter",
                "envoy_listener_downstream_cx_total{envoy_listener_address=\"127.0.0.1_10000\"} 2",
                "# TYPE envoy_server_live gauge",
                "envoy_server_live{} 1",
                "",
            ],
            lines);
    }

    [Fact]
    public void PrometheusHistogramHasCumulativeBucketsSumAndCount()
    {
        var store = new StatsStore();
        var h = store.Histogram("cluster.foo.upstream_rq_time", HistogramUnit.Milliseconds);
        h.Record(3);
        h.Record(40);
        h.Record(7_000_000);

        var lines = StatsRenderer.Prometheus(store, StatsQuery.Everything).TrimEnd('\n').Split('\n');

        Assert.Equal("# TYPE envoy_cluster_upstream_rq_time histogram", lines[0]);
        Assert.Equal("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"0.5\"} 0", lines[1]);
        Assert.Equal("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"5\"} 1", lines[3]);
        Assert.Equal("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"50\"} 2", lines[6]);
        Assert.Equal("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"3600000\"} 2", lines[19]);
        Assert.Equal("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"+Inf\"} 3", lines[20]);
        Assert.Equal("envoy_cluster_upstream_rq_time_sum{envoy_cluster_name=\"foo\"} 7000043", lines[21]);
        Assert.Equal("envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"foo\"} 3", lines[22]);
        Assert.Equal(23, lines.Length);
    }

    [Fact]
    public void PrometheusEscapesLabelValuesAndSanitizesNames()
    {
        var store = new StatsStore();
        store.Counter("cluster.a\"b.upstream-cx:total").Inc();

        Assert.Equal(
            "# TYPE envoy_cluster_upstream_cx_total counter\nenvoy_cluster_upstream_cx_total{envoy_cluster_name=\"a\\\"b\"} 1\n",
            StatsRenderer.Prometheus(store, StatsQuery.Everything));
    }
}
