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

    /// <summary>Where <c>rds</c> route tables come from (the xDS manager); null: rds warns and answers 404.</summary>
    public Legate.Xds.IRdsSource? Rds { get; init; }

    /// <summary>The HCM's <c>stat_prefix</c> (filters name their stats under it).</summary>
    public string StatPrefix { get; init; } = string.Empty;
}
