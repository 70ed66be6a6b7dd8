using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>
/// A listener changed over LDS is updated in place: it keeps its socket (same address, no new
/// bind), new connections take the new config, and a connection opened before the change is
/// never served by the new one (it drains with the old generation).
/// </summary>
public sealed class XdsListenerUpdateTests
{
    [Fact]
    public async Task AChangedListenerKeepsItsSocketNewConnectionsTakeTheNewConfigAndOldOnesNeverSeeIt()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", EdsCluster("blue"), EdsCluster("green"));
        xds.Set(EndpointType, "e1", Endpoints("blue", blue.Port), Endpoints("green", green.Port));
        xds.Set(ListenerType, "l1", InlineListener("ingress", Routes("local", "blue")));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port), "--drain-time-s", "30");
        var endpoint = legate.ListenerEndpoint("ingress");

        using var old = new TcpClient();
        await old.ConnectAsync(endpoint);
        var oldStream = old.GetStream();
        Assert.Equal("blue", await GetAsync(oldStream));

        // The listener changes (its route now goes to green): same address, updated in place.
        xds.Set(ListenerType, "l2", InlineListener("ingress", Routes("local", "green")));
        await XdsWait.UntilAsync(async () => await GetOnNewConnectionAsync(endpoint) == "green", "new connections to reach green");
        Assert.Equal(endpoint, legate.ListenerEndpoint("ingress"));
        Assert.Equal(2, XdsWait.Counter(legate, "listener_manager.lds.update_success"));

        // The connection from before the change never sees the new config: it belongs to the old
        // filter-chain generation, which drains (an idle HTTP/1.1 connection is closed by the drain;
        // one still in use would be answered by the old routes).
        Assert.Contains(await GetAsync(oldStream), new[] { "blue", "closed" });
        Assert.Equal("green", await GetOnNewConnectionAsync(endpoint));
    }

    /// <summary>
    /// <c>enable_reuse_port</c> was set on the running socket before bind: an update that keeps the
    /// socket (same address) cannot change it. Envoy rejects such an update with this message;
    /// the listener keeps serving with its config.
    /// </summary>
    [Fact]
    public async Task AnUpdateThatChangesReusePortIsRejectedAndTheListenerKeepsServing()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", EdsCluster("blue"));
        xds.Set(EndpointType, "e1", Endpoints("blue", blue.Port));
        xds.Set(ListenerType, "l1", InlineListener("ingress", Routes("local", "blue")));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        var endpoint = legate.ListenerEndpoint("ingress");
        Assert.Equal("blue", await GetOnNewConnectionAsync(endpoint));

        var changed = InlineListener("ingress", Routes("local", "blue"));
        changed.EnableReusePort = false;
        xds.Set(ListenerType, "l2", changed);
        var nack = await xds.WaitForRequestAsync(r => r.TypeUrl == ListenerType && r.ErrorDetail is not null);
        Assert.Equal("l1", nack.VersionInfo);
        Assert.Contains("Listener ingress: reuse port cannot be changed during an update", nack.ErrorDetail.Message, StringComparison.Ordinal);
        Assert.Equal(1, XdsWait.Counter(legate, "listener_manager.lds.update_rejected"));
        Assert.Equal("blue", await GetOnNewConnectionAsync(endpoint));
        Assert.True(legate.Server.Listeners.Find("ingress")!.ReusePort);
    }

    private static async Task<string> GetOnNewConnectionAsync(System.Net.IPEndPoint endpoint)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(endpoint);
        return await GetAsync(client.GetStream());
    }

    /// <summary>One HTTP/1.1 GET on <paramref name="stream"/> (kept open); the response body.</summary>
    private static async Task<string> GetAsync(NetworkStream stream)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: test\r\n\r\n"));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var buffer = new byte[16 * 1024];
        var received = 0;
        while (true)
        {
            var text = Encoding.ASCII.GetString(buffer, 0, received);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                var lengthLine = text[..end].Split("\r\n").FirstOrDefault(l => l.StartsWith("content-length:", StringComparison.OrdinalIgnoreCase));
                var length = lengthLine is null ? 0 : int.Parse(lengthLine["content-length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
                if (received >= end + 4 + length)
                {
                    var status = text[..text.IndexOf("\r\n", StringComparison.Ordinal)];
                    return status.Contains(" 200 ", StringComparison.Ordinal) ? text.Substring(end + 4, length) : status;
                }
            }

            var read = await stream.ReadAsync(buffer.AsMemory(received), timeout.Token);
            if (read == 0)
            {
                return "closed";
            }

            received += read;
        }
    }
}
