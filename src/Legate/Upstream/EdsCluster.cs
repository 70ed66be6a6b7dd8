using Envoy.Config.Endpoint.V3;
using Legate.Config;
using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>
/// An EDS cluster: its hosts come from ClusterLoadAssignments pushed by the control plane (or a
/// file). It warms until the first assignment arrives (or the EDS initial_fetch_timeout passes,
/// leaving it without hosts, as Envoy does). Each assignment goes through
/// <see cref="PrioritySet.Update"/>, so hosts that stay keep their counters and connection pools.
/// </summary>
internal sealed class EdsCluster : Cluster
{
    private readonly TaskCompletionSource _warmed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IEdsWatch _watch;

    public EdsCluster(string name, TimeSpan connectTimeout, LbPolicy lbPolicy, ulong lbSeed, string serviceName, IEdsWatch watch)
        : base(name, DiscoveryType.Eds, connectTimeout, lbPolicy, lbSeed)
    {
        ServiceName = serviceName;
        _watch = watch;
    }

    /// <summary>The ClusterLoadAssignment name: eds_cluster_config.service_name, else the cluster name.</summary>
    public string ServiceName { get; }

    /// <summary>True once the first assignment (or the initial fetch timeout) arrived.</summary>
    public bool IsWarm => _warmed.Task.IsCompleted;

    /// <summary>The hosts of <paramref name="assignment"/>, or null with errors added (EDS endpoints must be IP addresses).</summary>
    public static List<Host>? HostsOf(ClusterLoadAssignment assignment, ConfigErrors errors)
    {
        var before = errors.Errors.Count;
        var hosts = ClusterFactory.StaticHosts(assignment, "", errors, pathIsAssignment: true);
        return errors.Errors.Count == before ? hosts : null;
    }

    /// <summary>Replaces the hosts (an EDS update) and ends warming.</summary>
    public HostUpdate Apply(IReadOnlyList<Host> hosts)
    {
        var update = PrioritySet.Update(hosts);
        _warmed.TrySetResult();
        return update;
    }

    /// <summary>The EDS initial fetch timed out: the cluster is usable without hosts (503 UH) until endpoints arrive.</summary>
    public void EndWarming() => _warmed.TrySetResult();

    public override Task InitializeAsync(CancellationToken cancellationToken)
    {
        _watch.Start(this);
        return _warmed.Task.WaitAsync(cancellationToken);
    }

    public override ValueTask DisposeAsync()
    {
        _watch.Dispose();
        return base.DisposeAsync();
    }
}
