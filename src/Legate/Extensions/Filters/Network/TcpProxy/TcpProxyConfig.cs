using Legate.Config;
using Legate.Stats;
using Legate.Upstream;
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

    /// <summary>Bytes read from one side before waiting for the other side to take them (per direction).</summary>
    public int BufferBytes { get; private init; }

    public static TcpProxyConfig? Compile(Proto proto, string path, ConfigErrors errors, StatsStore stats, ClusterManager clusterManager, int bufferLimit)
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

        return new TcpProxyConfig(clusters, new TcpProxyStats(stats, proto.StatPrefix), clusterManager)
        {
            IdleTimeout = proto.IdleTimeout is { } idle ? idle.ToTimeSpan() : DefaultIdleTimeout,
            MaxDownstreamConnectionDuration = proto.MaxDownstreamConnectionDuration?.ToTimeSpan() ?? TimeSpan.Zero,
            MaxConnectAttempts = (int)Math.Max(1, proto.MaxConnectAttempts ?? 1),
            BufferBytes = Math.Clamp(bufferLimit, 16 * 1024, 1024 * 1024),
        };
    }

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
