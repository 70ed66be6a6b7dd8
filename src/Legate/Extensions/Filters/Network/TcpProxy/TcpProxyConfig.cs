using Legate.AccessLog;
using Legate.Config;
using Legate.Http;
using Legate.Stats;
using Legate.Upstream;
using ConnectMode = Envoy.Extensions.Filters.Network.TcpProxy.V3.UpstreamConnectMode;
using Proto = Envoy.Extensions.Filters.Network.TcpProxy.V3.TcpProxy;

namespace Legate.Extensions.Filters.Network.TcpProxy;

/// <summary>A compiled <c>envoy.filters.network.tcp_proxy</c>: where connections go and how long they may live.</summary>
internal sealed class TcpProxyConfig
{
    /// <summary>Envoy's default idle timeout.</summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromHours(1);

    private readonly (string Name, long Weight)[] _clusters;
    private readonly long _totalWeight;

    private TcpProxyConfig((string, long)[] clusters, TcpProxyStats stats, ClusterManager clusterManager)
    {
        _clusters = clusters;
        _totalWeight = clusters.Sum(c => c.Item2);
        Stats = stats;
        ClusterManager = clusterManager;
    }

    public TcpProxyStats Stats { get; }

    public ClusterManager ClusterManager { get; }

    /// <summary>Zero = no idle timeout.</summary>
    public TimeSpan IdleTimeout { get; private init; } = DefaultIdleTimeout;

    /// <summary>Zero = unlimited.</summary>
    public TimeSpan MaxDownstreamConnectionDuration { get; private init; }

    public int MaxConnectAttempts { get; private init; } = 1;

    /// <summary>The filter's <c>access_log</c>: one entry when the connection ends (and see below).</summary>
    public AccessLogInstance[] AccessLogs { get; private init; } = [];

    /// <summary><c>access_log_options.flush_access_log_on_connected</c>: one more entry once the upstream is connected.</summary>
    public bool FlushAccessLogOnConnected { get; private init; }

    /// <summary><c>access_log_options.access_log_flush_interval</c>: an entry every interval while the connection lives; zero = none.</summary>
    public TimeSpan AccessLogFlushInterval { get; private init; }

    /// <summary><c>hash_policy</c> <c>source_ip</c>: the downstream address is hashed for ring hash and Maglev.</summary>
    public bool HashSourceIp { get; private init; }

    /// <summary>Bytes read from one side before waiting for the other side to take them (per direction).</summary>
    public int BufferBytes { get; private init; }

    /// <summary>
    /// <c>upstream_connect_mode</c>. ON_DOWNSTREAM_TLS_HANDSHAKE connects at once as IMMEDIATE does:
    /// a Legate listener completes the downstream TLS handshake before the network filters run.
    /// </summary>
    public ConnectMode ConnectMode { get; private init; }

    /// <summary><c>max_early_data_bytes</c>: downstream bytes read and held before the upstream is connected; null = none read.</summary>
    public int? MaxEarlyDataBytes { get; private init; }

