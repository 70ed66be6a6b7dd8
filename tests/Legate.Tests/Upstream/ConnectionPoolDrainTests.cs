using System.Globalization;
using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Upstream;

/// <summary>
/// Idle keep-alive upstream connections close when their host leaves the cluster (EDS) and when
/// the server stops, as Envoy drains a removed host's or cluster's pools; before, they stayed open
/// until the idle timeout (1 h), and a peer proxy draining its listener waited for them.
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
        var config = new ProxyConfig(a.Port)
        {
            Routes = """
                - match: { prefix: "/eds" }
                  route: { cluster: from_eds }
                """,
            Clusters = $$"""
                - name: from_eds
                  type: EDS
                  connect_timeout: 5s
                  eds_cluster_config:
                    eds_config: { path_config_source: { path: "{{eds}}" }, resource_api_version: V3 }
                """,
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config);
        Assert.Equal("a", await legate.Http.GetStringAsync(legate.ListenerUri("web", "/eds")));

        // The assignment now names only b: a's idle connection closes (no request needed), b serves.
        Replace(eds, Assignment("2", b.Port));
        await closedA.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("b", await legate.Http.GetStringAsync(legate.ListenerUri("web", "/eds")));
        Assert.False(closedB.Task.IsCompleted);
        Assert.True(legate.Counter("cluster.from_eds.upstream_cx_destroy_local") >= 1);
    }

    private static string Assignment(string version, int port) => $$"""
        version_info: "{{version}}"
        resources:
        - "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
          cluster_name: from_eds
          endpoints:
          - lb_endpoints:
            - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } } }
        """;

    /// <summary>Envoy's expected way to update a watched file: write elsewhere, rename over it.</summary>
    private static void Replace(string path, string content)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, content);
        File.Move(temp, path, overwrite: true);
    }
}
