namespace Legate.Upstream;

/// <summary>
/// The cluster and endpoint fields the upstream code honours, by message type, in the shape of
/// <c>Config.Semantic.ImplementedFields</c>' table (which warns about every other set field).
/// Kept here, next to the code that reads them, until that table takes them over.
/// </summary>
internal static class UpstreamImplementedFields
{
    public static readonly IReadOnlyDictionary<string, string[]> Fields = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        // lb_policy: ROUND_ROBIN; LEAST_REQUEST and RANDOM warn and use round robin; the rest are errors.
        // respect_dns_ttl is not here: the system resolver reports no TTLs.
        ["envoy.config.cluster.v3.Cluster"] =
            ["name", "type", "connect_timeout", "lb_policy", "load_assignment", "dns_refresh_rate",
             "dns_failure_refresh_rate", "dns_lookup_family", "wait_for_warm_on_init"],
        ["envoy.config.cluster.v3.Cluster.RefreshRate"] = ["base_interval", "max_interval"],
        // policy (overprovisioning, drop_overloads) and named_endpoints come with EDS.
        ["envoy.config.endpoint.v3.ClusterLoadAssignment"] = ["cluster_name", "endpoints"],
        // load_balancing_weight of a locality matters only to locality-weighted load balancing.
        ["envoy.config.endpoint.v3.LocalityLbEndpoints"] = ["locality", "lb_endpoints", "priority"],
        ["envoy.config.endpoint.v3.LbEndpoint"] = ["endpoint", "health_status", "metadata", "load_balancing_weight"],
        // health_check_config comes with active health checking; additional_addresses with Happy Eyeballs.
        ["envoy.config.endpoint.v3.Endpoint"] = ["address", "hostname"],
    };
}
