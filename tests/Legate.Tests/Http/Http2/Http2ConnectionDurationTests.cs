using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Legate.Tests.Harness;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// <c>common_http_protocol_options.max_connection_duration</c> on downstream HTTP/2 connections,
/// with the connection manager's <c>drain_timeout</c> as the grace period before the GOAWAY that
/// refuses new streams: an idle connection gets the shutdown notice (GOAWAY with last-stream-id
/// 2^31-1), then the final GOAWAY (NO_ERROR) and is closed; a busy one
/// finishes its streams and new requests go to a new connection.
/// </summary>
public sealed class Http2ConnectionDurationTests
{
    private static ProxyConfig Config(int port) => new(port)
    {
        Codec = "HTTP2",
        Hcm = "drain_timeout: 0.2s\ncommon_http_protocol_options: { max_connection_duration: 0.5s }",
    };

    [Fact]
    public async Task IdleConnectionGetsGoAwayAndClosesAfterMaxConnectionDuration()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port).Build());
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(legate.ListenerEndpoint("web"));
        await using var stream = new NetworkStream(socket, ownsSocket: false);

        // Preface and an empty SETTINGS frame; then read frames until the GOAWAY.
        await stream.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
        await stream.WriteAsync(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var header = new byte[9];
        var notices = 0;
        while (true)
        {
            await stream.ReadExactlyAsync(header, timeout.Token);
            var length = (header[0] << 16) | (header[1] << 8) | header[2];
            var payload = new byte[length];
            await stream.ReadExactlyAsync(payload, timeout.Token);
            if (header[3] == 7 && (BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7fffffff) == int.MaxValue)
            {
                // The shutdown notice when the duration is reached; the final GOAWAY follows after drain_timeout.
                notices++;
                continue;
            }

            if (header[3] == 7)
            {
                Assert.Equal(1, notices);
                Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7fffffff); // no stream was opened
                Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(payload.AsSpan(4))); // NO_ERROR
                break;
            }
        }

        Assert.Equal(0, await stream.ReadAsync(new byte[1], timeout.Token));
        Assert.Equal(1, legate.Counter("http.web.downstream_cx_max_duration_reached"));
    }

    [Fact]
    public async Task BusyConnectionFinishesItsStreamAndTheNextRequestUsesANewConnection()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("quick"))
            .OnPath("/slow", UpstreamResponse.Text("slow done") with { HoldUntil = release.Task }));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port).Build());
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        var slow = h2.GetStringAsync(legate.ListenerUri("web", "/slow"));
        await upstream.Log.WaitForRequestAsync(r => r.Path == "/slow");
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("http.web.downstream_cx_max_duration_reached") == 1, "max_connection_duration reached");

        // The stream in flight is not cut: it completes after the drain started.
        release.SetResult();
        Assert.Equal("slow done", await slow);

        // Once the first connection is gone, a new request opens another one.
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_cx_active") == 0, "the drained connection closed");
        Assert.Equal("quick", await h2.GetStringAsync(legate.ListenerUri("web", "/quick")));
        Assert.Equal(2, legate.Counter("http.web.downstream_cx_http2_total"));
    }
}
