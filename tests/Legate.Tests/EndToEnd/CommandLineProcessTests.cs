using Legate.Server;
using Legate.Tests.Harness;

namespace Legate.Tests.EndToEnd;

/// <summary>The legate executable's flags that exit at once: --version, --help, bad command lines.</summary>
public sealed class CommandLineProcessTests
{
    [Fact]
    public async Task VersionPrintsEnvoyStyleVersionAndExits0()
    {
        await using var legate = LegateProcess.Start("--version");

        Assert.Equal(0, await legate.WaitForExitAsync());
        var line = Assert.Single(legate.Stdout.Lines);
        Assert.Equal($"legate version: {VersionInfo.Full}", line);
        Assert.Matches(@"^legate version: ([0-9a-f]{40}|unknown)/\d+\.\d+\.\d+/Unknown/(RELEASE|DEBUG)/\.NET-\d+\.\d+\.\d+$", line);
    }

    [Fact]
    public async Task HelpPrintsUsageAndExits0()
    {
        await using var legate = LegateProcess.Start("--help");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Contains("USAGE:", legate.Stdout.Text, StringComparison.Ordinal);
        Assert.Contains("--config-path <path>", legate.Stdout.Text, StringComparison.Ordinal);
        Assert.Empty(legate.Stderr.Lines);
    }

    [Fact]
    public async Task UnknownFlagIsAnErrorWithExit1()
    {
        await using var legate = LegateProcess.Start("--foo");

        Assert.Equal(1, await legate.WaitForExitAsync());
        Assert.Equal("error: unknown flag --foo", legate.Stderr.Lines[0]);
        Assert.Empty(legate.Stdout.Lines);
    }

    [Fact]
    public async Task BadValueIsAPreciseErrorWithExit1()
    {
        await using var legate = LegateProcess.Start("--log-level=loud");

        Assert.Equal(1, await legate.WaitForExitAsync());
        Assert.Equal("error: --log-level: invalid value \"loud\"; expected one of trace, debug, info, warning, warn, error, critical, off", legate.Stderr.Lines[0]);
    }
}
