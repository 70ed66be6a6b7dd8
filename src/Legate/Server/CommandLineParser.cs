using System.Globalization;
using System.Text;
using Legate.Server.Logging;

namespace Legate.Server;

/// <summary>
/// Parses Envoy's command line. Every flag is one row of a table that also produces
/// <c>--help</c>, so the help cannot forget a flag. Both <c>--flag value</c> and
/// <c>--flag=value</c> work; unknown flags, repeated flags and bad values are errors that name
/// the flag and say what was expected.
/// </summary>
internal static class CommandLineParser
{
    private const string LogLevelNames = LogLevels.AcceptedNames;

    private static readonly Flag[] s_flags =
    [
        new("config-path", 'c', "path",
            "Bootstrap configuration file: YAML, JSON or binary proto (.pb). Without -c and --config-yaml, the built-in demo config is used.",
            (o, v) => o with { ConfigPath = NonEmpty("config-path", v) }),
        new("config-yaml", null, "yaml",
            "Bootstrap YAML, merged over the -c file (repeated fields append), or used alone.",
            (o, v) => o with { ConfigYaml = v }),
        new("mode", null, "serve|validate|init_only",
            "serve (default): serve traffic. validate: check the config, print 'configuration '<path>' OK' or every error, and exit; nothing is bound or contacted. init_only: load and initialize, then exit 0 without serving.",
            (o, v) => o with { Mode = ParseMode(v) }),
        new("log-level", 'l', "level",
            "Default log level: " + LogLevelNames + ". Default: info.",
            (o, v) => o with { LogLevel = ParseLevel("--log-level", v) }),
        new("component-log-level", null, "list",
            "Per-component log levels, e.g. upstream:debug,config:trace. Components are Envoy's logger names (main, config, admin, upstream, http, router, connection, listener, runtime, …).",
            ParseComponentLevels),
        new("log-format", null, "pattern",
            "Log line layout (spdlog syntax): %Y %m %d %H %M %S %T %e %f %F %z %t %P %l %L %n %v %j %%. Default: \"" + LogFormatter.DefaultPattern + "\".",
            (o, v) => o with { LogFormat = v }),
        new("log-path", null, "path",
            "Write logs to this file (appending) instead of stderr.",
            (o, v) => o with { LogPath = NonEmpty("log-path", v) }),
        new("concurrency", null, "n",
            "Envoy's worker thread count; in Legate the number of socket I/O queues per listener. Default: the number of CPUs.",
            (o, v) => o with { Concurrency = ParseUInt("concurrency", v, min: 1) }),
        new("drain-time-s", null, "seconds",
            "Envoy: how long to drain connections. Legate: the longest a graceful shutdown (SIGTERM, /quitquitquit) waits for in-flight requests. Default: 600.",
            (o, v) => o with { DrainTime = TimeSpan.FromSeconds(ParseUInt("drain-time-s", v, min: 0)) }),
        new("parent-shutdown-time-s", null, "seconds",
            "Hot restart: when the parent process is shut down. Default: 900.",
            (o, v) => o with { ParentShutdownTime = TimeSpan.FromSeconds(ParseUInt("parent-shutdown-time-s", v, min: 0)) },
            ActedOn: false),
        new("drain-strategy", null, "gradual|immediate",
            "How drain encourages connections to close. Default: gradual.",
            (o, v) => o with { DrainStrategy = ParseDrainStrategy(v) },
            ActedOn: false),
        new("restart-epoch", null, "n",
            "Hot restart epoch. Default: 0.",
            (o, v) => o with { RestartEpoch = ParseUInt("restart-epoch", v, min: 0) },
            ActedOn: false),
        new("base-id", null, "n",
            "Hot restart shared memory base id. Default: 0.",
            (o, v) => o with { BaseId = ParseULong("base-id", v) },
            ActedOn: false),
        new("service-cluster", null, "name",
            "Overrides node.cluster of the bootstrap.",
            (o, v) => o with { ServiceCluster = v }),
        new("service-node", null, "name",
            "Overrides node.id of the bootstrap.",
            (o, v) => o with { ServiceNode = v }),
        new("service-zone", null, "name",
            "Overrides node.locality.zone of the bootstrap.",
            (o, v) => o with { ServiceZone = v }),
        new("file-flush-interval-msec", null, "ms",
            "How often buffered access log lines are written to their files. Default: 1000 (Envoy: 10000).",
            (o, v) => o with { FileFlushInterval = TimeSpan.FromMilliseconds(ParseUInt("file-flush-interval-msec", v, min: 1)) }),
        new("disable-hot-restart", null, null,
            "Disable hot restart (Legate never hot restarts).",
            (o, _) => o with { DisableHotRestart = true },
            ActedOn: false),
        new("version", null, null,
            "Print the version and exit.",
            (o, _) => o with { Version = true }),
        new("help", 'h', null,
            "Print this help and exit.",
            (o, _) => o with { Help = true }),
    ];

