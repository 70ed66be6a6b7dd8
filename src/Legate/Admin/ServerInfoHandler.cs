using Google.Protobuf.WellKnownTypes;
using Legate.Server;
using Legate.Server.Logging;
using Microsoft.AspNetCore.Http;
using ProtoCommandLineOptions = Envoy.Admin.V3.CommandLineOptions;
using ProtoServerInfo = Envoy.Admin.V3.ServerInfo;

namespace Legate.Admin;

/// <summary><c>/ready</c> and <c>/server_info</c>: the server's state, version, uptime and command line.</summary>
internal sealed class ServerInfoHandler
{
    /// <summary>Legate has no hot restart; Envoy reports this string when hot restart is disabled.</summary>
    public const string HotRestartVersion = "disabled";

    private readonly IServerInstance _server;

    public ServerInfoHandler(IServerInstance server) => _server = server;

    public static ProtoServerInfo.Types.State ToProto(ServerState state) => state switch
    {
        ServerState.PreInitializing => ProtoServerInfo.Types.State.PreInitializing,
        ServerState.Initializing => ProtoServerInfo.Types.State.Initializing,
        ServerState.Live => ProtoServerInfo.Types.State.Live,
        _ => ProtoServerInfo.Types.State.Draining,
    };

    /// <summary>200 <c>LIVE</c> while serving, else 503 and the state's name, as Envoy.</summary>
    public ValueTask<AdminResponse> ReadyAsync(HttpContext context)
    {
        var state = _server.State;
        var name = state switch
        {
            ServerState.PreInitializing => "PRE_INITIALIZING",
            ServerState.Initializing => "INITIALIZING",
            ServerState.Live => "LIVE",
            _ => "DRAINING",
        };
        return ValueTask.FromResult(AdminResponse.Text(name + "\n", state == ServerState.Live ? 200 : 503));
    }

    public ValueTask<AdminResponse> ServerInfoAsync(HttpContext context) =>
        ValueTask.FromResult(AdminResponse.Json(ProtoJson.FormatWithDefaults(Build())));

    public ProtoServerInfo Build()
    {
        // Envoy reports uptime in whole seconds. With no hot restart there is one epoch.
        var uptime = TimeSpan.FromSeconds(Math.Floor((_server.Time.GetUtcNow() - _server.StartTime).TotalSeconds));
        return new ProtoServerInfo
        {
            Version = VersionInfo.Full,
            State = ToProto(_server.State),
            UptimeCurrentEpoch = Duration.FromTimeSpan(uptime),
            UptimeAllEpochs = Duration.FromTimeSpan(uptime),
            HotRestartVersion = HotRestartVersion,
            CommandLineOptions = ToProto(_server.Options),
            Node = _server.Bootstrap.Node?.Clone(),
        };
    }

    private static ProtoCommandLineOptions ToProto(CommandLineOptions options) => new()
    {
        BaseId = options.BaseId,
        Concurrency = options.Concurrency,
        ConfigPath = options.ConfigPath ?? string.Empty,
        ConfigYaml = options.ConfigYaml ?? string.Empty,
        LogLevel = LogLevels.Name(options.LogLevel),
        ComponentLogLevel = options.ComponentLogLevel,
        LogFormat = options.LogFormat,
        LogPath = options.LogPath ?? string.Empty,
        ServiceCluster = options.ServiceCluster ?? string.Empty,
        ServiceNode = options.ServiceNode ?? string.Empty,
        ServiceZone = options.ServiceZone ?? string.Empty,
        Mode = options.Mode switch
        {
            ServerMode.Validate => ProtoCommandLineOptions.Types.Mode.Validate,
            ServerMode.InitOnly => ProtoCommandLineOptions.Types.Mode.InitOnly,
            _ => ProtoCommandLineOptions.Types.Mode.Serve,
        },
        DisableHotRestart = options.DisableHotRestart,
        RestartEpoch = options.RestartEpoch,
        DrainTime = Duration.FromTimeSpan(options.DrainTime),
        ParentShutdownTime = Duration.FromTimeSpan(options.ParentShutdownTime),
        DrainStrategy = options.DrainStrategy == Server.DrainStrategy.Immediate
            ? ProtoCommandLineOptions.Types.DrainStrategy.Immediate
            : ProtoCommandLineOptions.Types.DrainStrategy.Gradual,
    };
}
