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

    /// <summary>The clusters, for admin views of hosts; null for instances without any.</summary>
    Legate.Upstream.ClusterManager? Clusters => null;

    /// <summary>Secrets and the TLS certificates in use (<c>/certs</c>, <c>server.days_until_first_cert_expiring</c>); null when there are none.</summary>
    Legate.Tls.SecretManager? Secrets => null;

    /// <summary>Recent local replies and resets (the dashboard's "why" list); null when not kept.</summary>
    Legate.Http.RecentLocalReplies? RecentLocalReplies => null;

    /// <summary>The admin's access loggers (none by default).</summary>
    AccessLog.AccessLogInstance[] AdminAccessLogs => [];

    /// <summary>Closes and reopens the access log files (log rotation); nothing by default.</summary>
    void ReopenLogs()
    {
    }

    /// <summary>The runtime (<c>/runtime</c>, <c>/runtime_modify</c>); null when there is none.</summary>
    Runtime.RuntimeLoader? Runtime => null;

    /// <summary>The started listeners (<c>/listeners</c>, <c>/drain_listeners</c>).</summary>
    IReadOnlyList<Network.Listener> ActiveListeners => [];

    /// <summary><c>/healthcheck/fail</c> and <c>/healthcheck/ok</c>: while failed the server reports DRAINING and server.live is 0.</summary>
    void SetHealthCheckFailed(bool failed)
    {
    }

    /// <summary>
    /// <c>/drain_listeners</c>: stop accepting on the listeners (all, or the inbound ones); returns at once.
    /// <paramref name="skipExit"/> (with graceful): the connections drain but the listeners keep accepting.
    /// </summary>
    void DrainListeners(bool inboundOnly, bool graceful, bool skipExit = false)
    {
    }

    /// <summary>The tap filters under admin control (<c>POST /tap</c>); null when the instance has none.</summary>
    Legate.Extensions.Filters.Http.Tap.TapAdminRegistry? Taps => null;

    /// <summary>The xDS client, for the dynamic parts of <c>/config_dump</c>; null when the instance has none.</summary>
    Legate.Xds.XdsManager? Xds => null;

    /// <summary>Begins a graceful shutdown; returns at once. Later calls are ignored.</summary>
    void RequestShutdown(string reason);
}
