using System.Net;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Legate.Tests.Harness;

namespace Legate.Tests.EndToEnd;

/// <summary>The legate process from start to exit: readiness, signals, /quitquitquit, bind failures, logs.</summary>
public sealed class LifecycleProcessTests
{
    private static readonly Regex s_envoyLogLine = new(@"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}\]\[\d+\]\[(trace|debug|info|warning|error|critical)\]\[[a-z0-9_]+\] \S.*$");

    [Theory]
    [InlineData(PosixSignal.SIGTERM, "SIGTERM")]
    [InlineData(PosixSignal.SIGINT, "SIGINT")]
    public async Task SignalShutsDownGracefullyWithExit0(PosixSignal signal, string name)
    {
        await using var legate = await LegateProcess.StartServingAsync(TestConfigs.Simple("web"));
        var web = await legate.WaitForListenerAsync("web");
        Assert.Equal("hello\n", await legate.Http.GetStringAsync(new Uri($"http://{web}/")));

        legate.Signal(signal);

        Assert.Equal(0, await legate.WaitForExitAsync());
        var log = legate.Stderr.Text;
        Assert.Contains($"[warning][main] caught {name}", log, StringComparison.Ordinal);
        Assert.Contains($"[info][main] shutting down server instance ({name})", log, StringComparison.Ordinal);
        Assert.EndsWith("[info][main] exiting", legate.Stderr.Lines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task SigintIsCaughtEvenWhenTheProcessStartedWithItIgnored()
    {
        // As `legate … &` from a script (or a CI step run in the background) starts it. Envoy
        // catches SIGINT regardless; .NET alone would leave it ignored and this would time out.
        await using var legate = await LegateProcess.StartServingWithSigintIgnoredAsync(TestConfigs.Simple("web"));
        var web = await legate.WaitForListenerAsync("web");
        Assert.Equal("hello\n", await legate.Http.GetStringAsync(new Uri($"http://{web}/")));

        legate.Signal(PosixSignal.SIGINT);

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Contains("[warning][main] caught SIGINT", legate.Stderr.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QuitQuitQuitExits0AndGetIsRefused()
    {
        await using var legate = await LegateProcess.StartServingAsync(TestConfigs.Simple());
        var admin = await legate.WaitForAdminUriAsync();

        using var get = await legate.Http.GetAsync(new Uri(admin, "quitquitquit"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        Assert.False(legate.HasExited);

        using var post = await legate.Http.PostAsync(new Uri(admin, "quitquitquit"), null);
        Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        Assert.Equal("OK\n", await post.Content.ReadAsStringAsync());
        Assert.Equal(0, await legate.WaitForExitAsync());
    }

    [Fact]
    public async Task StartupLogsSayWhatListensWhereInEnvoysLayout()
    {
        await using var legate = await LegateProcess.StartServingAsync(TestConfigs.Simple("demo"));
        var admin = await legate.WaitForAdminUriAsync();
        var listener = await legate.WaitForListenerAsync("demo");

        Assert.Equal(IPAddress.Loopback, listener.Address);
        Assert.NotEqual(0, listener.Port);
        Assert.Contains(legate.Stderr.Lines, l => l.EndsWith($"[info][admin] admin listening on {admin.ToString().TrimEnd('/')}", StringComparison.Ordinal));
        Assert.Contains(legate.Stderr.Lines, l => l.EndsWith($"[info][listener] listener 'demo' listening on 127.0.0.1:{listener.Port}", StringComparison.Ordinal));
        Assert.All(legate.Stderr.Lines, l => Assert.Matches(s_envoyLogLine, l));
        Assert.Empty(legate.Stdout.Lines);
    }

    [Fact]
    public async Task ListenerPortInUseIsAClearErrorWithExit1()
    {
        using var busy = FreePort.Occupy();
        await using var legate = LegateProcess.StartWithConfig(TestConfigs.Simple("busy", listenerPort: busy.Port));

        Assert.Equal(1, await legate.WaitForExitAsync());
        Assert.Contains(
            legate.Stderr.Lines,
            l => l.EndsWith($"[critical][main] listener 'busy': cannot bind '127.0.0.1:{busy.Port}': address already in use", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AdminPortInUseIsAClearErrorWithExit1()
    {
        using var busy = FreePort.Occupy();
        await using var legate = LegateProcess.StartWithConfig(TestConfigs.Simple(adminPort: busy.Port));

        Assert.Equal(1, await legate.WaitForExitAsync());
        Assert.Contains(
            legate.Stderr.Lines,
            l => l.EndsWith($"[critical][main] admin: cannot bind '127.0.0.1:{busy.Port}': address already in use", StringComparison.Ordinal));
        Assert.DoesNotContain(legate.Stderr.Lines, l => l.Contains("listening on", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ConfigErrorInServeModeIsCriticalWithExit1()
    {
        var yaml = TestConfigs.Simple().Replace("address: 127.0.0.1, port_value: 0 }\n    filter_chains", "address: nowhere, port_value: 0 }\n    filter_chains", StringComparison.Ordinal);
        await using var legate = LegateProcess.StartWithConfig(yaml);

        Assert.Equal(1, await legate.WaitForExitAsync());
        Assert.Contains(legate.Stderr.Lines, l => l.Contains("[critical][main] error initializing configuration '", StringComparison.Ordinal));
        Assert.Contains(legate.Stderr.Lines, l => l.Contains("[critical][main] static_resources.listeners[0].address.socket_address.address (line ", StringComparison.Ordinal) && l.EndsWith("malformed IP address \"nowhere\": a bound address must be an IPv4 or IPv6 literal", StringComparison.Ordinal));
        Assert.DoesNotContain(legate.Stderr.Lines, l => l.Contains("listening on", StringComparison.Ordinal));
    }

    [Fact]
    public async Task InitOnlyInitializesAndExits0WithoutServing()
    {
        using var busy = FreePort.Occupy();
        await using var legate = LegateProcess.StartWithConfig(TestConfigs.Simple(listenerPort: busy.Port), "--mode", "init_only");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Contains(legate.Stderr.Lines, l => l.Contains("[info][main] init_only mode: configuration '", StringComparison.Ordinal));
        Assert.DoesNotContain(legate.Stderr.Lines, l => l.Contains("listening on", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LogPathWritesLogsToTheFileNotStderr()
    {
        var logPath = Path.Combine(Path.GetTempPath(), $"legate-test-{Guid.NewGuid():N}.log");
        try
        {
            await using (var legate = LegateProcess.StartWithConfig(TestConfigs.Simple(), "--log-path", logPath, "--mode", "init_only"))
            {
                Assert.Equal(0, await legate.WaitForExitAsync());
                Assert.Empty(legate.Stderr.Lines);
            }

            var lines = await File.ReadAllLinesAsync(logPath);
            Assert.Contains(lines, l => l.Contains("[info][main] init_only mode", StringComparison.Ordinal));
            Assert.All(lines, l => Assert.Matches(s_envoyLogLine, l));
        }
        finally
        {
            File.Delete(logPath);
        }
    }

    [Fact]
    public async Task LogLevelAndFormatApply()
    {
        await using var legate = LegateProcess.StartWithConfig(
            TestConfigs.Simple(), "--mode", "init_only", "--log-level", "warning", "--component-log-level", "main:debug", "--log-format", "%l|%n|%v");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Contains("info|main|init_only mode: configuration '", legate.Stderr.Text, StringComparison.Ordinal);
        Assert.All(legate.Stderr.Lines, l => Assert.StartsWith("info|main|", l, StringComparison.Ordinal));
    }
}
