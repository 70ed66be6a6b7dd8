using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Upstream;

/// <summary>
/// Envoy's <c>cluster.&lt;name&gt;.upstream_cx_destroy*</c> family: who closed an HTTP/1.1 upstream
/// connection (the upstream: <c>_remote</c>; Legate: <c>_local</c>) and whether a request was on it
/// (<c>_with_active_rq</c>), next to the plain <c>upstream_cx_destroy</c> every close counts.
/// </summary>
public sealed class UpstreamConnectionDestroyStatsTests
{
    private const string ExplicitHttp1 = """
        typed_extension_protocol_options:
          envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
            "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        """;

    [Fact]
    public async Task AnUpstreamThatClosesMidRequestIsARemoteDestroyWithAnActiveRequest()
    {
        await using var upstream = RawUpstream.Start(async connection => await connection.ReadRequestAsync());
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());

        var response = await SendAsync(legate, "GET /closed HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(503, response.Status);
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_cx_destroy") == 1, "upstream_cx_destroy");
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_destroy_remote"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_destroy_remote_with_active_rq"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_destroy_with_active_rq"));
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_cx_destroy_local"));
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_cx_destroy_local_with_active_rq"));
    }

    [Fact]
    public async Task ARouteTimeoutIsALocalDestroyWithAnActiveRequest()
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(async connection =>
        {
            await connection.ReadRequestAsync();
            if (await connection.WaitForCloseAsync())
            {
                closed.TrySetResult();
            }
        });
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Route = "timeout: 0.3s" }.Build());

        var response = await SendAsync(legate, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");

        Assert.Equal(504, response.Status);
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_cx_destroy") == 1, "upstream_cx_destroy");
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_destroy_local"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_destroy_local_with_active_rq"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_destroy_with_active_rq"));
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_cx_destroy_remote"));
    }

    [Fact]
    public async Task AnIdleTimeoutIsALocalDestroyWithoutAnActiveRequest()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Cluster = ExplicitHttp1 + "\n    common_http_protocol_options: { idle_timeout: 0.3s }\n    explicit_http_config: { http_protocol_options: {} }",
        }.Build());

        using (var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/idle")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_cx_destroy") == 1, "upstream_cx_destroy");
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_idle_timeout"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_destroy_local"));
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_cx_destroy_with_active_rq"));
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_cx_destroy_remote"));
    }

    [Fact]
    public async Task AnUpstreamThatClosesAnIdleConnectionIsARemoteDestroy()
    {
        var served = 0;
        await using var upstream = RawUpstream.Start(async connection =>
        {
            await connection.ReadRequestAsync();
            Interlocked.Increment(ref served);
            await connection.WriteAsync("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            // Returns: the upstream closes the connection the proxy keeps idle.
        });
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());

        Assert.Equal(200, (await SendAsync(legate, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n")).Status);
        await InProcessLegate.WaitUntilAsync(() => Volatile.Read(ref served) == 1, "the first exchange");
        // The next request finds the pooled connection closed by the upstream, or races the close
        // and sees it mid-request (a 503 UC then): either way the upstream ended it.
        await SendAsync(legate, "GET /two HTTP/1.1\r\nHost: a\r\n\r\n");

        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_cx_destroy_remote") >= 1, "upstream_cx_destroy_remote");
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_cx_destroy_local"));
    }

    private static async Task<RawResponse> SendAsync(InProcessLegate legate, string request)
    {
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        await client.WriteAsync(request);
        return await client.ReadResponseAsync();
    }
}
