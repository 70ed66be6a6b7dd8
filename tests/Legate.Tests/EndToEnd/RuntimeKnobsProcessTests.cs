using Legate.Tests.Harness;

namespace Legate.Tests.EndToEnd;

/// <summary>
/// The executable gives itself <c>DOTNET_TieredPGO_InstrumentOnlyHotCode=0</c> (the runtime reads
/// it only from the environment) by starting itself again in place, however it was started.
/// </summary>
public sealed class RuntimeKnobsProcessTests
{
    private const string Knob = "DOTNET_TieredPGO_InstrumentOnlyHotCode";

    private const string Yaml = """
        admin:
          address:
            socket_address: { address: 127.0.0.1, port_value: 0 }
        """;

    [Fact]
    public async Task StartedWithoutTheKnobItRunsWithItInTheSameProcess()
    {
        await using var legate = LegateProcess.StartWithConfig(Yaml);
        await legate.WaitForReadyAsync();

        // The process the test started (same id) serves, and its environment now has the knob.
        Assert.Equal("0", ReadEnvironment(legate.Pid).GetValueOrDefault(Knob));
    }

    [Fact]
    public async Task AnExplicitSettingWins()
    {
        await using var legate = LegateProcess.StartWithConfig(Yaml, new Dictionary<string, string> { [Knob] = "1" });
        await legate.WaitForReadyAsync();

        Assert.Equal("1", ReadEnvironment(legate.Pid).GetValueOrDefault(Knob));
    }

    [Fact]
    public async Task LegateNoReexecLeavesTheEnvironmentAlone()
    {
        await using var legate = LegateProcess.StartWithConfig(Yaml, new Dictionary<string, string> { ["LEGATE_NO_REEXEC"] = "1" });
        await legate.WaitForReadyAsync();

        Assert.False(ReadEnvironment(legate.Pid).ContainsKey(Knob));
    }

    private static Dictionary<string, string> ReadEnvironment(int pid)
    {
        var entries = File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
            {
                result[entry[..equals]] = entry[(equals + 1)..];
            }
        }

        return result;
    }
}
