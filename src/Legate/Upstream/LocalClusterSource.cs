using Envoy.Config.Core.V3;

namespace Legate.Upstream;

/// <summary>
/// The local cluster of zone-aware routing: <c>cluster_manager.local_cluster_name</c> (the cluster
/// of the proxies like this one) and this proxy's zone, the bootstrap node's locality. Load
/// balancers read the local cluster's hosts through it; the cluster manager fills in
/// <see cref="PrioritySet"/> once the static clusters are compiled.
/// </summary>
internal sealed class LocalClusterSource(string name, Locality? locality)
{
    public string Name { get; } = name;

    /// <summary>The node's locality (an empty one when the node has none, as Envoy compares).</summary>
    public Locality Locality { get; } = locality ?? new Locality();

    /// <summary>The local cluster's hosts; null until the cluster manager has found it.</summary>
    public PrioritySet? PrioritySet { get; internal set; }
}
