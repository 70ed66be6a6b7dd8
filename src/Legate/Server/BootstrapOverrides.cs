using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Core.V3;

namespace Legate.Server;

/// <summary>Applies the command-line flags that Envoy lets override the bootstrap.</summary>
internal static class BootstrapOverrides
{
    /// <summary>
    /// Returns a copy of <paramref name="bootstrap"/> with <c>--service-cluster</c>,
    /// <c>--service-node</c> and <c>--service-zone</c> written into <c>node.cluster</c>,
    /// <c>node.id</c> and <c>node.locality.zone</c>. As in Envoy, an empty flag overrides nothing.
    /// </summary>
    public static Bootstrap Apply(Bootstrap bootstrap, CommandLineOptions options)
    {
        var result = bootstrap.Clone();
        if (!string.IsNullOrEmpty(options.ServiceCluster))
        {
            (result.Node ??= new Node()).Cluster = options.ServiceCluster;
        }

        if (!string.IsNullOrEmpty(options.ServiceNode))
        {
            (result.Node ??= new Node()).Id = options.ServiceNode;
        }

        if (!string.IsNullOrEmpty(options.ServiceZone))
        {
            ((result.Node ??= new Node()).Locality ??= new Locality()).Zone = options.ServiceZone;
        }

        return result;
    }
}
