using Legate.Server.Logging;
using Legate.Stats;
using Legate.Upstream;

namespace Legate.Http;

/// <summary>What filter factories may use when they compile: the server's shared pieces.</summary>
internal sealed class HttpFilterFactoryContext
{
    public required ClusterManager ClusterManager { get; init; }

    public required StatsStore Stats { get; init; }

    public required LogManager Logs { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The bootstrap's node (after --service-cluster/--service-node): Envoy's local info.</summary>
    public Envoy.Config.Core.V3.Node LocalNode { get; init; } = new();

    /// <summary>The server's record of recent local replies (admin dashboard); null in tests that need none.</summary>
    public RecentLocalReplies? RecentLocalReplies { get; init; }
    /// <summary>The server's access log files; null where nothing logs (unit tests of filters).</summary>
    public AccessLog.AccessLogManager? AccessLogs { get; init; }

    /// <summary>The server's runtime; null where there is none (unit tests).</summary>
    public Runtime.RuntimeLoader? Runtime { get; init; }
    /// <summary>Secrets by name (static and file SDS) for TLS contexts.</summary>
    public Legate.Tls.SecretManager Secrets { get; init; } = Legate.Tls.SecretManager.Empty;

    /// <summary>Where <c>rds</c> route tables come from (the xDS manager); null: rds warns and answers 404.</summary>
    public Legate.Xds.IRdsSource? Rds { get; init; }

    /// <summary>Where HTTP filters with <c>config_discovery</c> get their configuration (the xDS manager); null: such a filter is an error.</summary>
    public Legate.Xds.IEcdsSource? Ecds { get; init; }

    /// <summary>The server's tracing providers; null where nothing traces (unit tests).</summary>
    public Tracing.TracerManager? Tracers { get; init; }

    /// <summary>The listener's <c>traffic_direction</c> (OUTBOUND makes the connection manager's spans egress).</summary>
    public Envoy.Config.Core.V3.TrafficDirection TrafficDirection { get; init; }

    /// <summary>This context for a listener with <paramref name="direction"/>.</summary>
    public HttpFilterFactoryContext ForTrafficDirection(Envoy.Config.Core.V3.TrafficDirection direction) =>
        direction == TrafficDirection ? this : new HttpFilterFactoryContext
        {
            ClusterManager = ClusterManager, Stats = Stats, Logs = Logs, Time = Time, LocalNode = LocalNode, RecentLocalReplies = RecentLocalReplies,
            AccessLogs = AccessLogs, Runtime = Runtime, Secrets = Secrets, StatPrefix = StatPrefix, Tracers = Tracers, TrafficDirection = direction, Rds = Rds,
            Taps = Taps, Ecds = Ecds,
        };

    /// <summary>The server's admin-controlled tap filters (<c>POST /tap</c>); null where there is no admin (unit tests).</summary>
    public Legate.Extensions.Filters.Http.Tap.TapAdminRegistry? Taps { get; init; }

    /// <summary>The HCM's <c>stat_prefix</c> (filters name their stats under it).</summary>
    public string StatPrefix { get; init; } = string.Empty;
}
