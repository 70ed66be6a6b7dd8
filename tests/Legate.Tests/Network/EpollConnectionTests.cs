using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Legate.Network.Epoll;
using Microsoft.AspNetCore.Connections;

namespace Legate.Tests.Network;

/// <summary>
/// Legate's epoll socket engine (Linux) against real loopback TCP peers: the pipe contract the
/// codecs rely on (partial consumption, examined-but-unconsumed bytes, cancelled reads, the end
/// of the stream, the buffer limit), flushes that wait for a slow reader, the peer's close and
/// reset, and non-blocking connects.
/// </summary>
public sealed class EpollConnectionTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public void TheEngineRunsOnLinuxUnlessDotnetsIsAskedFor()
    {
        var dotnet = string.Equals(Environment.GetEnvironmentVariable("LEGATE_SOCKET_ENGINE"), "dotnet", StringComparison.OrdinalIgnoreCase);
        Assert.Equal(OperatingSystem.IsLinux() && !dotnet, EpollLoop.IsEnabled);
    }

    [Fact]
    public async Task UnconsumedBytesComeBackAndExaminedOnesWaitForMore()
    {
        await using var pair = await Pair.CreateAsync();
        await pair.Client.SendAsync("hello world"u8.ToArray());

        var first = await pair.Server.Input.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal("hello world", Text(first.Buffer));

        // Consume "hello ", keep "world" unexamined: the next read returns it at once.
        pair.Server.Input.AdvanceTo(first.Buffer.GetPosition(6));
        var second = await pair.Server.Input.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal("world", Text(second.Buffer));

        // Examined but not consumed: the next read waits for new bytes and returns old and new together.
        pair.Server.Input.AdvanceTo(second.Buffer.Start, second.Buffer.End);
        var third = pair.Server.Input.ReadAsync();
        await pair.Client.SendAsync("!"u8.ToArray());
        var result = await third.AsTask().WaitAsync(Timeout);
        Assert.Equal("world!", Text(result.Buffer));
        pair.Server.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task CancelPendingReadWakesAWaitingReadAndTheNextReadStillGetsData()
    {
        await using var pair = await Pair.CreateAsync();
        var pending = pair.Server.Input.ReadAsync();
        Assert.False(pending.IsCompleted);
        pair.Server.Input.CancelPendingRead();
        var cancelled = await pending.AsTask().WaitAsync(Timeout);
        Assert.True(cancelled.IsCanceled);
        pair.Server.Input.AdvanceTo(cancelled.Buffer.End);

        // A cancel with no read pending applies to the next one.
        pair.Server.Input.CancelPendingRead();
        var next = await pair.Server.Input.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.True(next.IsCanceled);
        pair.Server.Input.AdvanceTo(next.Buffer.End);

        await pair.Client.SendAsync("x"u8.ToArray());
        var data = await pair.Server.Input.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.False(data.IsCanceled);
        Assert.Equal("x", Text(data.Buffer));
    }

    [Fact]
    public async Task ACancellationTokenEndsAWaitingRead()
    {
        await using var pair = await Pair.CreateAsync();
        using var cts = new CancellationTokenSource();
        var pending = pair.Server.Input.ReadAsync(cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.AsTask().WaitAsync(Timeout));
    }

    [Fact]
    public async Task ThePeersCloseFiresConnectionClosedAndEndsTheStreamAfterItsData()
    {
        await using var pair = await Pair.CreateAsync();
        var closed = new TaskCompletionSource();
        pair.Server.ConnectionClosed.Register(() => closed.TrySetResult());

        await pair.Client.SendAsync("last words"u8.ToArray());
        pair.Client.Shutdown(SocketShutdown.Send);

        // The close is seen without a read pending (the loop's EPOLLRDHUP), as Kestrel's read-ahead saw it.
        await closed.Task.WaitAsync(Timeout);

        var text = "";
        while (true)
        {
            var result = await pair.Server.Input.ReadAsync().AsTask().WaitAsync(Timeout);
            text += Text(result.Buffer);
            pair.Server.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        Assert.Equal("last words", text);
    }

    [Fact]
    public async Task APeersResetFailsTheReadAndAPeekReportsTheEnd()
    {
        await using var pair = await Pair.CreateAsync();
        var pending = pair.Server.Input.ReadAsync();
        pair.Client.LingerState = new LingerOption(true, 0);
        pair.Client.Close();

        var error = await Assert.ThrowsAnyAsync<Exception>(() => pending.AsTask().WaitAsync(Timeout));
        Assert.True(error is ConnectionResetException or ConnectionAbortedException, error.ToString());

        Assert.True(pair.Server.Input.TryRead(out var peek));
        Assert.True(peek.IsCompleted);
    }

    [Fact]
    public async Task AFlushWaitsForASlowReaderAndEveryByteArrivesInOrder()
    {
        await using var pair = await Pair.CreateAsync();
        var payload = RandomNumberGenerator.GetBytes(64 * 1024 * 1024);

        // Far more than the socket buffers hold: the flush must wait for the client to read.
        payload.CopyTo(pair.Server.Output.GetMemory(payload.Length));
        pair.Server.Output.Advance(payload.Length);
        var flush = pair.Server.Output.FlushAsync();
        Assert.False(flush.IsCompleted);

        var received = new byte[payload.Length];
        var total = 0;
        while (total < received.Length)
        {
            var n = await pair.Client.ReceiveAsync(received.AsMemory(total)).AsTask().WaitAsync(Timeout);
            Assert.NotEqual(0, n);
            total += n;
        }

        var result = await flush.AsTask().WaitAsync(Timeout);
        Assert.False(result.IsCompleted);
        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(received));
    }

    [Fact]
    public async Task UnconsumedInputGrowsToTheBufferLimitAndNoFurther()
    {
        const int limit = 64 * 1024;
        await using var pair = await Pair.CreateAsync(limit);
        var payload = RandomNumberGenerator.GetBytes(4 * limit);
        var send = pair.Client.SendAsync(payload.AsMemory()).AsTask();

        // Examine without consuming: the buffer fills up to the limit, never past it.
        using var all = new MemoryStream();
        while (true)
        {
            var result = await pair.Server.Input.ReadAsync().AsTask().WaitAsync(Timeout);
            var buffered = result.Buffer.Length;
            Assert.True(buffered <= limit, $"{buffered} bytes buffered with a limit of {limit}");
            if (buffered < limit)
            {
                pair.Server.Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                continue;
            }

            foreach (var segment in result.Buffer)
            {
                all.Write(segment.Span);
            }

            pair.Server.Input.AdvanceTo(result.Buffer.End);
            break;
        }

        // Consuming lets the rest in, intact.
        while (all.Length < payload.Length)
        {
            var result = await pair.Server.Input.ReadAsync().AsTask().WaitAsync(Timeout);
            foreach (var segment in result.Buffer)
            {
                all.Write(segment.Span);
            }

            pair.Server.Input.AdvanceTo(result.Buffer.End);
        }

        await send.WaitAsync(Timeout);
        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(all.ToArray()));
    }

    [Fact]
    public async Task AbortFailsAWaitingReadAndThePeerSeesTheClose()
    {
        await using var pair = await Pair.CreateAsync();
        var pending = pair.Server.Input.ReadAsync();
        pair.Server.Abort(new ConnectionAbortedException("test abort"));
        await Assert.ThrowsAsync<ConnectionAbortedException>(() => pending.AsTask().WaitAsync(Timeout));

        var buffer = new byte[16];
        var n = await pair.Client.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(Timeout);
        Assert.Equal(0, n);
    }

    [Fact]
    public async Task WhatTheCodecCompletedTheOutputWithStillGoesOutBeforeTheClose()
    {
        await using var pair = await Pair.CreateAsync();
        "goodbye"u8.CopyTo(pair.Server.Output.GetSpan(7));
        pair.Server.Output.Advance(7);
        await pair.Server.Output.CompleteAsync();
        await pair.Server.Input.CompleteAsync();
        await pair.Server.DisposeAsync();

        using var received = new MemoryStream();
        var buffer = new byte[64];
        while (true)
        {
            var n = await pair.Client.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(Timeout);
            if (n == 0)
            {
                break;
            }

            received.Write(buffer, 0, n);
        }

        Assert.Equal("goodbye", System.Text.Encoding.ASCII.GetString(received.ToArray()));
    }

    [Fact]
    public async Task ConnectingToAClosedPortIsRefused()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var closedPort = (IPEndPoint)probe.LocalEndPoint!;

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var error = await Assert.ThrowsAsync<SocketException>(() => EpollSocket.ConnectAsync(socket, closedPort, CancellationToken.None).AsTask().WaitAsync(Timeout));
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    [Fact]
    public async Task AConnectedSocketCarriesBytesBothWays()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var accept = listener.AcceptAsync();

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var connected = await EpollSocket.ConnectAsync(socket, (IPEndPoint)listener.LocalEndPoint!, CancellationToken.None).AsTask().WaitAsync(Timeout);
        await using var connection = new EpollConnection(connected, 1024 * 1024);
        using var peer = await accept.WaitAsync(Timeout);

        "ping"u8.CopyTo(connection.Output.GetSpan(4));
        connection.Output.Advance(4);
        await connection.Output.FlushAsync().AsTask().WaitAsync(Timeout);
        var buffer = new byte[4];
        Assert.Equal(4, await peer.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(Timeout));
        Assert.Equal("ping", System.Text.Encoding.ASCII.GetString(buffer));

        await peer.SendAsync("pong"u8.ToArray());
        var result = await connection.Input.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal("pong", Text(result.Buffer));
        connection.Input.AdvanceTo(result.Buffer.End);
    }

    private static string Text(ReadOnlySequence<byte> buffer) => System.Text.Encoding.ASCII.GetString(buffer.ToArray());

    /// <summary>A loopback client socket and the accepted end as an <see cref="EpollConnection"/>.</summary>
    private sealed class Pair : IAsyncDisposable
    {
        private Pair(Socket client, EpollConnection server)
        {
            Client = client;
            Server = server;
        }

        public Socket Client { get; }

        public EpollConnection Server { get; }

        public static async Task<Pair> CreateAsync(int bufferLimit = 1024 * 1024)
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen();
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var accept = listener.AcceptAsync();
            await client.ConnectAsync(listener.LocalEndPoint!);
            var accepted = await accept.WaitAsync(Timeout);
            return new Pair(client, new EpollConnection(new EpollSocket(accepted, EpollLoop.Next()), bufferLimit));
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await Server.DisposeAsync();
        }
    }
}
