using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// Regular CONNECT (RFC 9113 §8.5: <c>:method CONNECT</c> and <c>:authority</c> only) on a
/// downstream HTTP/2 stream, terminated by the router (<c>connect_config</c>) into a raw TCP echo
/// upstream: 200, DATA both ways, END_STREAM half-closes the upstream and the upstream's FIN ends the
/// stream. Without <c>http2_protocol_options.allow_connect</c> the stream is reset, as Envoy's codec
/// does. Spoken frame by frame on a socket (HttpClient cannot send a regular CONNECT over HTTP/2).
/// </summary>
public sealed class Http2ConnectTests
{
    private const string Routes = """
        - match: { connect_matcher: {} }
          route: { cluster: backend, upgrade_configs: [{ upgrade_type: CONNECT, connect_config: {} }] }
        """;

    private static RawUpstream EchoUpstream() => RawUpstream.Start(async connection =>
    {
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await connection.Stream.ReadAsync(buffer)) > 0)
        {
            await connection.WriteAsync(buffer.AsMemory(0, read));
        }

        // EOF from the proxy (END_STREAM from the client): close our side too.
    });

    [Fact]
    public async Task TerminatedConnectOverHttp2RelaysDataAndEndStreamBothWays()
    {
        await using var upstream = EchoUpstream();
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Codec = "HTTP2",
            Hcm = "upgrade_configs: [{ upgrade_type: CONNECT }]\nhttp2_protocol_options: { allow_connect: true }",
            Routes = Routes,
        }.Build());
        await using var h2 = await RawH2.ConnectAsync(legate);

        await h2.SendConnectAsync(1, "example.com:443");
        await h2.SendDataAsync(1, "hello", endStream: false);
        var (status, data, _) = await h2.ReadStreamAsync(1, until: d => d.EndsWith("hello", StringComparison.Ordinal));
        Assert.Equal(0x88, status); // HPACK indexed :status 200
        Assert.Equal("hello", data);

        // END_STREAM half-closes the upstream; the echo server then closes, which ends our stream.
        await h2.SendDataAsync(1, "bye", endStream: true);
        var (_, rest, ended) = await h2.ReadStreamAsync(1, until: null);
        Assert.Equal("bye", rest);
        Assert.True(ended);
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("cluster.backend.upstream_cx_active") == 0, "the upstream connection closed");
    }

    [Fact]
    public async Task ConnectWithoutAllowConnectIsReset()
    {
        await using var upstream = EchoUpstream();
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Codec = "HTTP2",
            Hcm = "upgrade_configs: [{ upgrade_type: CONNECT }]",
            Routes = Routes,
        }.Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var h2 = await RawH2.ConnectAsync(legate);

        await h2.SendConnectAsync(1, "example.com:443");

        Assert.Equal(3, await h2.ReadUntilStreamFrameAsync(1)); // RST_STREAM
        Assert.Equal("http2.violation.of.messaging.rule", (await recorder.WaitForAsync(_ => true)).Details);
        Assert.Equal(0, upstream.ConnectionCount);
    }

    /// <summary>A minimal HTTP/2 client: literal HPACK without Huffman, frames read one by one.</summary>
    private sealed class RawH2 : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(30));

        private RawH2(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
        }

        public static async Task<RawH2> ConnectAsync(InProcessLegate legate)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(legate.ListenerEndpoint("web"));
            var h2 = new RawH2(socket);
            await h2._stream.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
            await h2.WriteFrameAsync(4, 0, 0, []);
            return h2;
        }

        public Task SendConnectAsync(int streamId, string authority)
        {
            var block = new List<byte> { 0x02, 7 };
            block.AddRange("CONNECT"u8.ToArray());
            block.Add(0x01);
            block.Add((byte)authority.Length);
            block.AddRange(Encoding.ASCII.GetBytes(authority));
            return WriteFrameAsync(1, 0x4, streamId, block.ToArray());
        }

        public Task SendDataAsync(int streamId, string text, bool endStream) =>
            WriteFrameAsync(0, endStream ? (byte)1 : (byte)0, streamId, Encoding.ASCII.GetBytes(text));

        /// <summary>Reads frames of <paramref name="streamId"/>: the first HEADERS block byte, DATA text until <paramref name="until"/> holds or END_STREAM.</summary>
        public async Task<(int Status, string Data, bool Ended)> ReadStreamAsync(int streamId, Func<string, bool>? until)
        {
            var status = -1;
            var data = new StringBuilder();
            while (true)
            {
                var (type, flags, id, payload) = await ReadFrameAsync();
                if (id != streamId)
                {
                    continue;
                }

                if (type == 1)
                {
                    status = payload[0];
                }
                else if (type == 0)
                {
                    data.Append(Encoding.ASCII.GetString(payload));
                }
                else if (type == 3)
                {
                    throw new InvalidOperationException("stream reset");
                }

                if ((flags & 0x1) != 0)
                {
                    return (status, data.ToString(), true);
                }

                if (until is not null && until(data.ToString()))
                {
                    return (status, data.ToString(), false);
                }
            }
        }

        /// <summary>The type of the first frame on <paramref name="streamId"/>.</summary>
        public async Task<int> ReadUntilStreamFrameAsync(int streamId)
        {
            while (true)
            {
                var (type, _, id, _) = await ReadFrameAsync();
                if (id == streamId)
                {
                    return type;
                }
            }
        }

        private async Task<(int Type, int Flags, int StreamId, byte[] Payload)> ReadFrameAsync()
        {
            var header = new byte[9];
            await _stream.ReadExactlyAsync(header, _timeout.Token);
            var length = (header[0] << 16) | (header[1] << 8) | header[2];
            var payload = new byte[length];
            await _stream.ReadExactlyAsync(payload, _timeout.Token);
            var id = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) & 0x7fffffff;
            if (header[3] == 4 && (header[4] & 1) == 0)
            {
                await WriteFrameAsync(4, 1, 0, []); // SETTINGS ACK
            }

            return (header[3], header[4], id, payload);
        }

        private async Task WriteFrameAsync(byte type, byte flags, int streamId, byte[] payload)
        {
            var frame = new byte[9 + payload.Length];
            frame[0] = (byte)(payload.Length >> 16);
            frame[1] = (byte)(payload.Length >> 8);
            frame[2] = (byte)payload.Length;
            frame[3] = type;
            frame[4] = flags;
            BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), streamId);
            payload.CopyTo(frame, 9);
            await _stream.WriteAsync(frame, _timeout.Token);
        }

        public async ValueTask DisposeAsync()
        {
            _timeout.Dispose();
            await _stream.DisposeAsync();
            _socket.Dispose();
        }
    }
}
