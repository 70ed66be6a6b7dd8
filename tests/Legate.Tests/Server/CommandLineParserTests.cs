using Legate.Server;
using Legate.Server.Logging;

namespace Legate.Tests.Server;

public sealed class CommandLineParserTests
{
    [Fact]
    public void NoArgumentsGiveEnvoysDefaults()
    {
        var o = CommandLineParser.Parse([]);

        Assert.Null(o.ConfigPath);
        Assert.Null(o.ConfigYaml);
        Assert.Equal(ServerMode.Serve, o.Mode);
        Assert.Equal(LogLevel.Info, o.LogLevel);
        Assert.Equal("[%Y-%m-%d %T.%e][%t][%l][%n] %v", o.LogFormat);
        Assert.Null(o.LogPath);
        Assert.Equal((uint)Environment.ProcessorCount, o.Concurrency);
        Assert.Equal(TimeSpan.FromSeconds(600), o.DrainTime);
        Assert.Equal(TimeSpan.FromSeconds(900), o.ParentShutdownTime);
        Assert.Equal(DrainStrategy.Gradual, o.DrainStrategy);
        Assert.Equal(0u, o.RestartEpoch);
        Assert.Equal(0ul, o.BaseId);
        Assert.False(o.DisableHotRestart);
        Assert.False(o.Help);
        Assert.False(o.Version);
    }

    [Fact]
    public void EveryFlagIsParsed()
    {
        var o = CommandLineParser.Parse(
        [
            "--config-path", "/etc/envoy.yaml",
            "--config-yaml", "admin: {}",
            "--mode", "init_only",
            "--log-level", "debug",
            "--component-log-level", "upstream:debug,config:trace",
            "--log-format", "%v",
            "--log-path", "/tmp/legate.log",
            "--concurrency", "3",
            "--drain-time-s", "7",
            "--parent-shutdown-time-s", "11",
            "--drain-strategy", "immediate",
            "--restart-epoch", "2",
            "--base-id", "18446744073709551615",
            "--service-cluster", "c1",
            "--service-node", "n1",
            "--service-zone", "z1",
            "--disable-hot-restart",
            "--version",
            "--help",
        ]);

        Assert.Equal("/etc/envoy.yaml", o.ConfigPath);
        Assert.Equal("admin: {}", o.ConfigYaml);
        Assert.Equal(ServerMode.InitOnly, o.Mode);
        Assert.Equal(LogLevel.Debug, o.LogLevel);
        Assert.Equal("upstream:debug,config:trace", o.ComponentLogLevel);
        Assert.Equal([new("upstream", LogLevel.Debug), new("config", LogLevel.Trace)], o.ComponentLogLevels);
        Assert.Equal("%v", o.LogFormat);
        Assert.Equal("/tmp/legate.log", o.LogPath);
        Assert.Equal(3u, o.Concurrency);
        Assert.Equal(TimeSpan.FromSeconds(7), o.DrainTime);
        Assert.Equal(TimeSpan.FromSeconds(11), o.ParentShutdownTime);
        Assert.Equal(DrainStrategy.Immediate, o.DrainStrategy);
        Assert.Equal(2u, o.RestartEpoch);
        Assert.Equal(ulong.MaxValue, o.BaseId);
        Assert.Equal("c1", o.ServiceCluster);
        Assert.Equal("n1", o.ServiceNode);
        Assert.Equal("z1", o.ServiceZone);
        Assert.True(o.DisableHotRestart);
        Assert.True(o.Version);
        Assert.True(o.Help);
    }

    [Theory]
    [InlineData("--config-path", "/a.yaml")]
    [InlineData("--config-yaml", "admin: {}")]
    [InlineData("--mode", "validate")]
    [InlineData("--log-level", "warn")]
    [InlineData("--component-log-level", "router:off")]
    [InlineData("--log-format", "[%l] %v")]
    [InlineData("--log-path", "/tmp/x.log")]
    [InlineData("--concurrency", "123")]
    [InlineData("--drain-time-s", "0")]
    [InlineData("--parent-shutdown-time-s", "1")]
    [InlineData("--drain-strategy", "immediate")]
    [InlineData("--restart-epoch", "1")]
    [InlineData("--base-id", "9")]
    [InlineData("--service-cluster", "a=b")]
    [InlineData("--service-node", "node")]
    [InlineData("--service-zone", "zone")]
    public void EqualsFormMeansTheSameAsSeparateValue(string flag, string value)
    {
        var separate = CommandLineParser.Parse([flag, value]);
        var joined = CommandLineParser.Parse([flag + "=" + value]);

        Assert.Equal(separate with { ComponentLogLevels = [] }, joined with { ComponentLogLevels = [] });
        Assert.Equal(separate.ComponentLogLevels, joined.ComponentLogLevels);
        Assert.NotEqual(new CommandLineOptions() with { ComponentLogLevels = [] }, joined with { ComponentLogLevels = [] });
    }

    [Fact]
    public void ValueMayContainEqualsSign()
    {
        Assert.Equal("k=v", CommandLineParser.Parse(["--service-node=k=v"]).ServiceNode);
    }

