using System.Net;
using System.Net.Sockets;
using Legate.Network;
using Legate.Server.Logging;
using Legate.Tests.Harness;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Legate.Tests.Network;

/// <summary>The stop semantics graceful shutdown relies on: stop accepting, finish in-flight, abort at the deadline.</summary>
public sealed class KestrelListenerTests
{
    [Fact]
    public async Task StopLetsInFlightRequestsFinishAndRefusesNewConnections()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var listener = CreateListener();
        await listener.StartAsync(
            async context =>
            {
                entered.TrySetResult();
                await gate.Task;
                await context.Response.WriteAsync("finished");
            },
            CancellationToken.None);
        using var http = TestHttp.CreateClient();
        var endpoint = listener.BoundEndpoint;

        var inFlight = http.GetStringAsync(new Uri($"http://{SocketAddresses.Format(endpoint)}/"));
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var stop = listener.StopAsync(CancellationToken.None);

        // The listening socket is closed at once...
        await AssertRefusedAsync(endpoint);

        // ...but the stop waits for the request already being served.
        Assert.False(stop.IsCompleted);
        gate.SetResult();
        Assert.Equal("finished", await inFlight.WaitAsync(TimeSpan.FromSeconds(10)));
        await stop.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task StopAbortsWhatIsLeftWhenTheDeadlinePasses()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var listener = CreateListener();
        await listener.StartAsync(
            async context =>
            {
                entered.TrySetResult();
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            },
            CancellationToken.None);
        using var http = TestHttp.CreateClient();

        var inFlight = http.GetAsync(new Uri($"http://{SocketAddresses.Format(listener.BoundEndpoint)}/"));
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        using var deadline = new CancellationTokenSource();
        var stop = listener.StopAsync(deadline.Token);
        Assert.False(stop.IsCompleted);
        await deadline.CancelAsync();

        await stop.WaitAsync(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<HttpRequestException>(() => inFlight.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task PortZeroReportsTheBoundPort()
    {
        await using var listener = CreateListener();
        await listener.StartAsync(_ => Task.CompletedTask, CancellationToken.None);

        Assert.NotEqual(0, listener.BoundEndpoint.Port);
        Assert.Equal(IPAddress.Loopback, listener.BoundEndpoint.Address);
    }

    private static KestrelListener CreateListener()
    {
        var logs = new LogManager(new CapturingLogSink(), new LogFormatter("%v"), LogLevel.Info);
        return new KestrelListener(new IPEndPoint(IPAddress.Loopback, 0), HttpProtocols.Http1, 1, logs.Get(LogComponents.Http));
    }

    /// <summary>
    /// Waits until connecting is refused. Stopping closes the listening socket asynchronously, so a
    /// connect racing it may still land in the backlog: poll until refused, within a deadline.
    /// </summary>
    private static async Task AssertRefusedAsync(IPEndPoint endpoint)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(endpoint, deadline.Token);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused)
            {
                return;
            }

            await Task.Delay(10, deadline.Token);
        }
    }
}
