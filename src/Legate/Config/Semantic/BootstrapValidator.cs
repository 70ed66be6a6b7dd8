using System.Net;
using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Config.Extensions;

namespace Legate.Config.Semantic;

/// <summary>
/// The checks Envoy makes when it loads a bootstrap, beyond the per-field rules of the protos:
/// unique names, references between resources, filter ordering, addresses and settings that
/// cannot go together. Every error names the field path it is about.
/// </summary>
internal static class BootstrapValidator
{
    /// <summary>Network filters that end a chain (Envoy's "terminal" filters).</summary>
    private static readonly HashSet<string> s_terminalNetworkFilters = new(StringComparer.Ordinal)
    {
        "envoy.filters.network.http_connection_manager",
        "envoy.filters.network.tcp_proxy",
        "envoy.filters.network.redis_proxy",
        "envoy.filters.network.thrift_proxy",
        "envoy.filters.network.dubbo_proxy",
        "envoy.filters.network.direct_response",
        "envoy.filters.network.echo",
        "envoy.filters.network.generic_proxy",
        "envoy.filters.network.kafka_mesh",
        "envoy.filters.network.rocketmq_proxy",
    };

    private const string TerminalHttpFilter = "envoy.filters.http.router";

    public static void Validate(Bootstrap bootstrap, ConfigErrors errors)
    {
        if (bootstrap.Admin?.Address is { } adminAddress)
        {
            CheckBindAddress(adminAddress, "admin.address", errors);
        }

        var resources = bootstrap.StaticResources;
        if (resources is null)
        {
            return;
        }

        var clusters = CheckClusters(resources, errors);
        var validateAgainstClusters = clusters;
        CheckListeners(resources, validateAgainstClusters, errors);
    }

    /// <summary>Envoy's load-time checks for one dynamic (CDS) cluster; paths are relative to the resource.</summary>
    internal static void ValidateDynamicCluster(Cluster cluster, string path, ConfigErrors errors) => CheckCluster(cluster, path, errors);

    /// <summary>
    /// Envoy's load-time checks for one dynamic (LDS) listener; inline route tables are checked
    /// against <paramref name="clusters"/> (the clusters known now), as Envoy does when LDS adds a listener.
    /// </summary>
    internal static void ValidateDynamicListener(Listener listener, string path, HashSet<string> clusters, ConfigErrors errors)
    {
        if (listener.Address is { } address)
        {
            CheckBindAddress(address, FieldPath.Field(path, "address"), errors);
        }
        else if (listener.ApiListener is null && listener.InternalListener is null)
        {
            errors.Add(FieldPath.Field(path, "address"), "value is required: a listener needs an address to bind");
        }

        for (var c = 0; c < listener.FilterChains.Count; c++)
        {
            CheckFilterChain(listener.FilterChains[c], FieldPath.Index(FieldPath.Field(path, "filter_chains"), c), clusters, errors);
        }

        if (listener.DefaultFilterChain is { } defaultChain)
        {
            CheckFilterChain(defaultChain, FieldPath.Field(path, "default_filter_chain"), clusters, errors);
        }
    }

    private static HashSet<string> CheckClusters(Bootstrap.Types.StaticResources resources, ConfigErrors errors)
    {
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < resources.Clusters.Count; i++)
        {
            var cluster = resources.Clusters[i];
            var path = FieldPath.Index("static_resources.clusters", i);
            if (cluster.Name.Length > 0 && !names.TryAdd(cluster.Name, i))
            {
                errors.Add(FieldPath.Field(path, "name"), $"duplicate cluster name \"{cluster.Name}\" (first defined at static_resources.clusters[{names[cluster.Name]}])");
            }

            CheckCluster(cluster, path, errors);
        }

