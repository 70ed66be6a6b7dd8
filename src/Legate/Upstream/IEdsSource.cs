using Envoy.Config.Core.V3;
using Legate.Config;

namespace Legate.Upstream;

/// <summary>
/// Where EDS clusters get their endpoints (the xDS manager). Kept as an interface so the
/// upstream code does not depend on xDS: <see cref="CreateWatch"/> checks the config source when
/// the cluster is compiled; the watch starts when the cluster warms and ends when it is disposed.
/// </summary>
internal interface IEdsSource
{
    /// <summary>A watch on <paramref name="serviceName"/>'s ClusterLoadAssignment, not started; null with errors added when the source cannot be used.</summary>
    IEdsWatch? CreateWatch(string serviceName, ConfigSource? source, string path, ConfigErrors errors);
}

/// <summary>One EDS cluster's interest in one ClusterLoadAssignment.</summary>
internal interface IEdsWatch : IDisposable
{
    /// <summary>Starts delivering assignments to <paramref name="cluster"/> (a cached one at once).</summary>
    void Start(EdsCluster cluster);
}
