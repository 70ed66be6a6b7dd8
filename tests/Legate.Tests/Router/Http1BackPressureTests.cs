using System.Globalization;
using System.Security.Cryptography;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// Flow control through the HTTP/1.1 path: a side that stops reading must stop the other side's
/// writes once the proxy's buffers (per_connection_buffer_limit_bytes on the listener and the
/// cluster) and the sockets' buffers are full, instead of Legate buffering the whole body. The
/// proof is on the writer: the bytes it managed to write stop growing far below the body size, and
/// every byte still arrives intact once the reader resumes.
/// </summary>
public sealed class Http1BackPressureTests
{
    private const long BodySize = 128L * 1024 * 1024;

    /// <summary>
    /// What may legitimately sit between the writer and a reader that stopped: the proxy's buffers
    /// (64 KiB limits here, plus the pipes' segments) and four socket buffers, which Linux grows up
    /// to tcp_wmem/tcp_rmem maxima (4 MiB / 6 MiB by default). Generous, and still 4x below the body.
    /// </summary>
    private const long Bound = 32L * 1024 * 1024;

    private static ProxyConfig Limited(int upstreamPort) => new(upstreamPort)
    {
        Listener = "per_connection_buffer_limit_bytes: 65536",
        Cluster = "per_connection_buffer_limit_bytes: 65536",
        Route = "timeout: 0s",
        Hcm = "stream_idle_timeout: 0s",
    };

    [Fact]
    public async Task AClientThatStopsReadingStopsTheUpstreamsWrites()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var upstreamWriter = new TaskCompletionSource<RawHttpConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(
            async connection =>
            {
                await connection.ReadRequestAsync();
                upstreamWriter.TrySetResult(connection);
                await connection.WriteAsync("HTTP/1.1 200 OK\r\ncontent-length: " + BodySize.ToString(CultureInfo.InvariantCulture) + "\r\n\r\n");
                var block = new byte[64 * 1024];
                for (long offset = 0; offset < BodySize; offset += block.Length)
                {
                    UpstreamResponse.FillGenerated(block, offset);
                    await connection.WriteAsync(block);
                }
            },
            sendBuffer: 64 * 1024);
        await using var legate = await InProcessLegate.StartAsync(Limited(upstream.Port).Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"), receiveBuffer: 64 * 1024);

        await client.WriteAsync("GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
        var head = RawResponse.ParseHead((await client.ReadHeadAsync())!);
        Assert.Equal(200, head.Status);

        // The client reads nothing more: the upstream's writes must stall.
        var writer = await upstreamWriter.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var stalledAt = await WaitForStallAsync(() => writer.BytesWritten);
        Assert.True(stalledAt < Bound, $"the upstream wrote {stalledAt} bytes to a client that reads nothing (bound {Bound})");

        // Reading again lets everything through, byte for byte.
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await client.ReadIntoAsync(BodySize, hash);
        Assert.Equal(GeneratedHash(BodySize), Convert.ToHexString(hash.GetHashAndReset()));
        release.TrySetResult();
    }

    [Fact]
    public async Task AnUpstreamThatStopsReadingStopsTheClientsWrites()
    {
        var readAgain = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(
            async connection =>
            {
                var request = RawRequest.ParseHead((await connection.ReadHeadAsync())!);
                await readAgain.Task;
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                await connection.ReadIntoAsync(long.Parse(request.Header("content-length")!, CultureInfo.InvariantCulture), hash);
                var digest = Convert.ToHexString(hash.GetHashAndReset());
                await connection.WriteAsync("HTTP/1.1 200 OK\r\ncontent-length: " + digest.Length.ToString(CultureInfo.InvariantCulture) + "\r\n\r\n" + digest);
            },
            receiveBuffer: 64 * 1024);
        await using var legate = await InProcessLegate.StartAsync(Limited(upstream.Port).Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        client.Socket.SendBufferSize = 64 * 1024;

        await client.WriteAsync("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: " + BodySize.ToString(CultureInfo.InvariantCulture) + "\r\n\r\n");
        var upload = Task.Run(async () =>
        {
            var block = new byte[64 * 1024];
            for (long offset = 0; offset < BodySize; offset += block.Length)
            {
                UpstreamResponse.FillGenerated(block, offset);
                await client.WriteAsync(block);
            }
        });

        var stalledAt = await WaitForStallAsync(() => client.BytesWritten);
        Assert.True(stalledAt < Bound, $"the client wrote {stalledAt} bytes to an upstream that reads nothing (bound {Bound})");
        Assert.False(upload.IsCompleted);

        readAgain.SetResult();
        await upload.WaitAsync(TimeSpan.FromMinutes(2));
        var response = await client.ReadResponseAsync();
        Assert.Equal(GeneratedHash(BodySize), response.BodyText);
    }

    [Fact]
    public async Task AStalledClientIsTimedOutAndItsConnectionClosedEvenThoughItDoesNotRead()
    {
        var upstreamClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = RawUpstream.Start(
            async connection =>
            {
                try
                {
                    await connection.ReadRequestAsync();
                    await connection.WriteAsync("HTTP/1.1 200 OK\r\ncontent-length: " + BodySize.ToString(CultureInfo.InvariantCulture) + "\r\n\r\n");
                    var block = new byte[64 * 1024];
                    for (long offset = 0; offset < BodySize; offset += block.Length)
                    {
                        await connection.WriteAsync(block);
                    }
                }
                finally
                {
                    upstreamClosed.TrySetResult();
                }
            },
            sendBuffer: 64 * 1024);
        await using var legate = await InProcessLegate.StartAsync((Limited(upstream.Port) with { Hcm = "stream_idle_timeout: 0.5s" }).Build());
        using var recorder = new StreamRecorder(legate.ListenerEndpoint("web"));
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"), receiveBuffer: 64 * 1024);

        await client.WriteAsync("GET /stalled HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal(200, RawResponse.ParseHead((await client.ReadHeadAsync())!).Status);

        // The client never reads again: the stream times out (SI), the upstream request is cancelled,
        // and the connection is closed even though its last bytes can never be delivered.
        var stream = await recorder.WaitForPathAsync("/stalled");
        Assert.Equal("SI", stream.Flags);
        await upstreamClosed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("http.web.downstream_cx_active") == 0, "the stalled connection closed");
    }

    /// <summary>
    /// Waits until <paramref name="progress"/> has moved at least once and then not moved for a
    /// full second (twenty checks in a row); returns where it stopped. A writer that is never
    /// held back runs through the whole body and fails the caller's bound instead.
    /// </summary>
    private static async Task<long> WaitForStallAsync(Func<long> progress)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        long last = -1;
        var still = 0;
        while (DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            var now = progress();
            if (now == last && now > 0)
            {
                if (++still >= 20)
                {
                    return now;
                }
            }
            else
            {
                still = 0;
                last = now;
            }
        }

        return progress();
    }

    private static string GeneratedHash(long size)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        for (long offset = 0; offset < size; offset += buffer.Length)
        {
            var n = (int)Math.Min(buffer.Length, size - offset);
            UpstreamResponse.FillGenerated(buffer.AsSpan(0, n), offset);
            hash.AppendData(buffer, 0, n);
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }
}
