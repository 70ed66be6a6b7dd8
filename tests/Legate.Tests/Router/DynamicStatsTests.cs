using System.Net;
using Legate.Stats;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// The router's <c>dynamic_stats</c> (Envoy's emit_dynamic_stats): on by default, the cluster counts
/// each response by class, counts it completed and records its time; off, none of those move while
/// the request counters, the connection pool and the host counters still do. Over HTTP/1.1 and
/// HTTP/2 upstreams.
/// </summary>
public sealed class DynamicStatsTests
{
    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public async Task DynamicStatsDecideTheResponseStatsOnly(bool http2, bool dynamicStats)
    {
        var protocol = http2 ? UpstreamProtocols.Http2 : UpstreamProtocols.Http1;
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"), protocol);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Router = dynamicStats ? "" : "dynamic_stats: false",
            Cluster = http2 ? TestConfigs.Http2UpstreamCluster : "",
        }.Build());
        using var client = TestHttp.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            using var response = await client.GetAsync(legate.ListenerUri("web", "/d"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("ok", await response.Content.ReadAsStringAsync());
        }

        // Every exchange is over (and so counted, or not) once no request is active.
        await InProcessLegate.WaitUntilAsync(
            () => legate.Gauge("cluster.backend.upstream_rq_active") == 0 && legate.Counter("cluster.backend.upstream_rq_total") == 3,
            "three upstream requests done");
        Assert.Equal(3, upstream.Log.Requests.Count);
        Assert.Equal(3, legate.Counter("http.web.downstream_rq_2xx"));
        var expected = dynamicStats ? 3 : 0;
        Assert.Equal(expected, legate.Counter("cluster.backend.upstream_rq_2xx"));
        Assert.Equal(expected, legate.Counter("cluster.backend.upstream_rq_completed"));
        Assert.Equal(expected, legate.Server.Stats.Histogram("cluster.backend.upstream_rq_time", HistogramUnit.Milliseconds).Count);
    }

    /// <summary>
    /// <c>suppress_grpc_request_failure_code_stats</c>: a gRPC request's response code is not
    /// counted by class (it is still completed and timed); other requests' are.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task GrpcRequestsChargeNoCodeClassWhenSuppressed(bool http2)
    {
        var protocol = http2 ? UpstreamProtocols.Http2 : UpstreamProtocols.Http1;
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("busy", status: 503), protocol);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Router = "suppress_grpc_request_failure_code_stats: true",
            Cluster = http2 ? TestConfigs.Http2UpstreamCluster : "",
        }.Build());
        using var client = TestHttp.CreateClient();

        using (var grpc = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("web", "/pkg.Service/Call")) { Content = new ByteArrayContent([0, 0, 0, 0, 0]) })
        {
            grpc.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
            using var response = await client.SendAsync(grpc);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        }

        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_rq_completed") == 1, "the gRPC exchange done");
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_rq_5xx"));

        using (var plain = await client.GetAsync(legate.ListenerUri("web", "/plain")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, plain.StatusCode);
        }

        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_rq_completed") == 2, "the plain exchange done");
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_rq_5xx"));
    }

    [Fact]
    public async Task DynamicStatsIsAnImplementedFieldNotWarnedAsIgnored()
    {
        var yaml = new ProxyConfig(1) { Router = "dynamic_stats: false, suppress_grpc_request_failure_code_stats: true" }.Build();
        var loaded = Legate.Config.BootstrapLoader.Load(null, yaml);

        Assert.True(loaded.Bootstrap.StaticResources.Listeners.Count == 1);
        Assert.DoesNotContain(loaded.Warnings, w => w.ToString().Contains("dynamic_stats", StringComparison.Ordinal));
        Assert.DoesNotContain(loaded.Warnings, w => w.ToString().Contains("suppress_grpc_request_failure_code_stats", StringComparison.Ordinal));
    }
}