    /// <summary>Parses <paramref name="args"/> (without the program name).</summary>
    /// <exception cref="CommandLineException">The command line is wrong.</exception>
    public static CommandLineOptions Parse(IReadOnlyList<string> args)
    {
        var options = new CommandLineOptions();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string name;
            string? inlineValue = null;
            Flag? flag;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Length > 2)
            {
                var eq = arg.IndexOf('=', StringComparison.Ordinal);
                name = eq < 0 ? arg[2..] : arg[2..eq];
                inlineValue = eq < 0 ? null : arg[(eq + 1)..];
                flag = Array.Find(s_flags, f => f.Name == name);
            }
            else if (arg.Length >= 2 && arg[0] == '-' && arg[1] != '-')
            {
                // -c path, -c=path and -cpath all name the short flag 'c'.
                name = arg[1].ToString();
                flag = Array.Find(s_flags, f => f.Short == arg[1]);
                if (arg.Length > 2)
                {
                    inlineValue = arg[2] == '=' ? arg[3..] : arg[2..];
                }
            }
            else
            {
                throw new CommandLineException($"unexpected argument \"{arg}\"; flags start with --, see --help");
            }

            var written = arg.StartsWith("--", StringComparison.Ordinal) ? "--" + name : "-" + name;
            if (flag is null)
            {
                throw new CommandLineException($"unknown flag {written}");
            }

            if (!seen.Add(flag.Name))
            {
                throw new CommandLineException($"--{flag.Name}: given more than once");
            }

            string value;
            if (flag.ValueName is null)
            {
                if (inlineValue is not null)
                {
                    throw new CommandLineException($"--{flag.Name}: takes no value, got \"{inlineValue}\"");
                }

                value = string.Empty;
            }
            else if (inlineValue is not null)
            {
                value = inlineValue;
            }
            else if (i + 1 < args.Count)
            {
                value = args[++i];
            }
            else
            {
                throw new CommandLineException($"--{flag.Name}: missing value ({flag.ValueName})");
            }

            options = flag.Apply(options, value);
        }

        return options;
    }

    /// <summary>The <c>--help</c> text: every flag, and which ones are accepted but not acted on yet.</summary>
    public static string HelpText()
    {
        var sb = new StringBuilder();
        sb.Append("USAGE:\n\n   legate [options]\n\n");
        sb.Append("Legate, an Envoy-compatible proxy. Flags are Envoy's; both --flag value and --flag=value work.\n\n");
        sb.Append("OPTIONS:\n\n");
        foreach (var flag in s_flags)
        {
            var names = (flag.Short is { } s ? $"-{s}, " : "    ") + "--" + flag.Name + (flag.ValueName is { } v ? $" <{v}>" : string.Empty);
            sb.Append("   ").Append(names).Append('\n');
            sb.Append("        ").Append(flag.Help);
            if (!flag.ActedOn)
            {
                sb.Append(" (Accepted for compatibility, not acted on yet.)");
            }

            sb.Append("\n\n");
        }

        sb.Append("Accepted but not acted on yet: ");
        sb.AppendJoin(", ", s_flags.Where(f => !f.ActedOn).Select(f => "--" + f.Name));
        sb.Append(".\n");
        return sb.ToString();
    }

    private static string NonEmpty(string flag, string value) =>
        value.Length > 0 ? value : throw new CommandLineException($"--{flag}: empty value");

    private static ServerMode ParseMode(string value) => value switch
    {
        "serve" => ServerMode.Serve,
        "validate" => ServerMode.Validate,
        "init_only" => ServerMode.InitOnly,
        _ => throw new CommandLineException($"--mode: invalid value \"{value}\"; expected one of serve, validate, init_only"),
    };

    private static DrainStrategy ParseDrainStrategy(string value) => value switch
    {
        "gradual" => DrainStrategy.Gradual,
        "immediate" => DrainStrategy.Immediate,
        _ => throw new CommandLineException($"--drain-strategy: invalid value \"{value}\"; expected one of gradual, immediate"),
    };

    private static LogLevel ParseLevel(string flag, string value) =>
        LogLevels.TryParse(value, out var level)
            ? level
            : throw new CommandLineException($"{flag}: invalid value \"{value}\"; expected one of {LogLevelNames}");

    private static CommandLineOptions ParseComponentLevels(CommandLineOptions options, string value)
    {
        var levels = new List<KeyValuePair<string, LogLevel>>();
        foreach (var entry in value.Split(','))
        {
            var colon = entry.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || colon == entry.Length - 1)
            {
                throw new CommandLineException($"--component-log-level: invalid entry \"{entry}\"; expected <component>:<level>, e.g. upstream:debug,config:trace");
            }

            var component = entry[..colon];
            var levelName = entry[(colon + 1)..];
            if (!LogComponents.IsKnown(component))
            {
                throw new CommandLineException($"--component-log-level: unknown component \"{component}\"; expected one of {string.Join(", ", LogComponents.All)}");
            }

            if (!LogLevels.TryParse(levelName, out var level))
            {
                throw new CommandLineException($"--component-log-level: invalid level \"{levelName}\" for component \"{component}\"; expected one of {LogLevelNames}");
            }

            levels.Add(new(component, level));
        }

        return options with { ComponentLogLevel = value, ComponentLogLevels = levels };
    }

    private static uint ParseUInt(string flag, string value, uint min) =>
        uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min
            ? n
            : throw new CommandLineException($"--{flag}: invalid value \"{value}\"; expected a whole number from {min} to {uint.MaxValue}");

    private static ulong ParseULong(string flag, string value) =>
        ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new CommandLineException($"--{flag}: invalid value \"{value}\"; expected a whole number from 0 to {ulong.MaxValue}");

    /// <summary>One flag: its long name, optional short letter, value placeholder (null: no value) and help.</summary>
    private sealed record Flag(
        string Name,
        char? Short,
        string? ValueName,
        string Help,
        Func<CommandLineOptions, string, CommandLineOptions> Apply,
        bool ActedOn = true);
}
