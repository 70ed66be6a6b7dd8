using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;
using Xunit.Abstractions;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// HTTP/2 rapid reset (CVE-2023-44487): a raw client opens streams and resets them at once,
/// thousands of times, on an AUTO (h2c) listener. Legate's HTTP/2 framing is Kestrel's; what
/// Kestrel does about it is recorded (docs/compatibility.md), and the proof is that other clients
/// keep being served and memory and connection counts return to their baseline.
/// </summary>
[Collection(nameof(MemoryBaselineCollection))]
public sealed class Http2RapidResetTests(ITestOutputHelper output)
{
    private const int Pairs = 20_000;
    private const long Slack = 64L * 1024 * 1024;

    [Fact]
    public async Task RapidResetFloodDoesNotStopServiceOrLeakMemory()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        var uri = legate.ListenerUri("web", "/normal");
        Assert.Equal("ok", await client.GetStringAsync(uri));
        var baseline = Settle();

        var attack = FloodAsync(legate.ListenerEndpoint("web"));

        // Served during the flood, on another connection.
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("ok", await client.GetStringAsync(uri).WaitAsync(TimeSpan.FromSeconds(30)));
        }

        var (sent, goAway, errorCode, lastStreamId) = await attack.WaitAsync(TimeSpan.FromMinutes(2));
        output.WriteLine($"streams opened and reset: {sent}; GOAWAY: {goAway} (error code 0x{errorCode:x}, last stream {lastStreamId}); " +
            $"requests Legate ran: {legate.Counter("http.web.downstream_rq_http2_total")}; upstream saw {upstream.Log.Count}");

        // After it: still serving, no connection or stream left behind, memory back near baseline.
        Assert.Equal("ok", await client.GetStringAsync(uri).WaitAsync(TimeSpan.FromSeconds(30)));
        client.Dispose();
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_cx_active") == 0, "every connection closed");
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_rq_active") == 0, "every stream ended");
        var after = Settle();
        output.WriteLine($"GC heap: baseline {baseline / 1024} KiB, after {after / 1024} KiB");
        Assert.True(after < baseline + Slack, $"GC heap grew from {baseline} to {after} bytes");

        // Kestrel's defence (since the CVE fix) ends an abusive connection with GOAWAY; if it let
        // every pair through, each reset stream must at least have been ended as DC.
        if (goAway)
        {
            Assert.Equal(0xbu, errorCode); // ENHANCE_YOUR_CALM
        }
        else
        {
            Assert.Equal(Pairs, sent);
        }
    }

    /// <summary>Preface, SETTINGS, then HEADERS+RST_STREAM(CANCEL) pairs; returns what the server did.</summary>
    private static async Task<(int Sent, bool GoAway, uint ErrorCode, int LastStreamId)> FloodAsync(IPEndPoint endpoint)
    {
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var goAway = new TaskCompletionSource<(uint Code, int Last)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reader = ReadFramesAsync(stream, goAway);

        var block = new MemoryStream();
        foreach (var (name, value) in new[] { (":method", "GET"), (":scheme", "http"), (":path", "/flood"), (":authority", "test") })
        {
            block.WriteByte(0);
            block.WriteByte((byte)name.Length);
            block.Write(Encoding.ASCII.GetBytes(name));
            block.WriteByte((byte)value.Length);
            block.Write(Encoding.ASCII.GetBytes(value));
        }

        var headers = block.ToArray();
        var batch = new MemoryStream();
        batch.Write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8);
        WriteFrame(batch, type: 4, flags: 0, streamId: 0, []);
        var sent = 0;
        try
        {
            for (var i = 0; i < Pairs && !goAway.Task.IsCompleted; i++)
            {
                var id = (i * 2) + 1;
                WriteFrame(batch, type: 1, flags: 0x5, streamId: id, headers);
                WriteFrame(batch, type: 3, flags: 0, streamId: id, [0, 0, 0, 8]);
                sent++;
                if (batch.Length > 32 * 1024)
                {
                    await stream.WriteAsync(batch.GetBuffer().AsMemory(0, (int)batch.Length));
                    batch.SetLength(0);
                }
            }

            await stream.WriteAsync(batch.GetBuffer().AsMemory(0, (int)batch.Length));
        }
        catch (IOException)
        {
            // The server closed the connection mid-flood.
        }

        // Ask for a PING answer so we know the server has read everything (or has given up on us).
        try
        {
            var ping = new MemoryStream();
            WriteFrame(ping, type: 6, flags: 0, streamId: 0, new byte[8]);
            await stream.WriteAsync(ping.ToArray());
        }
        catch (IOException)
        {
        }

        await reader.WaitAsync(TimeSpan.FromMinutes(1));
        if (goAway.Task.IsCompleted)
        {
            var (code, last) = await goAway.Task;
            return (sent, true, code, last);
        }

        return (sent, false, 0, 0);
    }

    /// <summary>Reads frames until a PING ack, a GOAWAY or the end; acks SETTINGS.</summary>
    private static async Task ReadFramesAsync(NetworkStream stream, TaskCompletionSource<(uint Code, int Last)> goAway)
    {
        var header = new byte[9];
        try
        {
            while (true)
            {
                await stream.ReadExactlyAsync(header);
                var length = (header[0] << 16) | (header[1] << 8) | header[2];
                var payload = new byte[length];
                await stream.ReadExactlyAsync(payload);
                int type = header[3], flags = header[4];
                if (type == 4 && (flags & 1) == 0)
                {
                    await stream.WriteAsync(new byte[] { 0, 0, 0, 4, 1, 0, 0, 0, 0 });
                }
                else if (type == 7)
                {
                    goAway.TrySetResult((BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(4)), (int)(BinaryPrimitives.ReadUInt32BigEndian(payload) & 0x7FFFFFFF)));
                    return;
                }
                else if (type == 6 && (flags & 1) != 0)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException or SocketException)
        {
        }
    }

    private static void WriteFrame(Stream output, int type, int flags, int streamId, byte[] payload)
    {
        Span<byte> header = stackalloc byte[9];
        header[0] = (byte)(payload.Length >> 16);
        header[1] = (byte)(payload.Length >> 8);
        header[2] = (byte)payload.Length;
        header[3] = (byte)type;
        header[4] = (byte)flags;
        BinaryPrimitives.WriteUInt32BigEndian(header[5..], (uint)streamId);
        output.Write(header);
        output.Write(payload);
    }

    private static long Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
