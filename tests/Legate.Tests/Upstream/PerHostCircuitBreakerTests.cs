using System.Globalization;
using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Upstream;

/// <summary>circuit_breakers.per_host_thresholds.max_connections: one host's connections are capped below the cluster's.</summary>
public sealed class PerHostCircuitBreakerTests
{
    [Fact]
    public async Task AHostNeverHasMoreConnectionsThanItsPerHostLimit()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok") with { HoldUntil = gate.Task });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, maxConnectionsPerHost: 2, http2: false));
        using var client = TestHttp.CreateClient();

        var requests = Enumerable.Range(0, 5).Select(_ => client.GetAsync(legate.ListenerUri("web", "/"))).ToArray();

        // Two connections carry two requests; the other three wait as pending requests.
        await upstream.Log.WaitForRequestsAsync(2, TimeSpan.FromSeconds(30));
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("cluster.backend.upstream_rq_pending_active") == 3, "three pending requests");
        Assert.Equal(2, upstream.Log.ActiveRequests);
        Assert.Equal(2, legate.Gauge("cluster.backend.upstream_cx_active"));
        Assert.True(legate.Counter("cluster.backend.upstream_cx_overflow") >= 3);

        gate.SetResult();
        var responses = await Task.WhenAll(requests).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(2, upstream.Log.MaxConcurrentRequests);
        Assert.Equal(2, legate.Counter("cluster.backend.upstream_cx_total"));
    }

    [Fact]
    public async Task AnHttp2HostNeverHasMoreConnectionsThanItsPerHostLimit()
    {
        // The upstream takes one stream per connection, so a second concurrent request needs a second
        // connection, which the host's limit of one refuses: 503 UO, as the cluster's max_connections.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(
            new UpstreamScript(UpstreamResponse.Text("ok") with { HoldUntil = gate.Task }),
            UpstreamProtocols.Http2,
            configure: options => options.Limits.Http2.MaxStreamsPerConnection = 1);
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, maxConnectionsPerHost: 1, http2: true));
        using var client = TestHttp.CreateClient();

        var held = client.GetAsync(legate.ListenerUri("web", "/held"));
        await upstream.Log.WaitForRequestsAsync(1, TimeSpan.FromSeconds(30));
        using (var overflow = await client.GetAsync(legate.ListenerUri("web", "/second")).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, overflow.StatusCode);
            Assert.Equal("true", overflow.Headers.GetValues("x-envoy-overloaded").Single());
        }

        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_overflow"));
        Assert.Equal(1, legate.Gauge("cluster.backend.upstream_cx_active"));
        Assert.Single(upstream.Log.Requests);

        // Once the held stream finishes, the one connection takes the next request.
        gate.SetResult();
        using var first = await held.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var again = await client.GetAsync(legate.ListenerUri("web", "/again")).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_total"));
    }

    private static string Config(int port, int maxConnectionsPerHost, bool http2) => new ProxyConfig(port)
    {
        Route = "timeout: 60s",
        Cluster = (http2 ? "http2_protocol_options: {}\n" : "") + $$"""
            circuit_breakers:
              thresholds: [ { max_connections: 100, max_pending_requests: 100 } ]
              per_host_thresholds: [ { max_connections: {{maxConnectionsPerHost.ToString(CultureInfo.InvariantCulture)}} } ]
            """,
    }.Build();
}
