using System.Text.RegularExpressions;
using Legate.Server.Logging;
using Legate.Tests.Harness;

namespace Legate.Tests.Server;

public sealed class LogFormatterTests
{
    private static readonly DateTimeOffset s_time = new(2026, 11, 21, 11, 45, 24, 123, TimeSpan.FromHours(2));

    [Fact]
    public void DefaultLayoutIsEnvoys()
    {
        var line = new LogFormatter(LogFormatter.DefaultPattern).Format(s_time, 12, LogLevel.Info, "main", "starting main dispatch loop");

        Assert.Equal("[2026-11-21 11:45:24.123][12][info][main] starting main dispatch loop", line);
    }

    [Theory]
    [InlineData("%Y/%m/%d", "2026/11/21")]
    [InlineData("%H-%M-%S", "11-45-24")]
    [InlineData("%T", "11:45:24")]
    [InlineData("%e", "123")]
    [InlineData("%f", "123000")]
    [InlineData("%F", "123000000")]
    [InlineData("%z", "+02:00")]
    [InlineData("%t", "7")]
    [InlineData("%l|%L", "warning|W")]
    [InlineData("%n", "upstream")]
    [InlineData("%v", "say \"hi\"\n")]
    [InlineData("%j", "say \\\"hi\\\"\\n")]
    [InlineData("100%%", "100%")]
    [InlineData("[%g:%#] %s%!x", "[:] x")]
    [InlineData("%q %", "%q %")]
    public void EachFlag(string pattern, string expected)
    {
        var line = new LogFormatter(pattern).Format(s_time, 7, LogLevel.Warning, "upstream", "say \"hi\"\n");

        Assert.Equal(expected, line);
    }

    [Fact]
    public void ComponentLevelsOverrideTheDefault()
    {
        var sink = new CapturingLogSink();
        using var logs = new LogManager(sink, new LogFormatter("%n %l %v"), LogLevel.Info, new Dictionary<string, LogLevel> { ["upstream"] = LogLevel.Debug, ["admin"] = LogLevel.Off });

        logs.Get("upstream").Debug("shown");
        logs.Get("main").Debug("hidden");
        logs.Get("main").Info("shown too");
        logs.Get("admin").Critical("hidden: off");

        Assert.Equal(["upstream debug shown", "main info shown too"], sink.Lines.Lines);
    }

    [Fact]
    public void ConcurrentWritersNeverInterleaveLines()
    {
        var writer = new StringWriter();
        using (var logs = new LogManager(new TextWriterLogSink(writer, ownsWriter: false), new LogFormatter(LogFormatter.DefaultPattern), LogLevel.Info))
        {
            Parallel.For(0, 400, i => logs.Get(i % 2 == 0 ? "main" : "config").Info($"message {i}"));
        }

        var lines = writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(400, lines.Length);
        Assert.All(lines, l => Assert.Matches(new Regex(@"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}\]\[\d+\]\[info\]\[(main|config)\] message \d+$"), l));
    }
}
