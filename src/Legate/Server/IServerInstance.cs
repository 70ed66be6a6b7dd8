using Envoy.Config.Bootstrap.V3;
using Legate.Server.Logging;
using Legate.Stats;

namespace Legate.Server;

/// <summary>What the admin endpoints may see of the running server (Envoy's <c>Server::Instance</c>).</summary>
internal interface IServerInstance
{
    ServerState State { get; }

    CommandLineOptions Options { get; }

    /// <summary>The bootstrap in effect, after command-line overrides. Never mutate it.</summary>
    Bootstrap Bootstrap { get; }

    /// <summary>When the bootstrap was loaded (<c>last_updated</c> in <c>/config_dump</c>).</summary>
    DateTimeOffset ConfigLoadedAt { get; }

    /// <summary>When this server instance was created.</summary>
    DateTimeOffset StartTime { get; }

    TimeProvider Time { get; }

    LogManager Logs { get; }

    /// <summary>The server's stats; null for an instance that keeps none (the default keeps test fakes small).</summary>
    StatsStore? Stats => null;

    /// <summary>The xDS client, for the dynamic parts of <c>/config_dump</c>; null when the instance has none.</summary>
    Legate.Xds.XdsManager? Xds => null;

    /// <summary>Begins a graceful shutdown; returns at once. Later calls are ignored.</summary>
    void RequestShutdown(string reason);
}
