using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Network;

/// <summary>
/// <c>/healthcheck/fail</c> drains the connections of listeners whose <c>drain_type</c> is DEFAULT
/// (Envoy's default), as Envoy's drain manager does while health check failed: a request in flight
/// ends with <c>connection: close</c>, the listener keeps accepting. MODIFY_ONLY listeners are left alone.
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
}
