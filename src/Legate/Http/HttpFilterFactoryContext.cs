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

    /// <summary>Secrets by name (static and file SDS) for TLS contexts.</summary>
    public Legate.Tls.SecretManager Secrets { get; init; } = Legate.Tls.SecretManager.Empty;

    /// <summary>The HCM's <c>stat_prefix</c> (filters name their stats under it).</summary>
    public string StatPrefix { get; init; } = string.Empty;
}
