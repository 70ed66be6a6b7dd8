using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Network;

/// <summary>
/// Envoy's accept-time connection limits from the runtime: a listener's
/// <c>envoy.resource_limits.listener.&lt;name&gt;.connection_limit</c> (<c>downstream_cx_overflow</c>)
/// and the server's <c>overload.global_downstream_max_connections</c>
/// (<c>downstream_global_cx_overflow</c>; a listener with <c>ignore_global_conn_limit</c> accepts past
/// it, its connections still counted). A connection over a limit is closed at once; the ones
/// already open are served on; a freed place or a raised limit (<c>/runtime_modify</c>) lets the
/// next one in.
/// </summary>
public sealed class ConnectionLimitTests
{
    private const string Get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    [Fact]
    public async Task TheListenersLimitClosesTheConnectionOverItUntilAPlaceIsFreedOrTheLimitRaised()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("envoy.resource_limits.listener.a.connection_limit: 2"));
        var a = legate.ListenerEndpoint("a");

        await using var first = await ServedAsync(a);
        await using var second = await ServedAsync(a);
        await using (var third = await RawHttpConnection.ConnectAsync(a))
        {
            Assert.True(await third.WaitForCloseAsync());
        }

        Assert.Equal(1, legate.Counter(Stat(a, "downstream_cx_overflow")));
        Assert.Equal(2, legate.Counter(Stat(a, "downstream_cx_total")));
        Assert.Equal(0, legate.Counter(Stat(a, "downstream_global_cx_overflow")));

        // The two open connections go on being served.
        await first.WriteAsync(Get);
        Assert.Equal(200, (await first.ReadResponseAsync()).Status);

        // One closes: its place goes to the next connection.
        await second.DisposeAsync();
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge(Stat(a, "downstream_cx_active")) == 1, "the closed connection to be gone");
        await using var fourth = await ServedAsync(a);
        await using (var fifth = await RawHttpConnection.ConnectAsync(a))
        {
            Assert.True(await fifth.WaitForCloseAsync());
        }

        // A raised limit applies to the next accept.
        using (var modify = await legate.Http.PostAsync(new Uri(legate.AdminUri, "/runtime_modify?envoy.resource_limits.listener.a.connection_limit=3"), null))
        {
            Assert.Equal(HttpStatusCode.OK, modify.StatusCode);
        }

        await using var sixth = await ServedAsync(a);
        Assert.Equal(2, legate.Counter(Stat(a, "downstream_cx_overflow")));
    }

    [Fact]
    public async Task TheGlobalLimitCountsEveryListenerAndSparesOneThatIgnoresIt()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("overload.global_downstream_max_connections: 2"));
        var a = legate.ListenerEndpoint("a");
        var b = legate.ListenerEndpoint("b");

        await using var first = await ServedAsync(a);
        await using var second = await ServedAsync(a);
        await using (var third = await RawHttpConnection.ConnectAsync(a))
        {
            Assert.True(await third.WaitForCloseAsync());
        }

        Assert.Equal(1, legate.Counter(Stat(a, "downstream_global_cx_overflow")));
        Assert.Equal(0, legate.Counter(Stat(a, "downstream_cx_overflow")));

        // b ignores the global limit: it accepts although two are open, and its connection counts.
        await using var spared = await ServedAsync(b);
        await second.DisposeAsync();
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge(Stat(a, "downstream_cx_active")) == 1, "the closed connection to be gone");
        await using (var stillOver = await RawHttpConnection.ConnectAsync(a))
        {
            Assert.True(await stillOver.WaitForCloseAsync());
        }

        Assert.Equal(2, legate.Counter(Stat(a, "downstream_global_cx_overflow")));

        await spared.DisposeAsync();
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge(Stat(b, "downstream_cx_active")) == 0, "b's connection to be gone");
        await using var admitted = await ServedAsync(a);
        Assert.Equal(0, legate.Counter(Stat(b, "downstream_global_cx_overflow")));
    }

    /// <summary>A connection that Legate accepted and answered (so it is counted).</summary>
    private static async Task<RawHttpConnection> ServedAsync(IPEndPoint endpoint)
    {
        var connection = await RawHttpConnection.ConnectAsync(endpoint);
        await connection.WriteAsync(Get);
        Assert.Equal(200, (await connection.ReadResponseAsync()).Status);
        return connection;
    }

    private static string Stat(IPEndPoint endpoint, string name) =>
        "listener." + Legate.Network.SocketAddresses.Format(endpoint).Replace(':', '_') + "." + name;

    private static string Config(string runtime) =>
        TestConfigs.Admin() + $$"""
        layered_runtime:
          layers:
          - name: static
            static_layer: { {{runtime}} }
          - name: admin
            admin_layer: {}
        static_resources:
          listeners:

        """
        + TestConfigs.DirectResponseListener("a")
        + TestConfigs.DirectResponseListener("b").Replace("  - name: b\n", "  - name: b\n    ignore_global_conn_limit: true\n", StringComparison.Ordinal);
}