    public static TcpProxyConfig? Compile(Proto proto, string path, ConfigErrors errors, StatsStore stats, ClusterManager clusterManager, int bufferLimit, HttpFilterFactoryContext? context = null)
    {
        (string, long)[] clusters;
        switch (proto.ClusterSpecifierCase)
        {
            case Proto.ClusterSpecifierOneofCase.Cluster:
                clusters = [(proto.Cluster, 1)];
                break;
            case Proto.ClusterSpecifierOneofCase.WeightedClusters:
                clusters = proto.WeightedClusters.Clusters.Select(c => (c.Name, (long)c.Weight)).ToArray();
                if (clusters.Sum(c => c.Item2) == 0)
                {
                    errors.Add(FieldPath.Field(path, "weighted_clusters"), "the cluster weights add up to 0");
                    return null;
                }

                break;
            default:
                errors.Add(path, "one of cluster or weighted_clusters must be set");
                return null;
        }

        if (proto.TunnelingConfig is not null)
        {
            errors.Add(FieldPath.Field(path, "tunneling_config"), "tunneling over HTTP is not supported yet");
            return null;
        }

        if (proto.OnDemand is not null)
        {
            errors.Add(FieldPath.Field(path, "on_demand"), "on-demand clusters are not supported yet");
            return null;
        }

        AccessLogInstance[] accessLogs = [];
        if (proto.AccessLog.Count > 0)
        {
            if (context?.AccessLogs is not { } manager)
            {
                errors.Add(FieldPath.Field(path, "access_log"), "access logs need the server's access log manager");
                return null;
            }

            accessLogs = AccessLogFactory.Compile(proto.AccessLog, FieldPath.Field(path, "access_log"), errors, manager, context.Runtime);
        }

        // access_log_options replaces the two deprecated top-level fields; Envoy rejects both together.
#pragma warning disable CS0612 // the deprecated fields are still honoured, as Envoy does
        var flushOnConnected = proto.FlushAccessLogOnConnected;
        var flushInterval = proto.AccessLogFlushInterval?.ToTimeSpan() ?? TimeSpan.Zero;
        if (proto.AccessLogOptions is { } options)
        {
            if (proto.FlushAccessLogOnConnected || proto.AccessLogFlushInterval is not null)
#pragma warning restore CS0612
            {
                errors.Add(FieldPath.Field(path, "access_log_options"), "access_log_options cannot be set together with the deprecated flush_access_log_on_connected / access_log_flush_interval");
                return null;
            }

            flushOnConnected = options.FlushAccessLogOnConnected;
            flushInterval = options.AccessLogFlushInterval?.ToTimeSpan() ?? TimeSpan.Zero;
        }

        // Envoy's hash_policy holds at most one policy (PGV max_items 1): source_ip, or a filter
        // state key. No filter state objects exist in Legate, so that one never yields a hash.
        var hashSourceIp = proto.HashPolicy.Count > 0 && proto.HashPolicy[0].PolicySpecifierCase == Envoy.Type.V3.HashPolicy.PolicySpecifierOneofCase.SourceIp;

        // Envoy's delayed upstream connect: every mode but IMMEDIATE has to read the downstream
        // before connecting, so it needs the bound on what that read may hold.
        var connectMode = proto.UpstreamConnectMode;
        if (!System.Enum.IsDefined(connectMode))
        {
            errors.Add(FieldPath.Field(path, "upstream_connect_mode"), $"unknown upstream connect mode {(int)connectMode} (IMMEDIATE, ON_DOWNSTREAM_DATA or ON_DOWNSTREAM_TLS_HANDSHAKE)");
            return null;
        }

        if (connectMode != ConnectMode.Immediate && proto.MaxEarlyDataBytes is null)
        {
            errors.Add(FieldPath.Field(path, "max_early_data_bytes"), $"max_early_data_bytes must be set when upstream_connect_mode is not IMMEDIATE (it is {(connectMode == ConnectMode.OnDownstreamData ? "ON_DOWNSTREAM_DATA" : "ON_DOWNSTREAM_TLS_HANDSHAKE")})");
            return null;
        }

        return new TcpProxyConfig(clusters, new TcpProxyStats(stats, proto.StatPrefix), clusterManager)
        {
            AccessLogs = accessLogs,
            FlushAccessLogOnConnected = flushOnConnected,
            AccessLogFlushInterval = flushInterval,
            HashSourceIp = hashSourceIp,
            IdleTimeout = proto.IdleTimeout is { } idle ? idle.ToTimeSpan() : DefaultIdleTimeout,
            MaxDownstreamConnectionDuration = proto.MaxDownstreamConnectionDuration?.ToTimeSpan() ?? TimeSpan.Zero,
            MaxConnectAttempts = (int)Math.Max(1, proto.MaxConnectAttempts ?? 1),
            BufferBytes = Math.Clamp(bufferLimit, 16 * 1024, 1024 * 1024),
            ConnectMode = connectMode,

            // The API's rule bounds it at 1 MiB (validate.rules lte), checked before compiling.
            MaxEarlyDataBytes = proto.MaxEarlyDataBytes is { } early ? (int)Math.Min(early, 1024 * 1024) : null,
        };
    }

    /// <summary>The hash key of a connection from <paramref name="remote"/> (Envoy's Network::HashPolicy), or null.</summary>
    public ulong? HashKey(System.Net.IPEndPoint? remote) =>
        HashSourceIp && remote is not null ? Legate.Router.Hashing.HashPolicy.Hash(remote.Address.ToString()) : null;

    /// <summary>The cluster name for a new connection (weighted by chance, as Envoy's weighted_clusters).</summary>
    public string PickClusterName()
    {
        if (_clusters.Length == 1)
        {
            return _clusters[0].Name;
        }

        var pick = Random.Shared.NextInt64(_totalWeight);
        foreach (var (name, weight) in _clusters)
        {
            if (pick < weight)
            {
                return name;
            }

            pick -= weight;
        }

        return _clusters[^1].Name;
    }
}
