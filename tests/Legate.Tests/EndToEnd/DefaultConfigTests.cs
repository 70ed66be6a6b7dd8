using System.Net;
using System.Net.Sockets;
using Legate.Config;
using Legate.Server;
using Legate.Tests.Harness;

namespace Legate.Tests.EndToEnd;

/// <summary>
/// The built-in demo config (legate with no -c). In-process with its ports moved to free ones,
/// so it runs in parallel with everything else.
/// </summary>
public sealed class DefaultConfigTests
{
    [Theory]
    [InlineData("/", HttpStatusCode.OK, "Hello from Legate, an Envoy-compatible proxy. The admin is on http://127.0.0.1:9901/\n")]
    [InlineData("/healthz", HttpStatusCode.OK, "ok\n")]
    [InlineData("/healthz/deep", HttpStatusCode.OK, "ok\n")]
    [InlineData("/index.html", HttpStatusCode.NotFound, "")]
    public async Task DemoRoutesAnswer(string path, HttpStatusCode status, string body)
    {
        await using var legate = await StartDemoOnFreePortsAsync();

        using var response = await legate.Http.GetAsync(legate.ListenerUri("demo", path));

        Assert.Equal(status, response.StatusCode);
        Assert.Equal(body, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public void DemoUsesEnvoysUsualPorts()
    {
        var bootstrap = BootstrapLoader.Load(null, null).Bootstrap;

        Assert.Equal(9901u, bootstrap.Admin.Address.SocketAddress.PortValue);
        Assert.Equal(10000u, bootstrap.StaticResources.Listeners.Single(l => l.Name == "demo").Address.SocketAddress.PortValue);
    }

    private static Task<InProcessLegate> StartDemoOnFreePortsAsync()
    {
        var loaded = BootstrapLoader.Load(null, null);
        var bootstrap = loaded.Bootstrap.Clone();
        bootstrap.Admin.Address.SocketAddress.PortValue = 0;
        foreach (var listener in bootstrap.StaticResources.Listeners)
        {
            listener.Address.SocketAddress.PortValue = 0;
        }

        return InProcessLegate.StartAsync(CommandLineParser.Parse([]), loaded with { Bootstrap = bootstrap });
    }
}

/// <summary>
/// The real executable with no flags at all, on the demo's fixed ports 127.0.0.1:10000 and :9901.
/// Not parallel with other tests of this collection; if something else on the machine holds those
/// ports the test fails and says so, rather than being skipped.
/// </summary>
[Collection(FixedDefaultPortsCollection.Name)]
public sealed class DefaultConfigProcessTests
{
    [Fact]
    public async Task LegateWithNoFlagsServesTheDemo()
    {
        AssertFree(10000);
        AssertFree(9901);
        await using var legate = LegateProcess.Start();
        var admin = await legate.WaitForReadyAsync();

        var hello = await legate.Http.GetStringAsync(new Uri("http://127.0.0.1:10000/"));

        Assert.Equal(new Uri("http://127.0.0.1:9901/"), admin);
        Assert.Equal("Hello from Legate, an Envoy-compatible proxy. The admin is on http://127.0.0.1:9901/\n", hello);
        using var quit = await legate.Http.PostAsync(new Uri(admin, "quitquitquit"), null);
        Assert.Equal(0, await legate.WaitForExitAsync());
    }

    private static void AssertFree(int port)
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, port));
        }
        catch (SocketException ex)
        {
            Assert.Fail($"127.0.0.1:{port} is in use by another process ({ex.SocketErrorCode}); this test needs the demo's fixed ports free");
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FixedDefaultPortsCollection
{
    public const string Name = "Fixed default ports 10000 and 9901";
}
