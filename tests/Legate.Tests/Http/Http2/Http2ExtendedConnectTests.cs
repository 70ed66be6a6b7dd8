using System.Net;
using System.Net.Http;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Legate.Tests.Harness;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// WebSocket over HTTP/2 (RFC 8441 extended CONNECT) from .NET's <see cref="ClientWebSocket"/> on an h2c
/// connection, proxied to an HTTP/1.1 WebSocket upstream as Envoy does with
/// <c>http2_protocol_options.allow_connect</c>: the upstream sees <c>GET</c> with <c>upgrade: websocket</c>,
/// <c>connection: upgrade</c> and a generated <c>sec-websocket-key</c>; its 101 reaches the client as 200,
/// and messages flow both ways through the stream's DATA frames until the close handshake.
/// </summary>
public sealed class Http2ExtendedConnectTests
{
    private const string Hcm = "upgrade_configs: [{ upgrade_type: websocket }]\nhttp2_protocol_options: { allow_connect: true }";

    [Fact]
    public async Task WebSocketOverHttp2ReachesAnHttp1UpstreamAsAnUpgradeAndRelaysMessages()
    {
        var handshake = new TaskCompletionSource<RawRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = EchoUpstream(handshake);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Codec = "HTTP2", Hcm = Hcm, Route = "timeout: 0.5s" }.Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        using var client = Http2Client();

        await client.ConnectAsync(WsUri(legate, "/chat?room=1"), new HttpMessageInvoker(new SocketsHttpHandler()), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.OK, client.HttpStatusCode);
        Assert.False(client.HttpResponseHeaders!.ContainsKey("sec-websocket-accept"));
        Assert.False(client.HttpResponseHeaders.ContainsKey("upgrade"));
        var request = await handshake.Task;
        Assert.Equal("GET /chat?room=1 HTTP/1.1", request.RequestLine);
        Assert.Equal("websocket", request.Header("upgrade"));
        Assert.Equal("upgrade", request.Header("connection")?.ToLowerInvariant());
        Assert.Equal("13", request.Header("sec-websocket-version"));
        Assert.Equal(16, Convert.FromBase64String(request.Header("sec-websocket-key")!).Length);

        // Several exchanges, some after the route timeout would have fired: a tunnel has none.
        foreach (var message in new[] { "hello", new string('x', 200_000), "third" })
        {
            await client.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, true, CancellationToken.None);
            Assert.Equal(message, await ReceiveTextAsync(client));
        }

        Assert.Equal(1, legate.Counter("http.web.downstream_cx_upgrades_total"));
        Assert.Equal(1, legate.Gauge("http.web.downstream_cx_upgrades_active"));

        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        Assert.Equal("bye", client.CloseStatusDescription);
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_cx_upgrades_active") == 0, "the tunnel ended");
        // As in Envoy, the 101 → 200 rewrite is the HTTP/2 codec's: the stream (access logs) keeps the upstream's 101.
        var stream = await recorder.WaitForPathAsync("/chat?room=1");
        Assert.Equal(101, stream.ResponseCode);
        Assert.Empty(upstream.Errors);
    }

    [Fact]
    public async Task ClientKeyIsForwardedAndTheUpstreamAcceptKept()
    {
        // A client that sends its own key (not RFC 8441's way, but allowed) gets the upstream's answer to it.
        await using var upstream = RawUpstream.Serve(request =>
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + Accept(request.Header("sec-websocket-key")!) + "\r\n\r\n");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Codec = "HTTP2", Hcm = Hcm }.Build());
        using var client = Http2Client();
        client.Options.SetRequestHeader("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");

        await client.ConnectAsync(WsUri(legate, "/k"), new HttpMessageInvoker(new SocketsHttpHandler()), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.OK, client.HttpStatusCode);
        Assert.Equal(Accept("dGhlIHNhbXBsZSBub25jZQ=="), Assert.Single(client.HttpResponseHeaders!["sec-websocket-accept"]));
        client.Abort();
    }

    [Fact]
    public async Task UpstreamRefusingTheUpgradeAnswersTheClientNormally()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Codec = "HTTP2", Hcm = Hcm }.Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        using var client = Http2Client();

        await Assert.ThrowsAsync<WebSocketException>(() => client.ConnectAsync(WsUri(legate, "/missing"), new HttpMessageInvoker(new SocketsHttpHandler()), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal(HttpStatusCode.NotFound, client.HttpStatusCode);
        Assert.Equal(404, (await recorder.WaitForPathAsync("/missing")).ResponseCode);
        Assert.Equal(0, legate.Gauge("http.web.downstream_cx_upgrades_active"));
    }

    [Fact]
    public async Task RouteWithoutTheWebSocketUpgradeIs403()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Codec = "HTTP2",
            Hcm = "http2_protocol_options: { allow_connect: true }",
        }.Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        using var client = Http2Client();

        await Assert.ThrowsAsync<WebSocketException>(() => client.ConnectAsync(WsUri(legate, "/ws"), new HttpMessageInvoker(new SocketsHttpHandler()), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal(HttpStatusCode.Forbidden, client.HttpStatusCode);
        Assert.Equal("upgrade_failed", (await recorder.WaitForPathAsync("/ws")).Details);
        Assert.Equal(0, upstream.ConnectionCount);
    }

    [Fact]
    public async Task ExtendedConnectWithoutAllowConnectIsRefused()
    {
        await using var upstream = RawUpstream.Serve(_ => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Codec = "HTTP2",
            Hcm = "upgrade_configs: [{ upgrade_type: websocket }]",
        }.Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        using var client = Http2Client();

        await Assert.ThrowsAnyAsync<Exception>(() => client.ConnectAsync(WsUri(legate, "/ws"), new HttpMessageInvoker(new SocketsHttpHandler()), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal("http2.violation.of.messaging.rule", (await recorder.WaitForPathAsync("/ws")).Details);
        Assert.Equal(0, upstream.ConnectionCount);
    }

    private static ClientWebSocket Http2Client()
    {
        var client = new ClientWebSocket();
        client.Options.HttpVersion = HttpVersion.Version20;
        client.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        client.Options.CollectHttpResponseDetails = true;
        return client;
    }

    private static Uri WsUri(InProcessLegate legate, string path) => new("ws://" + Legate.Network.SocketAddresses.Format(legate.ListenerEndpoint("web")) + path);

    private static string Accept(string key) => Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));

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

    /// <summary>An RFC 6455 server: refuses a handshake without a key, else answers 101 and echoes every message.</summary>
    private static RawUpstream EchoUpstream(TaskCompletionSource<RawRequest> handshake) => RawUpstream.Start(async connection =>
    {
        var request = RawRequest.ParseHead((await connection.ReadHeadAsync())!);
        handshake.TrySetResult(request);
        if (request.Header("sec-websocket-key") is not { } key)
        {
            await connection.WriteAsync("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            return;
        }

        await connection.WriteAsync("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + Accept(key) + "\r\n\r\n");
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
