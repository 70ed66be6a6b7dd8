using System.Diagnostics;
using System.Text.Json;
using Legate.Tests.Harness;

namespace Legate.Tests.Stats;

/// <summary>
/// A real Prometheus server (Debian's <c>prometheus</c> package, installed by scripts/test.sh)
/// scrapes Legate's <c>/stats/prometheus</c> and answers queries with Envoy's metric and label
/// names. Reported as passed without checking when the binary is absent.
/// </summary>
public sealed class PrometheusServerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task PrometheusScrapesLegateAndReturnsSeriesWithEnvoyLabels()
    {
        const string binary = "/usr/bin/prometheus";
        if (!File.Exists(binary))
        {
            return;
        }

        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Admin() + Legate.Tests.AccessLog.AccessLogTests.Config(upstream.Port, string.Empty));
        for (var i = 0; i < 3; i++)
        {
            await legate.Http.GetStringAsync(legate.ListenerUri("ingress", "/a"));
        }

        var dir = Directory.CreateTempSubdirectory("legate-prometheus-").FullName;
        var port = FreePort.Get();
        var config = Path.Combine(dir, "prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
            - job_name: legate
              metrics_path: /stats/prometheus
              static_configs:
              - targets: ["{legate.AdminUri.Authority}"]
            """);
        using var process = Process.Start(new ProcessStartInfo(binary)
        {
            ArgumentList =
            {
                "--config.file=" + config, "--storage.tsdb.path=" + Path.Combine(dir, "data"),
                "--web.listen-address=127.0.0.1:" + port, "--log.level=warn",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { output.Enqueue(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { output.Enqueue(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = TestHttp.CreateClient();
            var query = "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"backend\"}";
            var url = $"http://127.0.0.1:{port}/api/v1/query?query={Uri.EscapeDataString(query)}";
            var deadline = DateTime.UtcNow + Timeout;
            JsonElement? series = null;
            while (series is null)
            {
                Assert.False(process.HasExited, "prometheus exited: " + string.Join("\n", output));
                Assert.True(DateTime.UtcNow < deadline, "no series scraped in time: " + string.Join("\n", output));
                try
                {
                    using var doc = JsonDocument.Parse(await http.GetStringAsync(url));
                    var result = doc.RootElement.GetProperty("data").GetProperty("result");
                    if (result.GetArrayLength() > 0)
                    {
                        series = result[0].Clone();
                        break;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }

                // Polling the query API is the wait: Prometheus has no event to wait on.
                await Task.Delay(200);
            }

            var metric = series!.Value.GetProperty("metric");
            Assert.Equal("envoy_cluster_upstream_rq_total", metric.GetProperty("__name__").GetString());
            Assert.Equal("backend", metric.GetProperty("envoy_cluster_name").GetString());
            Assert.Equal("legate", metric.GetProperty("job").GetString());
            Assert.Equal("3", series.Value.GetProperty("value")[1].GetString());

            // A histogram family with its buckets and the HCM prefix label.
            var histogramUrl = $"http://127.0.0.1:{port}/api/v1/query?query={Uri.EscapeDataString("envoy_http_downstream_rq_time_count{envoy_http_conn_manager_prefix=\"ingress\"}")}";
            using var histogram = JsonDocument.Parse(await http.GetStringAsync(histogramUrl));
            var value = Assert.Single(histogram.RootElement.GetProperty("data").GetProperty("result").EnumerateArray());
            Assert.Equal("3", value.GetProperty("value")[1].GetString());
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Directory.Delete(dir, recursive: true);
        }
    }
}
