using System.Buffers.Binary;
using System.Net.Sockets;
using Legate.Tests.Harness;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// A listener drain (<c>/drain_listeners?graceful</c>) on downstream connections, as Envoy's drain
/// sequence: an HTTP/2 connection gets the shutdown notice (GOAWAY, last-stream-id 2^31-1, NO_ERROR) at
/// once, a stream opened after it is still served during the connection manager's <c>drain_timeout</c>,
/// then the final GOAWAY names the last stream and the connection closes; an HTTP/1.1 response during the
/// drain carries <c>connection: close</c>. Spoken frame by frame to see every GOAWAY.
/// </summary>
public sealed class Http2ListenerDrainTests
{
    private const int GoAway = 7;
    private const int Headers = 1;

    [Fact]
    public async Task DrainSendsTheNoticeServesNewStreamsForDrainTimeoutThenTheFinalGoAway()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Codec = "HTTP2", Hcm = "drain_timeout: 2s" }.Build());
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(legate.ListenerEndpoint("web"));
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await stream.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray(), timeout.Token);
        await stream.WriteAsync(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }, timeout.Token);
        Assert.Equal(4, (await ReadFrameAsync(stream, timeout.Token)).Type); // the server's SETTINGS: Kestrel serves the connection

        using (var drain = await legate.Http.PostAsync(new Uri(legate.AdminUri, "drain_listeners?graceful"), null))
        {
            Assert.True(drain.IsSuccessStatusCode);
        }

        var notice = await ReadUntilAsync(stream, GoAway, timeout.Token);
        Assert.Equal(int.MaxValue, BinaryPrimitives.ReadInt32BigEndian(notice.Payload) & 0x7fffffff);
        Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(notice.Payload.AsSpan(4))); // NO_ERROR

        // Counted right after the notice is written, so it may trail the client's read of it.
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("http.web.downstream_cx_drain_close") == 1, "downstream_cx_drain_close 1");

        // A stream racing the notice is still served: HEADERS GET / (HPACK: :method GET, :scheme http, :path /, :authority a).
        byte[] block = [0x82, 0x86, 0x84, 0x01, 0x01, (byte)'a'];
        var frame = new byte[9 + block.Length];
        frame[2] = (byte)block.Length;
        frame[3] = Headers;
        frame[4] = 0x5; // END_STREAM | END_HEADERS
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), 1);
        block.CopyTo(frame, 9);
        await stream.WriteAsync(frame, timeout.Token);

        var response = await ReadUntilAsync(stream, Headers, timeout.Token);
        Assert.Equal(1, response.StreamId);
        Assert.Equal(0x88, response.Payload[0]); // :status 200

        // After drain_timeout: the final GOAWAY names stream 1, and the connection closes.
        var final = await ReadUntilAsync(stream, GoAway, timeout.Token);
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(final.Payload) & 0x7fffffff);
        Assert.Equal(0, await stream.ReadAsync(new byte[1], timeout.Token));
        Assert.Single(upstream.Log.Requests);
    }

    [Fact]
    public async Task Http1ResponseDuringADrainClosesTheConnection()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("done") with { HoldUntil = release.Task });
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Codec = "HTTP1" }.Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("GET /busy HTTP/1.1\r\nHost: a\r\n\r\n");
        await upstream.Log.WaitForRequestsAsync(1);
        using (var drain = await legate.Http.PostAsync(new Uri(legate.AdminUri, "drain_listeners?graceful"), null))
        {
            Assert.True(drain.IsSuccessStatusCode);
        }

        await InProcessLegate.WaitUntilAsync(() => legate.Server.Listeners.Find("web")!.IsDraining, "the listener drains");
        release.SetResult();
        var response = await client.ReadResponseAsync();

        Assert.Equal(200, response.Status);
        Assert.Equal("close", response.Header("connection"));
        await client.WaitForCloseAsync();
        Assert.Equal(1, legate.Counter("http.web.downstream_cx_drain_close"));
    }

    private static async Task<(int Type, int StreamId, byte[] Payload)> ReadUntilAsync(Stream stream, int type, CancellationToken cancellationToken)
    {
        while (true)
        {
            var frame = await ReadFrameAsync(stream, cancellationToken);
            if (frame.Type == type)
            {
                return frame;
            }
        }
    }

    private static async Task<(int Type, int StreamId, byte[] Payload)> ReadFrameAsync(Stream stream, CancellationToken cancellationToken)
    {
        var header = new byte[9];
        await stream.ReadExactlyAsync(header, cancellationToken);
        var length = (header[0] << 16) | (header[1] << 8) | header[2];
        var payload = new byte[length];
        await stream.ReadExactlyAsync(payload, cancellationToken);
        return (header[3], BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) & 0x7fffffff, payload);
    }
}
