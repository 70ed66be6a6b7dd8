using System.Globalization;
using System.Net;
using Legate.Tests.Harness;
using Microsoft.AspNetCore.Http;

namespace Legate.Tests.Upstream;

/// <summary>
/// Idle keep-alive upstream connections close when their host leaves the cluster (EDS) and when
/// the server stops, as Envoy drains a removed host's or cluster's pools; before, they stayed open
/// until the idle timeout (1 h), and a peer proxy draining its listener waited for them. HTTP/2
/// pools drain the same way: their connections take no new stream, an idle one closes at once and
/// a busy one once its open streams have finished (they are not cut off).
/// </summary>
public sealed class ConnectionPoolDrainTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-pool-drain-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>An upstream answering "NAME" on keep-alive connections; the task completes when Legate closes a connection.</summary>
    private static RawUpstream Upstream(string name, TaskCompletionSource closed) => RawUpstream.Start(async connection =>
    {
        while (await connection.ReadRequestAsync() is not null)
        {
            await connection.WriteAsync($"HTTP/1.1 200 OK\r\ncontent-length: {name.Length.ToString(CultureInfo.InvariantCulture)}\r\n\r\n{name}");
        }

        closed.TrySetResult();
    });

    [Fact]
    public async Task StoppingTheServerClosesIdleUpstreamConnections()
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = Upstream("a", closed);
        var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());
        try
        {
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/eds"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(1, upstream.ConnectionCount);
        }
        finally
        {
            await legate.DisposeAsync();
        }

        await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task AHostThatLeavesTheClusterHasItsIdleConnectionsClosed()
    {
        var closedA = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var closedB = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var a = Upstream("a", closedA);
        await using var b = Upstream("b", closedB);
        var eds = Path.Combine(_dir, "eds.yaml");
        Replace(eds, Assignment("1", a.Port));
        await using var legate = await InProcessLegate.StartAsync(EdsConfig(eds, http2: false, closeOnHostSetChange: false));
        Assert.Equal("a", await legate.Http.GetStringAsync(legate.ListenerUri("web", "/eds")));

        // The assignment now names only b: a's idle connection closes (no request needed), b serves.
        Replace(eds, Assignment("2", b.Port));
        await closedA.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("b", await legate.Http.GetStringAsync(legate.ListenerUri("web", "/eds")));
        Assert.False(closedB.Task.IsCompleted);
        Assert.True(legate.Counter("cluster.from_eds.upstream_cx_destroy_local") >= 1);
    }

    [Fact]
    public async Task AHostThatLeavesTheClusterHasItsIdleHttp2ConnectionClosed()
    {
        await using var a = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("a"), UpstreamProtocols.Http2);
        await using var b = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("b"), UpstreamProtocols.Http2);
        var eds = Path.Combine(_dir, "eds.yaml");
        Replace(eds, Assignment("1", a.Port));
        await using var legate = await InProcessLegate.StartAsync(EdsConfig(eds, http2: true, closeOnHostSetChange: false));
        Assert.Equal("a", await legate.Http.GetStringAsync(legate.ListenerUri("web", "/eds")));
        Assert.Equal(1, legate.Gauge("cluster.from_eds.upstream_cx_active"));

        // The assignment now names only b: a's idle HTTP/2 connection closes without any request.
        Replace(eds, Assignment("2", b.Port));
        await InProcessLegate.WaitUntilAsync(
            () => legate.Gauge("cluster.from_eds.upstream_cx_active") == 0 && legate.Counter("cluster.from_eds.upstream_cx_destroy") == 1,
            "the removed host's HTTP/2 connection closed");
        Assert.Equal("b", await legate.Http.GetStringAsync(legate.ListenerUri("web", "/eds")));
        Assert.Equal(1, legate.Gauge("cluster.from_eds.upstream_cx_active"));
        Assert.Equal("HTTP/2", b.Log.Requests.Single().Protocol);
    }

    [Fact]
    public async Task ADrainedHttp2ConnectionFinishesItsOpenStreamThenCloses()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var script = new UpstreamScript(UpstreamResponse.Text("a")).OnPath("/eds/slow", UpstreamResponse.Custom(async context =>
        {
            await release.Task;
            context.Response.ContentType = "text/plain";
            await context.Response.WriteAsync("finished on the drained connection");
        }));
        await using var a = await ScriptedUpstream.StartAsync(script, UpstreamProtocols.Http2);
        await using var b = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("b"), UpstreamProtocols.Http2);
        var eds = Path.Combine(_dir, "eds.yaml");
        Replace(eds, Assignment("1", a.Port));
        await using var legate = await InProcessLegate.StartAsync(EdsConfig(eds, http2: true, closeOnHostSetChange: true));

        var slow = legate.Http.GetAsync(legate.ListenerUri("web", "/eds/slow"));
        var first = (await a.Log.WaitForRequestsAsync(1))[0];

        // b joins: every host the cluster keeps is drained, a included, while a's stream is open.
        Replace(eds, Assignment("2", a.Port, b.Port));
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("cluster.from_eds.membership_total") == 2, "b joined the cluster");

        // New requests (round robin over a and b) no longer use the drained connection.
        Assert.Equal(["a", "b"], (await Task.WhenAll(
            legate.Http.GetStringAsync(legate.ListenerUri("web", "/eds/1")),
            legate.Http.GetStringAsync(legate.ListenerUri("web", "/eds/2")))).Order());
        var second = a.Log.Requests.Single(r => r.Path != "/eds/slow");
        Assert.NotEqual(first.ConnectionId, second.ConnectionId);
        Assert.Equal(0, legate.Counter("cluster.from_eds.upstream_cx_destroy"));

        // The open stream still finishes, then its connection closes.
        release.SetResult();
        using var response = await slow;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("finished on the drained connection", await response.Content.ReadAsStringAsync());
        await InProcessLegate.WaitUntilAsync(
            () => legate.Counter("cluster.from_eds.upstream_cx_destroy") == 1,
            "the drained connection closed after its last stream");
        Assert.Equal(2, legate.Gauge("cluster.from_eds.upstream_cx_active"));
    }

    [Fact]
    public async Task DrainingHttp2PoolsOverAndOverFailsNoRequest()
    {
        // Requests keep flowing while the host's HTTP/2 pool is drained again and again: each drain
        // moves the pool to new connections, and the old ones are closed only once every request
        // handed to them has its stream (a closed handler refuses a request still waiting for one).
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"), UpstreamProtocols.Http2);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Cluster = "http2_protocol_options: {}" }.Build());
        var host = Assert.Single(legate.Server.Clusters.Find("backend")!.PrioritySet.Current.Hosts);
        using var client = TestHttp.CreateClient();

        var done = 0;
        var drainer = Task.Run(async () =>
        {
            var drains = 0;
            while (Volatile.Read(ref done) == 0 || drains < 50)
            {
                host.DrainConnectionPools();
                drains++;
                await Task.Yield();
            }

            return drains;
        });
        var statuses = new List<HttpStatusCode>();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            for (var i = 0; i < 50; i++)
            {
                using var response = await client.GetAsync(legate.ListenerUri("web", "/"));
                lock (statuses)
                {
                    statuses.Add(response.StatusCode);
                }
            }
        }));
        Volatile.Write(ref done, 1);
        Assert.True(await drainer >= 50);

        Assert.Equal(400, statuses.Count);
        Assert.All(statuses, status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.Equal(400, upstream.Log.Count);
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("cluster.backend.upstream_cx_active") <= 1, "drained connections closed");
    }

    /// <summary>Cluster <c>from_eds</c> (routes <c>/eds…</c>) reading its endpoints from <paramref name="eds"/>.</summary>
    private static string EdsConfig(string eds, bool http2, bool closeOnHostSetChange) => new ProxyConfig(1)
    {
        Routes = """
            - match: { prefix: "/eds" }
              route: { cluster: from_eds }
            """,
        Clusters = $$"""
            - name: from_eds
              type: EDS
              connect_timeout: 5s
              {{(http2 ? "http2_protocol_options: {}" : "")}}
              common_lb_config: { close_connections_on_host_set_change: {{(closeOnHostSetChange ? "true" : "false")}} }
              eds_cluster_config:
                eds_config: { path_config_source: { path: "{{eds}}" }, resource_api_version: V3 }
            """,
    }.Build();

    private static string Assignment(string version, params int[] ports) => $$"""
        version_info: "{{version}}"
        resources:
        - "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
          cluster_name: from_eds
          endpoints:
          - lb_endpoints:
        {{string.Concat(ports.Select(port => $"    - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}\n"))}}
        """;

    /// <summary>Envoy's expected way to update a watched file: write elsewhere, rename over it.</summary>
    private static void Replace(string path, string content)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, content);
        File.Move(temp, path, overwrite: true);
    }
}
