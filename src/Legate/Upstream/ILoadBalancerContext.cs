using System.Net;
using Legate.Http.Http1;

namespace Legate.Upstream;

/// <summary>
/// What the caller (the router, tcp_proxy) tells the load balancer about one request, as Envoy's
/// LoadBalancerContext: the hash of the route's <c>hash_policy</c> for ring hash and Maglev, and the
/// retry policy's host selection. An interface so the router can pass itself (no allocation per
/// request); <see cref="LoadBalancerContext"/> is the base class with Envoy's defaults.
/// </summary>
internal interface ILoadBalancerContext
{
    /// <summary>
    /// The request's hash (Envoy's <c>computeHashKey</c>), or null when the route has no hash policy
    /// or none of its policies applied: ring hash and Maglev then pick at random, as Envoy.
    /// </summary>
    ulong? HashKey { get; }

    /// <summary>
    /// How many times the load balancer may pick again when <see cref="ShouldSelectAnotherHost"/>
    /// rejects a host (the retry policy's host_selection_retry_max_attempts).
    /// </summary>
    int HostSelectionRetryCount { get; }

    /// <summary>True to ask for another host (retry host predicates such as previous_hosts).</summary>
    bool ShouldSelectAnotherHost(Host host);

    /// <summary>The priority load for this pick (the retry priority, previous_priorities); <paramref name="original"/> unless a retry changes it.</summary>
    PriorityLoad DeterminePriorityLoad(PrioritySnapshot snapshot, PriorityLoad original) => original;

    /// <summary>
    /// The downstream connection's original destination: its local address when a listener
    /// filter restored it (original_dst, proxy_protocol; Envoy's <c>localAddressRestored</c>), else
    /// null. ORIGINAL_DST clusters connect there.
    /// </summary>
    IPEndPoint? DownstreamOriginalDestination => null;

    /// <summary>The downstream request's headers (HTTP only; Envoy's <c>downstreamHeaders</c>), or null.</summary>
    HttpHeaderMap? DownstreamHeaders => null;

    /// <summary>
    /// The request's dynamic metadata (Envoy's <c>requestStreamInfo()->dynamicMetadata()</c>), or
    /// null: ORIGINAL_DST's <c>metadata_key</c> reads it first.
    /// </summary>
    Envoy.Config.Core.V3.Metadata? DownstreamDynamicMetadata => null;

    /// <summary>
    /// The downstream connection's dynamic metadata (listener filters: proxy_protocol TLVs), or null:
    /// ORIGINAL_DST's <c>metadata_key</c> reads it when the request's has no string there.
    /// </summary>
    Envoy.Config.Core.V3.Metadata? DownstreamConnectionDynamicMetadata => null;

    /// <summary>The route's <c>metadata_match</c> (Envoy's <c>metadataMatchCriteria</c>) for subset load balancing, or null.</summary>
    MetadataMatchCriteria? MetadataMatch => null;
}
