using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Legate.Config;
using Legate.Stats;
using Legate.Tests.Harness;

namespace Legate.Tests.Stats;

/// <summary>stats_config (custom tags, matcher, buckets), the stats flush and the statsd sinks.</summary>
public sealed class StatsConfigTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static StatsOptions Options(string yaml)
    {
        var errors = new ConfigErrors();
        var bootstrap = Legate.Tests.Upstream.UpstreamTestConfigs.ParseBootstrap(yaml);
        var options = StatsOptions.Compile(bootstrap.StatsConfig, errors);
        Assert.Empty(errors.Errors);
        return options;
    }

    [Fact]
    public void CustomRegexAndFixedTagsBecomePrometheusLabels()
    {
        var store = new StatsStore(Options("""
            stats_config:
              stats_tags:
              - tag_name: team
                regex: "^app\\.((.*?)\\.)"
              - tag_name: region
                fixed_value: eu-west
            """));
        store.Counter("app.payments.requests").Inc();
        store.Counter("cluster.backend.upstream_rq_200").Add(3);

        var prometheus = StatsRenderer.Prometheus(store, StatsQuery.Everything);
        Assert.Contains("envoy_app_requests{team=\"payments\",region=\"eu-west\"} 1\n", prometheus, StringComparison.Ordinal);
        Assert.Contains("envoy_cluster_upstream_rq{envoy_cluster_name=\"backend\",envoy_response_code=\"200\",region=\"eu-west\"} 3\n", prometheus, StringComparison.Ordinal);
    }

    [Fact]
    public void DefaultTagNamedWithoutRegexUsesTheDefaultRegexEvenWhenDefaultsAreOff()
    {
        var store = new StatsStore(Options("""
            stats_config:
              use_all_default_tags: false
              stats_tags:
              - tag_name: envoy.cluster_name
            """));
        store.Counter("cluster.backend.upstream_rq_200").Inc();
        Assert.Contains("envoy_cluster_upstream_rq_200{envoy_cluster_name=\"backend\"} 1\n", StatsRenderer.Prometheus(store, StatsQuery.Everything), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("reject_all: true", new string[0])]
    [InlineData("inclusion_list: { patterns: [{ prefix: \"cluster.\" }] }", new[] { "cluster.a.upstream_rq_total" })]
    [InlineData("exclusion_list: { patterns: [{ suffix: \"_total\" }] }", new[] { "http.x.no_route" })]
    public void StatsMatcherKeepsOnlyAcceptedNamesAndRejectedOnesStillWork(string matcher, string[] kept)
    {
        var store = new StatsStore(Options("stats_config:\n  stats_matcher: { " + matcher + " }\n"));
        var names = new[] { "cluster.a.upstream_rq_total", "http.x.no_route", "http.x.downstream_rq_total" };
        foreach (var name in names)
        {
            store.Counter(name).Inc();
        }

        Assert.Equal(kept, store.Counters().Select(c => c.Name.Full).ToArray());

        // A rejected counter is a working object that allocates nothing on update and is never listed.
        var rejected = store.Counter("http.x.downstream_rq_total");
        rejected.Inc();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            rejected.Inc();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void HistogramBucketSettingsApplyToMatchingHistograms()
    {
        var store = new StatsStore(Options("""
            stats_config:
              histogram_bucket_settings:
              - match: { prefix: "cluster." }
                buckets: [10, 1, 100]
            """));
        var custom = store.Histogram("cluster.a.upstream_rq_time", HistogramUnit.Milliseconds);
        var standard = store.Histogram("http.a.downstream_rq_time", HistogramUnit.Milliseconds);
        Assert.Equal([1d, 10d, 100d], custom.Bounds);
        Assert.Equal(Histogram.DefaultBuckets, standard.Bounds);
        custom.Record(5);
        custom.Record(50);
        custom.Record(500);
        Assert.Equal([0L, 1L, 1L, 1L], custom.BucketCounts());
        var prometheus = StatsRenderer.Prometheus(store, StatsQuery.Everything);
        Assert.Contains("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"a\",le=\"10\"} 1\n", prometheus, StringComparison.Ordinal);
        Assert.Contains("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"a\",le=\"+Inf\"} 3\n", prometheus, StringComparison.Ordinal);
    }

    [Fact]
    public void IntervalHalfShowsTheLastFlushIntervalInsteadOfNan()
    {
        var store = new StatsStore();
        var histogram = store.Histogram("http.a.downstream_rq_time", HistogramUnit.Milliseconds);
        histogram.Record(3);
        Assert.StartsWith("http.a.downstream_rq_time: P0(nan,3)", StatsRenderer.Text(store, StatsQuery.Everything), StringComparison.Ordinal);

        store.FlushIntervals();
        Assert.StartsWith("http.a.downstream_rq_time: P0(3,3)", StatsRenderer.Text(store, StatsQuery.Everything), StringComparison.Ordinal);
        Assert.Equal(1, histogram.IntervalCount);

        // The next interval has no samples again.
        store.FlushIntervals();
        Assert.Equal(0, histogram.IntervalCount);
        Assert.StartsWith("http.a.downstream_rq_time: P0(nan,3)", StatsRenderer.Text(store, StatsQuery.Everything), StringComparison.Ordinal);
    }

    [Fact]
    public async Task StatsdSinkSendsCounterDeltasAndGaugesOverUdp()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple("web") + $$"""
            # One datagram per stat and flush: keep the bursts small enough for a loaded machine's socket buffers.
            stats_config:
              stats_matcher: { inclusion_list: { patterns: [{ prefix: "http." }, { prefix: "server." }] } }
            stats_flush_interval: 0.05s
            stats_sinks:
            - name: envoy.stat_sinks.statsd
              typed_config:
                "@type": type.googleapis.com/envoy.config.metrics.v3.StatsdSink
                address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } }
                prefix: legate
            """);
        await legate.Http.GetStringAsync(legate.ListenerUri("web"));

        // As Envoy's statsd sink: one line per datagram.
        // Histogram samples go as Envoy's statsd timers: one "|ms" line per sample.
        var lines = await ReceiveUntilAsync(
            udp,
            lines => lines.Contains("legate.http.web.downstream_rq_total:1|c") && lines.Exists(l => Regex.IsMatch(l, @"^legate\.server\.uptime:\d+\|g$"))
                && lines.Exists(l => Regex.IsMatch(l, @"^legate\.http\.web\.downstream_rq_time:\d+\|ms$")),
            datagram => Assert.DoesNotContain('\n', datagram));
        Assert.Single(lines, l => l.StartsWith("legate.http.web.downstream_rq_time:", StringComparison.Ordinal));

        // The next flush sends the counter's change since this one: 0 until another request.
        await legate.Http.GetStringAsync(legate.ListenerUri("web"));
        await ReceiveUntilAsync(udp, lines => lines.Contains("legate.http.web.downstream_rq_total:1|c"));
    }

    [Fact]
    public async Task DogStatsdSinkSendsTagsAndTcpClusterSinkStreamsLines()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var udpPort = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
        using var packedUdp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var packedPort = ((IPEndPoint)packedUdp.Client.LocalEndPoint!).Port;
        var tcp = new TcpListener(IPAddress.Loopback, 0);
        tcp.Start();
        try
        {
            var tcpPort = ((IPEndPoint)tcp.LocalEndpoint).Port;
            await using var legate = await InProcessLegate.StartAsync(TestConfigs.Admin() + "static_resources:\n  listeners:\n" + TestConfigs.DirectResponseListener("web") + $$"""
                  clusters:
                  - name: statsd
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: statsd
                      endpoints:
                      - lb_endpoints:
                        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{tcpPort}} } } }
                # One datagram per stat and flush: keep the bursts small enough for a loaded machine's socket buffers.
                stats_config:
                  stats_matcher: { inclusion_list: { patterns: [{ prefix: "http." }, { prefix: "server." }] } }
                stats_flush_interval: 0.2s
                stats_sinks:
                - name: envoy.stat_sinks.dog_statsd
                  typed_config:
                    "@type": type.googleapis.com/envoy.config.metrics.v3.DogStatsdSink
                    address: { socket_address: { address: 127.0.0.1, port_value: {{udpPort}} } }
                - name: envoy.stat_sinks.dog_statsd
                  typed_config:
                    "@type": type.googleapis.com/envoy.config.metrics.v3.DogStatsdSink
                    address: { socket_address: { address: 127.0.0.1, port_value: {{packedPort}} } }
                    prefix: dd
                    max_bytes_per_datagram: 256
                - name: envoy.stat_sinks.statsd
                  typed_config:
                    "@type": type.googleapis.com/envoy.config.metrics.v3.StatsdSink
                    tcp_cluster_name: statsd
                """);
            await legate.Http.GetStringAsync(legate.ListenerUri("web"));

            // Without max_bytes_per_datagram one line per datagram, as Envoy.
            await ReceiveUntilAsync(
                udp,
                lines => lines.Contains("envoy.http.downstream_rq_total:1|c|#envoy.http_conn_manager_prefix:web")
                    && lines.Exists(l => Regex.IsMatch(l, @"^envoy\.http\.downstream_rq_time:\d+\|ms\|#envoy\.http_conn_manager_prefix:web$")),
                datagram => Assert.DoesNotContain('\n', datagram));

            // With it, lines share datagrams of at most that size; the prefix and the tags are the sink's.
            var sizes = new List<int>();
            var packed = await ReceiveUntilAsync(
                packedUdp,
                lines => lines.Contains("dd.http.downstream_rq_total:1|c|#envoy.http_conn_manager_prefix:web") && lines.Exists(l => Regex.IsMatch(l, @"^dd\.server\.uptime:\d+\|g$")) && sizes.Count > 1,
                datagram => sizes.Add(Encoding.UTF8.GetByteCount(datagram)));
            Assert.All(sizes, size => Assert.InRange(size, 1, 256));
            Assert.True(packed.Count > sizes.Count, "some datagram carries more than one line");

            using var accepted = await tcp.AcceptTcpClientAsync().WaitAsync(Timeout);
            using var reader = new StreamReader(accepted.GetStream(), Encoding.UTF8);
            using var cancel = new CancellationTokenSource(Timeout);
            string? line;
            while ((line = await reader.ReadLineAsync(cancel.Token)) != "envoy.http.web.downstream_rq_total:1|c")
            {
                Assert.NotNull(line);
            }
        }
        finally
        {
            tcp.Stop();
        }
    }

    [Fact]
    public async Task ManagerAndListenerStatsHaveEnvoysNames()
    {
        var names = new[]
        {
            "cluster_manager.cluster_added", "cluster_manager.active_clusters", "cluster_manager.warming_clusters",
            "listener_manager.listener_added", "listener_manager.total_listeners_active", "listener_manager.workers_started",
            "listener_manager.listener_create_success",
        };
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple("web"));
        legate.Server.Stats.Refresh();
        var all = legate.Server.Stats.Counters().Select(c => (c.Name.Full, c.Value)).Concat(legate.Server.Stats.Gauges().Select(g => (g.Name.Full, g.Value))).ToDictionary(p => p.Full, p => p.Value);
        foreach (var name in names)
        {
            Assert.True(all.ContainsKey(name), name);
        }

        Assert.Equal(1, all["listener_manager.listener_added"]);
        Assert.Equal(1, all["listener_manager.total_listeners_active"]);
        Assert.Equal(1, all["listener_manager.workers_started"]);
        var address = Legate.Network.SocketAddresses.Format(legate.ListenerEndpoint("web")).Replace(':', '_');
        await legate.Http.GetStringAsync(legate.ListenerUri("web"));
        Assert.Contains(legate.Server.Stats.Histograms(), h => h.Name.Full == $"listener.{address}.downstream_cx_length_ms");
        Assert.Contains(legate.Server.Stats.Counters(), c => c.Name.Full == $"listener.{address}.downstream_pre_cx_timeout");
    }

    /// <summary>Receives datagrams until the lines seen so far satisfy <paramref name="done"/>; each datagram is checked first.</summary>
    private static async Task<List<string>> ReceiveUntilAsync(UdpClient udp, Func<List<string>, bool> done, Action<string>? checkDatagram = null)
    {
        using var cancel = new CancellationTokenSource(Timeout);
        var lines = new List<string>();
        while (true)
        {
            var result = await udp.ReceiveAsync(cancel.Token);
            var datagram = Encoding.UTF8.GetString(result.Buffer);
            checkDatagram?.Invoke(datagram);
            lines.AddRange(datagram.Split('\n'));
            if (done(lines))
            {
                return lines;
            }
        }
    }
}
