using Legate.Server.Logging;

namespace Legate.Server;

/// <summary>
/// The parsed command line, with Envoy's flag names and defaults. Immutable: the parser builds it
/// with <c>with</c> expressions, and <c>/server_info</c> reports it back.
/// </summary>
internal sealed record CommandLineOptions
{
    /// <summary><c>-c/--config-path</c>: the bootstrap file.</summary>
    public string? ConfigPath { get; init; }

    /// <summary><c>--config-yaml</c>: YAML merged over the bootstrap file (or used alone).</summary>
    public string? ConfigYaml { get; init; }

    public ServerMode Mode { get; init; } = ServerMode.Serve;

    /// <summary><c>-l/--log-level</c>: the level of every component not named in <see cref="ComponentLogLevels"/>.</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Info;

    /// <summary><c>--component-log-level</c> as written, e.g. <c>upstream:debug,config:trace</c>.</summary>
    public string ComponentLogLevel { get; init; } = string.Empty;

    /// <summary><see cref="ComponentLogLevel"/> parsed, in the order written.</summary>
    public IReadOnlyList<KeyValuePair<string, LogLevel>> ComponentLogLevels { get; init; } = [];

    public string LogFormat { get; init; } = LogFormatter.DefaultPattern;

    /// <summary><c>--log-path</c>: log to this file instead of stderr.</summary>
    public string? LogPath { get; init; }

    /// <summary><c>--concurrency</c>: Envoy's worker count; Legate's number of socket I/O queues per listener.</summary>
    public uint Concurrency { get; init; } = (uint)Environment.ProcessorCount;

    public TimeSpan DrainTime { get; init; } = TimeSpan.FromSeconds(600);

    public TimeSpan ParentShutdownTime { get; init; } = TimeSpan.FromSeconds(900);

    public DrainStrategy DrainStrategy { get; init; } = DrainStrategy.Gradual;

    public uint RestartEpoch { get; init; }

    public ulong BaseId { get; init; }

    /// <summary><c>--service-cluster</c>: overrides <c>node.cluster</c>.</summary>
    public string? ServiceCluster { get; init; }

    /// <summary><c>--service-node</c>: overrides <c>node.id</c>.</summary>
    public string? ServiceNode { get; init; }

    /// <summary><c>--service-zone</c>: overrides <c>node.locality.zone</c>.</summary>
    public string? ServiceZone { get; init; }

    public bool DisableHotRestart { get; init; }

    /// <summary><c>--file-flush-interval-msec</c>: how often buffered access log lines are written.</summary>
    public TimeSpan FileFlushInterval { get; init; } = AccessLog.AccessLogManager.DefaultFlushInterval;

    /// <summary><c>-h/--help</c>: print the usage and exit.</summary>
    public bool Help { get; init; }

    /// <summary><c>--version</c>: print the version and exit.</summary>
    public bool Version { get; init; }
}
