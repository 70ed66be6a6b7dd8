using System.Net;
using Legate.Http.Http1;

namespace Legate.Upstream;

/// <summary>
/// A <see cref="ILoadBalancerContext"/> with Envoy's defaults (no hash, no host-selection
/// retries), to derive from.
/// </summary>
internal abstract class LoadBalancerContext : ILoadBalancerContext
{
    public virtual int HostSelectionRetryCount => 0;

    public virtual bool ShouldSelectAnotherHost(Host host) => false;

    public virtual PriorityLoad DeterminePriorityLoad(PrioritySnapshot snapshot, PriorityLoad original) => original;

    /// <summary>
    /// The request's hash for consistent-hash load balancers (ring hash, Maglev), computed by the
    /// router from the route's hash_policy; null when the route has none or no policy produced one.
    /// </summary>
    public virtual ulong? HashKey { get; set; }

    /// <summary>Set by the caller for ORIGINAL_DST clusters (see <see cref="ILoadBalancerContext.DownstreamOriginalDestination"/>).</summary>
    public IPEndPoint? DownstreamOriginalDestination { get; set; }

    /// <summary>Set by the router for ORIGINAL_DST clusters (see <see cref="ILoadBalancerContext.DownstreamHeaders"/>).</summary>
    public HttpHeaderMap? DownstreamHeaders { get; set; }

    /// <summary>Set by the caller for ORIGINAL_DST clusters (see <see cref="ILoadBalancerContext.DownstreamDynamicMetadata"/>).</summary>
    public Envoy.Config.Core.V3.Metadata? DownstreamDynamicMetadata { get; set; }

    /// <summary>Set by the caller for ORIGINAL_DST clusters (see <see cref="ILoadBalancerContext.DownstreamConnectionDynamicMetadata"/>).</summary>
    public Envoy.Config.Core.V3.Metadata? DownstreamConnectionDynamicMetadata { get; set; }

    /// <summary>Set by the router from the route's metadata_match (see <see cref="ILoadBalancerContext.MetadataMatch"/>).</summary>
    public MetadataMatchCriteria? MetadataMatch { get; set; }
}
