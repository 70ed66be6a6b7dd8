using System.Net;
using System.Net.Sockets;
using Legate.Config;
using Legate.Network;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Tests.Harness;

namespace Legate.Tests.EndToEnd;

/// <summary>A failed start never leaves a half-started server: whatever bound is closed again.</summary>
public sealed class StartupFailureTests
{
    [Fact]
    public async Task BindFailureClosesTheAdminAndEarlierListeners()
    {
        var adminPort = FreePort.Get();
        var firstPort = FreePort.Get();
        using var busy = FreePort.Occupy();
        var yaml = TestConfigs.Admin(adminPort) + "static_resources:\n  listeners:\n"
            + TestConfigs.DirectResponseListener("first", firstPort)
            + TestConfigs.DirectResponseListener("second", busy.Port);
        var options = CommandLineParser.Parse(["--config-yaml", yaml]);
        var sink = new CapturingLogSink();
        using var logs = LogManager.Create(options, sink);
        await using var server = LegateServer.Create(options, BootstrapLoader.Load(null, yaml), logs);

        var ex = await Assert.ThrowsAsync<BindException>(() => server.StartAsync(CancellationToken.None));

        Assert.Equal($"listener 'second': cannot bind '127.0.0.1:{busy.Port}': address already in use", ex.Message);
        Assert.NotEqual(ServerState.Live, server.State);

        // Both ports that did bind are free again.
        AssertCanBind(adminPort);
        AssertCanBind(firstPort);
    }

    private static void AssertCanBind(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
        socket.Listen();
    }
}