    [Theory]
    [InlineData("-c", "/x.yaml")]
    [InlineData("-c=/x.yaml")]
    [InlineData("-c/x.yaml")]
    public void ShortConfigPathForms(params string[] args)
    {
        Assert.Equal("/x.yaml", CommandLineParser.Parse(args).ConfigPath);
    }

    [Fact]
    public void ShortLogLevelAndHelp()
    {
        var o = CommandLineParser.Parse(["-l", "trace", "-h"]);
        Assert.Equal(LogLevel.Trace, o.LogLevel);
        Assert.True(o.Help);
    }

    [Theory]
    [InlineData("trace", nameof(LogLevel.Trace))]
    [InlineData("debug", nameof(LogLevel.Debug))]
    [InlineData("info", nameof(LogLevel.Info))]
    [InlineData("warning", nameof(LogLevel.Warning))]
    [InlineData("warn", nameof(LogLevel.Warning))]
    [InlineData("error", nameof(LogLevel.Error))]
    [InlineData("critical", nameof(LogLevel.Critical))]
    [InlineData("off", nameof(LogLevel.Off))]
    public void EveryLogLevelName(string name, string level)
    {
        Assert.Equal(Enum.Parse<LogLevel>(level), CommandLineParser.Parse(["--log-level", name]).LogLevel);
    }

    [Theory]
    [InlineData("serve", nameof(ServerMode.Serve))]
    [InlineData("validate", nameof(ServerMode.Validate))]
    [InlineData("init_only", nameof(ServerMode.InitOnly))]
    public void EveryMode(string name, string mode)
    {
        Assert.Equal(Enum.Parse<ServerMode>(mode), CommandLineParser.Parse(["--mode", name]).Mode);
    }

    [Theory]
    [InlineData("unknown flag --foo", "--foo")]
    [InlineData("unknown flag --foo", "--foo=1")]
    [InlineData("unknown flag -x", "-x")]
    [InlineData("--log-level: invalid value \"loud\"; expected one of trace, debug, info, warning, warn, error, critical, off", "--log-level", "loud")]
    [InlineData("-l", "-l", "loud")]
    [InlineData("--mode: invalid value \"check\"; expected one of serve, validate, init_only", "--mode", "check")]
    [InlineData("--drain-strategy: invalid value \"slow\"; expected one of gradual, immediate", "--drain-strategy=slow")]
    [InlineData("--concurrency: invalid value \"0\"; expected a whole number from 1 to 4294967295", "--concurrency", "0")]
    [InlineData("--concurrency: invalid value \"two\"", "--concurrency", "two")]
    [InlineData("--drain-time-s: invalid value \"-1\"", "--drain-time-s", "-1")]
    [InlineData("--restart-epoch: invalid value \"1.5\"", "--restart-epoch", "1.5")]
    [InlineData("--base-id: invalid value \"x\"; expected a whole number from 0 to 18446744073709551615", "--base-id=x")]
    [InlineData("--config-path: missing value (path)", "--config-path")]
    [InlineData("--config-path: empty value", "--config-path=")]
    [InlineData("--log-level: given more than once", "-l", "info", "--log-level", "debug")]
    [InlineData("--disable-hot-restart: takes no value, got \"yes\"", "--disable-hot-restart=yes")]
    [InlineData("unexpected argument \"envoy.yaml\"", "envoy.yaml")]
    [InlineData("--component-log-level: invalid entry \"upstream\"; expected <component>:<level>", "--component-log-level", "upstream")]
    [InlineData("--component-log-level: unknown component \"nope\"; expected one of admin,", "--component-log-level", "nope:debug")]
    [InlineData("--component-log-level: invalid level \"loud\" for component \"http\"", "--component-log-level", "upstream:debug,http:loud")]
    public void BadCommandLinesSayWhatIsWrong(string expected, params string[] args)
    {
        var ex = Assert.Throws<CommandLineException>(() => CommandLineParser.Parse(args));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LogLevelErrorNamesTheShortFlagsLongName()
    {
        var ex = Assert.Throws<CommandLineException>(() => CommandLineParser.Parse(["-l", "loud"]));
        Assert.StartsWith("--log-level: invalid value \"loud\"", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HelpDocumentsEveryFlagAndWhatIsNotActedOn()
    {
        var help = CommandLineParser.HelpText();

        foreach (var flag in new[]
        {
            "-c, --config-path <path>", "--config-yaml", "--mode", "-l, --log-level", "--component-log-level",
            "--log-format", "--log-path", "--concurrency", "--drain-time-s", "--parent-shutdown-time-s",
            "--drain-strategy", "--restart-epoch", "--base-id", "--service-cluster", "--service-node",
            "--service-zone", "--disable-hot-restart", "--version", "-h, --help",
        })
        {
            Assert.Contains(flag, help, StringComparison.Ordinal);
        }

        Assert.Contains(
            "Accepted but not acted on yet: --parent-shutdown-time-s, --drain-strategy, --restart-epoch, --base-id, --disable-hot-restart.",
            help,
            StringComparison.Ordinal);
    }
}
