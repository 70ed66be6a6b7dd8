using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;
using Xunit.Abstractions;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// HTTP/2 rapid reset (CVE-2023-44487): a raw client opens streams and resets them at once,
/// thousands of times, on an AUTO (h2c) listener. Legate's HTTP/2 framing is Kestrel's, which
/// absorbs the pattern without complaint (no GOAWAY: each pair becomes a stream that ends at once);
/// Legate adds Envoy's defence on top: once 500 streams have closed on a connection and at least
/// half were reset within a second before any response, the connection is closed and
/// <c>downstream_rq_too_many_premature_resets</c> counted. Other clients keep being served and
/// memory and connection counts return to their baseline.
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
            using var response = await client.GetAsync(uri).WaitAsync(TimeSpan.FromSeconds(30));
            var body = await response.Content.ReadAsStringAsync();

            // A failure says why (the local reply's body names the reason; the counters show the circuit breakers).
            Assert.True(response.StatusCode == HttpStatusCode.OK && body == "ok",
                $"request {i} during the flood: {(int)response.StatusCode} \"{body}\"; upstream_rq_pending_overflow " +
                $"{legate.Counter("cluster.backend.upstream_rq_pending_overflow")}, upstream_cx_connect_fail {legate.Counter("cluster.backend.upstream_cx_connect_fail")}, " +
                $"upstream_cx_active {legate.Gauge("cluster.backend.upstream_cx_active")}, downstream_rq_active {legate.Gauge("http.web.downstream_rq_active")}");
        }

        var (sent, outcome) = await attack.WaitAsync(TimeSpan.FromMinutes(2));
        output.WriteLine($"streams opened and reset: {sent}; the flood connection ended by: {outcome}; " +
            $"requests Legate ran: {legate.Counter("http.web.downstream_rq_http2_total")}; upstream saw {upstream.Log.Count}");

        // Envoy's premature-reset defence closed the flooding connection (and only it).
        Assert.Equal("closed", outcome);
        Assert.Equal(1, legate.Counter("http.web.downstream_rq_too_many_premature_resets"));

        // After it: still serving, no connection or stream left behind, memory back near baseline.
        Assert.Equal("ok", await client.GetStringAsync(uri).WaitAsync(TimeSpan.FromSeconds(30)));
        client.Dispose();
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_cx_active") == 0, "every connection closed");
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_rq_active") == 0, "every stream ended");
        var after = Settle();
        output.WriteLine($"GC heap: baseline {baseline / 1024} KiB, after {after / 1024} KiB");
        Assert.True(after < baseline + Slack, $"GC heap grew from {baseline} to {after} bytes");
    }

    [Fact]
    public async Task StreamsThatGetResponsesDoNotCountAsPrematureResets()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        var uri = legate.ListenerUri("web", "/normal");

        // More than the 500-stream threshold on one connection, none reset: the connection stays.
        for (var i = 0; i < 600; i += 20)
        {
            var batch = Enumerable.Range(0, 20).Select(_ => client.GetStringAsync(uri)).ToList();
            Assert.All(await Task.WhenAll(batch), body => Assert.Equal("ok", body));
        }

        Assert.Equal(1, legate.Counter("http.web.downstream_cx_http2_total"));
        Assert.Equal(0, legate.Counter("http.web.downstream_rq_too_many_premature_resets"));
    }

    /// <summary>
    /// Preface, SETTINGS, then HEADERS+RST_STREAM(CANCEL) pairs, then a PING; returns how many pairs
    /// went out and how the connection ended: "goaway 0x…", "closed", or "still open after 60 s".
    /// </summary>
    private static async Task<(int Sent, string Outcome)> FloodAsync(IPEndPoint endpoint)
    {
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var reader = ReadFramesAsync(stream);

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
            for (var i = 0; i < Pairs && !reader.IsCompleted; i++)
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

        var ended = await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(60)));
        return (sent, ended == reader ? await reader : "still open after 60 s");
    }

    /// <summary>Reads frames until a GOAWAY or the end of the connection; acks SETTINGS.</summary>
    private static async Task<string> ReadFramesAsync(NetworkStream stream)
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
                    return $"goaway 0x{BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(4)):x}";
                }
                else if (type == 6 && (flags & 1) != 0)
                {
                    // The server has read the whole flood; its verdict may still be on the way.
                    continue;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException or SocketException)
        {
            return "closed";
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