        return new HashSet<string>(names.Keys, StringComparer.Ordinal);
    }

    private static void CheckCluster(Cluster cluster, string path, ConfigErrors errors)
    {
        var type = cluster.ClusterDiscoveryTypeCase == Cluster.ClusterDiscoveryTypeOneofCase.ClusterType ? (Cluster.Types.DiscoveryType?)null : cluster.Type;
        var endpoints = cluster.LoadAssignment?.Endpoints;
        var endpointCount = endpoints?.Sum(e => e.LbEndpoints.Count) ?? 0;

        switch (type)
        {
            case Cluster.Types.DiscoveryType.Static:
                ForEachEndpointAddress(cluster, path, (address, addressPath) =>
                {
                    if (address.SocketAddress is { } socket && !IPAddress.TryParse(socket.Address, out _))
                    {
                        errors.Add(FieldPath.Field(addressPath, "socket_address.address"),
                            $"malformed IP address \"{socket.Address}\": a STATIC cluster needs IP addresses; use type STRICT_DNS or LOGICAL_DNS for host names");
                    }
                });
                break;
            case Cluster.Types.DiscoveryType.LogicalDns:
                if (endpoints is not null && (endpoints.Count != 1 || endpointCount != 1))
                {
                    errors.Add(FieldPath.Field(path, "load_assignment"),
                        $"LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint (found {endpointCount} endpoints in {endpoints.Count} localities)");
                }

                break;
            case Cluster.Types.DiscoveryType.OriginalDst:
                if (endpointCount > 0)
                {
                    errors.Add(FieldPath.Field(path, "load_assignment"), "ORIGINAL_DST clusters must have no load assignment configured");
                }

                if (cluster.LbPolicy != Cluster.Types.LbPolicy.ClusterProvided)
                {
                    errors.Add(FieldPath.Field(path, "lb_policy"),
                        $"LB policy {cluster.LbPolicy.ToEnumName()} is not valid for cluster type ORIGINAL_DST; only CLUSTER_PROVIDED is allowed");
                }

                break;
            case Cluster.Types.DiscoveryType.Eds:
                if (cluster.EdsClusterConfig is null)
                {
                    errors.Add(FieldPath.Field(path, "eds_cluster_config"), "an EDS cluster needs eds_cluster_config (where its endpoints come from)");
                }

                break;
        }

        if (cluster.LbPolicy == Cluster.Types.LbPolicy.ClusterProvided && type is not null && type != Cluster.Types.DiscoveryType.OriginalDst)
        {
            errors.Add(FieldPath.Field(path, "lb_policy"), $"LB policy CLUSTER_PROVIDED is only valid for cluster type ORIGINAL_DST or a custom cluster type, not {type.Value.ToEnumName()}");
        }

        const string httpOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
        if (cluster.TypedExtensionProtocolOptions.ContainsKey(httpOptions))
        {
#pragma warning disable CS0612 // Envoy still reads these deprecated fields; so must the check.
            foreach (var (set, name) in new[]
            {
                (cluster.Http2ProtocolOptions is not null, "http2_protocol_options"),
                (cluster.HttpProtocolOptions is not null, "http_protocol_options"),
                (cluster.CommonHttpProtocolOptions is not null, "common_http_protocol_options"),
                (cluster.UpstreamHttpProtocolOptions is not null, "upstream_http_protocol_options"),
                (cluster.ProtocolSelection != Cluster.Types.ClusterProtocolSelection.UseConfiguredProtocol, "protocol_selection"),
            })
#pragma warning restore CS0612
            {
                if (set)
                {
                    errors.Add(FieldPath.Field(path, name),
                        $"cannot be combined with typed_extension_protocol_options[\"{httpOptions}\"]; move it into that HttpProtocolOptions");
                }
            }
        }
    }

    private static void ForEachEndpointAddress(Cluster cluster, string path, Action<Address, string> action)
    {
        if (cluster.LoadAssignment is null)
        {
            return;
        }

        for (var l = 0; l < cluster.LoadAssignment.Endpoints.Count; l++)
        {
            var locality = cluster.LoadAssignment.Endpoints[l];
            for (var e = 0; e < locality.LbEndpoints.Count; e++)
            {
                if (locality.LbEndpoints[e].Endpoint?.Address is { } address)
                {
                    action(address, $"{path}.load_assignment.endpoints[{l}].lb_endpoints[{e}].endpoint.address");
                }
            }
        }
    }

    private static void CheckListeners(Bootstrap.Types.StaticResources resources, HashSet<string> clusters, ConfigErrors errors)
    {
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        var addresses = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < resources.Listeners.Count; i++)
        {
            var listener = resources.Listeners[i];
            var path = FieldPath.Index("static_resources.listeners", i);
            if (listener.Name.Length > 0 && !names.TryAdd(listener.Name, i))
            {
                errors.Add(FieldPath.Field(path, "name"), $"duplicate listener name \"{listener.Name}\" (first defined at static_resources.listeners[{names[listener.Name]}])");
            }

            if (listener.Address is { } address)
            {
                CheckBindAddress(address, FieldPath.Field(path, "address"), errors);
                if (address.SocketAddress is { } socket)
                {
                    var key = $"{socket.Protocol}:{socket.Address}:{socket.PortValue}";
                    if (socket.PortValue != 0 && !addresses.TryAdd(key, i))
                    {
                        errors.Add(FieldPath.Field(path, "address"),
                            $"listener address {socket.Address}:{socket.PortValue} is already used by static_resources.listeners[{addresses[key]}]");
                    }
                }
            }
            else if (listener.ApiListener is null && listener.InternalListener is null)
            {
                errors.Add(FieldPath.Field(path, "address"), "value is required: a listener needs an address to bind");
            }

            // Duplicate and overlapping filter_chain_match rules: FilterChainMatcher.Compile reports them.
            for (var c = 0; c < listener.FilterChains.Count; c++)
            {
                CheckFilterChain(listener.FilterChains[c], FieldPath.Index(FieldPath.Field(path, "filter_chains"), c), clusters, errors);
            }

            if (listener.DefaultFilterChain is { } defaultChain)
            {
                CheckFilterChain(defaultChain, FieldPath.Field(path, "default_filter_chain"), clusters, errors);
            }
        }
    }

    private static void CheckFilterChain(FilterChain chain, string path, HashSet<string> clusters, ConfigErrors errors)
    {
        for (var f = 0; f < chain.Filters.Count; f++)
        {
            var filter = chain.Filters[f];
            var filterPath = FieldPath.Index(FieldPath.Field(path, "filters"), f);
            var name = ExtensionNameOf(filter.Name, filter.TypedConfig);
            var terminal = name is not null && s_terminalNetworkFilters.Contains(name);
            var last = f == chain.Filters.Count - 1;
            if (terminal && !last)
            {
                errors.Add(filterPath, $"terminal filter named \"{filter.Name}\" of type {name} must be the last filter in a network filter chain");
            }
            else if (!terminal && last && name is not null)
            {
                errors.Add(filterPath, $"non-terminal filter named \"{filter.Name}\" of type {name} is the last filter in a network filter chain; it needs a terminal filter (such as envoy.filters.network.tcp_proxy or envoy.filters.network.http_connection_manager) after it");
            }

            if (filter.TypedConfig is { } any && any.Is(HttpConnectionManager.Descriptor))
            {
                CheckConnectionManager(any.Unpack<HttpConnectionManager>(), FieldPath.Field(filterPath, "typed_config"), clusters, errors);
            }
        }
    }

    private static void CheckConnectionManager(HttpConnectionManager hcm, string path, HashSet<string> clusters, ConfigErrors errors)
    {
        for (var f = 0; f < hcm.HttpFilters.Count; f++)
        {
            var filter = hcm.HttpFilters[f];
            var filterPath = FieldPath.Index(FieldPath.Field(path, "http_filters"), f);
            var name = ExtensionNameOf(filter.Name, filter.TypedConfig);
            var terminal = name == TerminalHttpFilter;
            var last = f == hcm.HttpFilters.Count - 1;
            if (terminal && !last)
            {
                errors.Add(filterPath, $"terminal filter named \"{filter.Name}\" of type {name} must be the last filter in an HTTP filter chain; filters after it would never run");
            }
            else if (!terminal && last && name is not null)
            {
                errors.Add(filterPath, $"non-terminal filter named \"{filter.Name}\" of type {name} is the last filter in an HTTP filter chain; add envoy.filters.http.router after it");
            }
        }

        if (hcm.RouteConfig is { } routes)
        {
            // Envoy's validate_clusters defaults to true for a route table given inline.
            var validateClusters = routes.ValidateClusters ?? true;
            CheckRouteConfiguration(routes, FieldPath.Field(path, "route_config"), validateClusters ? clusters : null, errors);
        }
    }

    internal static void CheckRouteConfiguration(RouteConfiguration routes, string path, HashSet<string>? clusters, ConfigErrors errors)
    {
        var hostNames = new Dictionary<string, int>(StringComparer.Ordinal);
        var domains = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (var v = 0; v < routes.VirtualHosts.Count; v++)
        {
            var host = routes.VirtualHosts[v];
            var hostPath = FieldPath.Index(FieldPath.Field(path, "virtual_hosts"), v);
            if (!hostNames.TryAdd(host.Name, v))
            {
                errors.Add(FieldPath.Field(hostPath, "name"), $"duplicate virtual host name \"{host.Name}\" (first defined at {path}.virtual_hosts[{hostNames[host.Name]}])");
            }

            for (var d = 0; d < host.Domains.Count; d++)
            {
                var domain = host.Domains[d];
                var domainPath = FieldPath.Index(FieldPath.Field(hostPath, "domains"), d);
                if (!domains.TryAdd(domain, domainPath))
                {
                    errors.Add(domainPath, $"only unique values for domains are permitted: \"{domain}\" is also at {domains[domain]}");
                }
            }

            if (clusters is null)
            {
                continue;
            }

            for (var r = 0; r < host.Routes.Count; r++)
            {
                var action = host.Routes[r].Route_;
                if (action is null)
                {
                    continue;
                }

                var actionPath = $"{hostPath}.routes[{r}].route";
                if (action.ClusterSpecifierCase == RouteAction.ClusterSpecifierOneofCase.Cluster && !clusters.Contains(action.Cluster))
                {
                    errors.Add(FieldPath.Field(actionPath, "cluster"), UnknownCluster(action.Cluster));
                }

                if (action.WeightedClusters is { } weighted)
                {
                    for (var w = 0; w < weighted.Clusters.Count; w++)
                    {
                        var name = weighted.Clusters[w].Name;
                        if (name.Length > 0 && !clusters.Contains(name))
                        {
                            errors.Add($"{actionPath}.weighted_clusters.clusters[{w}].name", UnknownCluster(name));
                        }
                    }
                }

                for (var m = 0; m < action.RequestMirrorPolicies.Count; m++)
                {
                    var name = action.RequestMirrorPolicies[m].Cluster;
                    if (name.Length > 0 && !clusters.Contains(name))
                    {
                        errors.Add($"{actionPath}.request_mirror_policies[{m}].cluster", UnknownCluster(name));
                    }
                }
            }
        }
    }

    private static string UnknownCluster(string name) =>
        $"unknown cluster \"{name}\": no static cluster has that name (set route_config.validate_clusters to false if it comes from CDS)";

    private static void CheckBindAddress(Address address, string path, ConfigErrors errors)
    {
        if (address.SocketAddress is not { } socket)
        {
            return;
        }

        var socketPath = FieldPath.Field(path, "socket_address");
        if (!IPAddress.TryParse(socket.Address, out _))
        {
            errors.Add(FieldPath.Field(socketPath, "address"), $"malformed IP address \"{socket.Address}\": a bound address must be an IPv4 or IPv6 literal");
        }

        if (socket.PortSpecifierCase == Envoy.Config.Core.V3.SocketAddress.PortSpecifierOneofCase.NamedPort)
        {
            errors.Add(FieldPath.Field(socketPath, "named_port"), "named ports are not supported for bound addresses; use port_value");
        }
    }

    /// <summary>The extension a filter selects: by typed_config type when present, else by name.</summary>
    private static string? ExtensionNameOf(string name, Any? typedConfig)
    {
        if (typedConfig is not null)
        {
            var descriptor = ApiTypes.FindByTypeUrl(typedConfig.TypeUrl);
            return descriptor is null ? null : ExtensionCatalog.FindByConfigType(descriptor.FullName)?.Name;
        }

        return ExtensionCatalog.FindByName(name)?.Name;
    }
}
