using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Network;

/// <summary>
/// <c>/healthcheck/fail</c> drains the connections of listeners whose <c>drain_type</c> is DEFAULT
/// (Envoy's default), as Envoy's drain manager does while health check failed: a request in flight
/// ends with <c>connection: close</c>, the listener keeps accepting. MODIFY_ONLY listeners are left alone.
/// Connections opened while the server fails health checks drain too: each HTTP/1.1 response closes
/// its connection and each HTTP/2 connection starts its drain sequence, until <c>/healthcheck/ok</c>.
/// </summary>
public sealed class HealthCheckFailDrainTests
{
    [Theory]
    [InlineData("", true)]
    [InlineData("drain_type: MODIFY_ONLY", false)]
    public async Task ARequestInFlightEndsItsConnectionOnlyOnADefaultListener(string listener, bool drains)
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var script = new UpstreamScript(UpstreamResponse.Text("ok")).OnPath("/held", UpstreamResponse.Text("late") with { HoldUntil = release.Task });
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Listener = listener }.Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /first HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Null((await client.ReadResponseAsync()).Header("connection"));

        await client.WriteAsync("GET /held HTTP/1.1\r\nHost: a\r\n\r\n");
        await upstream.Log.WaitForRequestsAsync(2);
        using (var fail = await legate.Http.PostAsync(new Uri(legate.AdminUri, "healthcheck/fail"), null))
        {
            Assert.Equal(HttpStatusCode.OK, fail.StatusCode);
        }

        release.SetResult();
        var held = await client.ReadResponseAsync();
        Assert.Equal(200, held.Status);
        if (drains)
        {
            Assert.Equal("close", held.Header("connection"));
            Assert.True(await client.WaitForCloseAsync(), "the connection stayed open");
            Assert.Equal(1, legate.Counter("http.web.downstream_cx_drain_close"));
        }
        else
        {
            Assert.Null(held.Header("connection"));
            await client.WriteAsync("GET /after HTTP/1.1\r\nHost: a\r\n\r\n");
            Assert.Equal(200, (await client.ReadResponseAsync()).Status);
        }

        // Either way the listener keeps accepting.
        using var fresh = await legate.GetAsync("web", "/fresh");
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
    }

    [Theory]
    [InlineData("", true)]
    [InlineData("drain_type: MODIFY_ONLY", false)]
    public async Task AConnectionOpenedWhileFailedClosesAfterEachResponseUntilHealthy(string listener, bool drains)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Listener = listener }.Build());
        await AdminPostAsync(legate, "healthcheck/fail");

        await using (var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web")))
        {
            await client.WriteAsync("GET /one HTTP/1.1\r\nHost: a\r\n\r\n");
            var response = await client.ReadResponseAsync();
            Assert.Equal(200, response.Status);
            if (drains)
            {
                Assert.Equal("close", response.Header("connection"));
                Assert.True(await client.WaitForCloseAsync(), "the connection stayed open");
                Assert.Equal(1, legate.Counter("http.web.downstream_cx_drain_close"));
            }
            else
            {
                Assert.Null(response.Header("connection"));
                await client.WriteAsync("GET /two HTTP/1.1\r\nHost: a\r\n\r\n");
                Assert.Equal(200, (await client.ReadResponseAsync()).Status);
                Assert.Equal(0, legate.Counter("http.web.downstream_cx_drain_close"));
            }
        }

        await AdminPostAsync(legate, "healthcheck/ok");
        await using var healthy = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        await healthy.WriteAsync("GET /three HTTP/1.1\r\nHost: a\r\n\r\nGET /four HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Null((await healthy.ReadResponseAsync()).Header("connection"));
        Assert.Null((await healthy.ReadResponseAsync()).Header("connection"));
    }

    [Fact]
    public async Task AnHttp2ConnectionOpenedWhileFailedStartsItsDrainSequence()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Codec = "HTTP2", Hcm = "drain_timeout: 0.2s" }.Build());
        await AdminPostAsync(legate, "healthcheck/fail");

        using (var h2 = TestHttp.CreateClient(HttpVersion.Version20))
        {
            Assert.Equal("ok", await h2.GetStringAsync(legate.ListenerUri("web", "/one")));
            await InProcessLegate.WaitUntilAsync(() => legate.Counter("http.web.downstream_cx_drain_close") == 1, "the connection's drain sequence");
            await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_cx_http2_active") == 0, "the drained connection to close");
        }

        await AdminPostAsync(legate, "healthcheck/ok");
        using var healthy = TestHttp.CreateClient(HttpVersion.Version20);
        Assert.Equal("ok", await healthy.GetStringAsync(legate.ListenerUri("web", "/two")));
        Assert.Equal("ok", await healthy.GetStringAsync(legate.ListenerUri("web", "/three")));
        Assert.Equal(2, legate.Counter("http.web.downstream_cx_http2_total"));
        Assert.Equal(1, legate.Counter("http.web.downstream_cx_drain_close"));
    }

    private static async Task AdminPostAsync(InProcessLegate legate, string path)
    {
        using var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, path), null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
