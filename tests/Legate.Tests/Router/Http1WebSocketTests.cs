using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// WebSocket over HTTP/1.1 through Legate: the upgrade is allowed by <c>upgrade_configs</c> (on the
/// connection manager or overridden per route), answered 101 by the upstream, then relayed as raw
/// bytes both ways until a side closes; a route that does not allow it answers 403 as Envoy.
/// The upstream is a <see cref="RawUpstream"/> that does the handshake and then runs .NET's
/// server-side <see cref="WebSocket"/> echo; the client is <see cref="ClientWebSocket"/>.
/// </summary>
public sealed class Http1WebSocketTests
{
    private const string Upgrades = "upgrade_configs: [{ upgrade_type: websocket }]";

    [Fact]
    public async Task WebSocketUpgradeRelaysMessagesBothWaysAndCloses()
    {
        var handshake = new TaskCompletionSource<RawRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = EchoUpstream(handshake);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Hcm = Upgrades, Route = "timeout: 0.5s" }.Build());
        using var client = new ClientWebSocket();

        await client.ConnectAsync(WsUri(legate, "/chat"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        // Several exchanges, some after the route timeout would have fired: a tunnel has none.
        foreach (var message in new[] { "hello", new string('x', 100_000), "third" })
        {
            await client.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, true, CancellationToken.None);
            Assert.Equal(message, await ReceiveTextAsync(client));
        }

        var request = await handshake.Task;
        Assert.Equal("websocket", request.Header("upgrade"));
        Assert.Equal("upgrade", request.Header("connection")?.ToLowerInvariant());
        Assert.Equal(1, legate.Counter("http.web.downstream_cx_upgrades_total"));
        Assert.Equal(1, legate.Gauge("http.web.downstream_cx_upgrades_active"));

        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        Assert.Equal("bye", client.CloseStatusDescription);
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_cx_upgrades_active") == 0, "the tunnel ended");
        Assert.Empty(upstream.Errors);
    }

    [Fact]
    public async Task RouteUpgradeConfigEnablesWebSocketWithoutTheConnectionManagerOne()
    {
        await using var upstream = EchoUpstream(new TaskCompletionSource<RawRequest>());
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Route = "upgrade_configs: [{ upgrade_type: websocket }]" }.Build());
        using var client = new ClientWebSocket();

        await client.ConnectAsync(WsUri(legate, "/r"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        await client.SendAsync("ping"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);

        Assert.Equal("ping", await ReceiveTextAsync(client));
    }

    [Theory]
    [InlineData("", "")]
    [InlineData(Upgrades, "upgrade_configs: [{ upgrade_type: websocket, enabled: false }]")]
    public async Task UpgradeOnARouteWithoutItIs403(string hcm, string route)
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Hcm = hcm, Route = route }.Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        var response = await client.ReadResponseAsync();

        Assert.Equal(403, response.Status);
        Assert.Empty(response.Body);
        Assert.Equal("upgrade_failed", (await recorder.WaitForPathAsync("/ws")).Details);
        Assert.Equal(1, legate.Counter("http.web.downstream_rq_ws_on_non_ws_route"));
        Assert.Equal(0, upstream.ConnectionCount);
    }

    [Fact]
    public async Task UpstreamRefusingTheUpgradeAnswersNormally()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Hcm = Upgrades }.Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        var response = await client.ReadResponseAsync();

        Assert.Equal(404, response.Status);
        Assert.Equal("nope", response.BodyText);
    }

    private static Uri WsUri(InProcessLegate legate, string path) => new("ws://" + Legate.Network.SocketAddresses.Format(legate.ListenerEndpoint("web")) + path);

    private static async Task<string> ReceiveTextAsync(WebSocket socket)
    {
        var buffer = new byte[16 * 1024];
        var text = new MemoryStream();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
            text.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(text.ToArray());
            }
        }
    }

    /// <summary>Accepts the WebSocket handshake (RFC 6455 §4.2.2), then echoes every message and answers the close.</summary>
    private static RawUpstream EchoUpstream(TaskCompletionSource<RawRequest> handshake) => RawUpstream.Start(async connection =>
    {
        var request = RawRequest.ParseHead((await connection.ReadHeadAsync())!);
        handshake.TrySetResult(request);
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(request.Header("sec-websocket-key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        await connection.WriteAsync("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n");
        using var socket = WebSocket.CreateFromStream(connection.Stream, new WebSocketCreationOptions { IsServer = true });
        var buffer = new byte[256 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                await socket.CloseOutputAsync(result.CloseStatus ?? WebSocketCloseStatus.NormalClosure, result.CloseStatusDescription, CancellationToken.None);
                return;
            }

            await socket.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, CancellationToken.None);
        }
    });
}
