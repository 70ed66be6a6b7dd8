using System.Collections.Immutable;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Legate.Config;
using Legate.Config.Semantic;
using Legate.Network;
using AggregateConfig = Envoy.Extensions.Clusters.Aggregate.V3.ClusterConfig;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;
using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>
/// Compiles one <c>envoy.config.cluster.v3.Cluster</c> into a runtime <see cref="Cluster"/>. The
/// config has already passed the field rules and Envoy's load-time checks; this step reports, with
/// field paths, whatever Legate cannot honour yet (cluster types, load balancing policies, address
/// kinds) instead of quietly doing something else. Fields it does not read at all are reported by
/// the implemented-fields table (<c>Config/Semantic/ImplementedFields</c>).
/// </summary>
internal static class ClusterFactory
{
    /// <summary>The cluster, or null when it cannot be built (the reasons are in <paramref name="errors"/>).</summary>
    public static Cluster? Create(ClusterConfig config, string path, ConfigErrors errors, ClusterFactoryContext context)
    {
        var errorsBefore = errors.Errors.Count;
        var aggregate = false;
        if (config.ClusterDiscoveryTypeCase == ClusterConfig.ClusterDiscoveryTypeOneofCase.ClusterType)
        {
            aggregate = config.ClusterType.TypedConfig?.Is(AggregateConfig.Descriptor) == true;
            if (!aggregate && config.ClusterType.TypedConfig is null && config.ClusterType.Name == "envoy.clusters.aggregate")
            {
                errors.Add(FieldPath.Field(FieldPath.Field(path, "cluster_type"), "typed_config"),
                    "an aggregate cluster needs its typed_config (envoy.extensions.clusters.aggregate.v3.ClusterConfig with the clusters to fail over between)");
                return null;
            }

            if (!aggregate)
            {
                errors.Add(FieldPath.Field(path, "cluster_type"), $"custom cluster type \"{config.ClusterType.Name}\" is not supported yet");
                return null;
            }
        }

        var type = config.Type;
        if (!aggregate && type is not (DiscoveryType.Static or DiscoveryType.StrictDns or DiscoveryType.LogicalDns or DiscoveryType.Eds or DiscoveryType.OriginalDst))
        {
            errors.Add(FieldPath.Field(path, "type"), $"cluster type {type.ToEnumName()} is not supported yet");
            return null;
        }

        var connectTimeout = config.ConnectTimeout?.ToTimeSpan() ?? Cluster.DefaultConnectTimeout;
        var lbSeed = (ulong)context.NextRandom(long.MaxValue);
        var settings = LoadBalancerSettingsFactory.Create(config, path, errors, lbSeed);

        Cluster? cluster = null;
        if (aggregate)
        {
            cluster = CreateAggregate(config, path, errors, connectTimeout, lbSeed);
        }
        else
        switch (type)
        {
            case DiscoveryType.Static:
                var hosts = StaticHosts(config.LoadAssignment, path, errors);
                if (errors.Errors.Count == errorsBefore)
                {
                    cluster = new StaticCluster(config.Name, connectTimeout, config.LbPolicy, lbSeed, hosts);
                }

                break;
            case DiscoveryType.StrictDns:
                var endpoints = DnsEndpoints(config.LoadAssignment, path, "STRICT_DNS", errors);
                var strictDns = DnsSettingsOf(config, path, errors, context);
                if (errors.Errors.Count == errorsBefore)
                {
                    cluster = new StrictDnsCluster(config.Name, connectTimeout, config.LbPolicy, lbSeed, endpoints, strictDns, context);
                }

                break;
            case DiscoveryType.LogicalDns:
                var single = LogicalDnsEndpoint(config.LoadAssignment, path, errors);
                var logicalDns = DnsSettingsOf(config, path, errors, context);
                if (single is not null && errors.Errors.Count == errorsBefore)
                {
                    cluster = new LogicalDnsCluster(config.Name, connectTimeout, config.LbPolicy, lbSeed, single, logicalDns, context);
                }

                break;
            case DiscoveryType.Eds:
                cluster = CreateEds(config, path, errors, context, connectTimeout, lbSeed);
                break;
            case DiscoveryType.OriginalDst:
                var originalDst = OriginalDstSettingsOf(config, path, errors);
                if (errors.Errors.Count == errorsBefore)
                {
                    cluster = new OriginalDstCluster(config.Name, connectTimeout, lbSeed, originalDst, context.TimeProvider);
                }

                break;
        }

        if (errors.Errors.Count > errorsBefore && cluster is not null)
        {
            cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
            cluster = null;
        }

        if (cluster is not null)
        {
            cluster.Info = ClusterInfo.Create(config, path, errors, context.Stats, context.Secrets);
            var policy = config.LoadAssignment?.Policy;
            cluster.PrioritySet.ConfigurePolicy(policy?.OverprovisioningFactor ?? PrioritySet.DefaultOverprovisioningFactor, policy?.WeightedPriorityHealth ?? false);
            if (policy?.DropOverloads is { Count: > 0 } drops)
            {
                var dropsPath = FieldPath.Field(FieldPath.Field(FieldPath.Field(path, "load_assignment"), "policy"), "drop_overloads");
                if (drops.Count > 1)
                {
                    errors.Add(dropsPath, $"Cluster drop_overloads config has {drops.Count} categories. Envoy only support one.");
                }
                else if (drops[0].DropPercentage is { } percentage)
                {
                    cluster.SetDropOverload(percentage);
                }
            }

            if ((config.LbSubsetConfig is not null || settings.Subset is not null) && cluster is AggregateCluster or OriginalDstCluster)
            {
                errors.Add(FieldPath.Field(path, "lb_subset_config"), "lb_subset_config cannot be combined with lb_policy CLUSTER_PROVIDED (the cluster provides its load balancer)");
            }

            if (cluster is AggregateCluster aggregateCluster)
            {
                // CLUSTER_PROVIDED: the aggregate chooses a listed cluster, whose balancer chooses the host.
                cluster.LoadBalancer = new AggregateLoadBalancer(aggregateCluster, settings.PanicThreshold, context.LbRandom);
            }
            else if (cluster is not OriginalDstCluster && (settings.Subset is not null || config.LbSubsetConfig is not null))
            {
                // lb_subset_config, or the typed envoy.load_balancing_policies.subset (which wins, as
                // load_balancing_policy wins over lb_policy): subsets by envoy.lb metadata, each
                // balanced by the cluster's (or subset_lb_policy's) policy.
                var subsets = settings.Subset ?? SubsetLoadBalancerSettings.From(config.LbSubsetConfig!, FieldPath.Field(path, "lb_subset_config"), errors);
                cluster.LoadBalancer = new SubsetLoadBalancer(cluster.PrioritySet, settings, subsets, cluster.Info.Stats, context.LbRandom, context.TimeProvider, context.LocalCluster, context.Runtime);
            }
            else if (cluster is not OriginalDstCluster)
            {
                // ORIGINAL_DST brings its own (CLUSTER_PROVIDED).
                cluster.LoadBalancer = LoadBalancerFactory.Create(cluster.PrioritySet, settings, cluster.Info.Stats, context.LbRandom, context.TimeProvider, context.LocalCluster, context.Runtime);
            }

            TrackMembership(cluster);
            var mergeWindow = UpdateMergeWindow.DefaultWindow;
            if (config.CommonLbConfig?.UpdateMergeWindow is { } window)
            {
                mergeWindow = window.ToTimeSpan();
                if (mergeWindow < TimeSpan.Zero)
                {
                    errors.Add(FieldPath.Field(FieldPath.Field(path, "common_lb_config"), "update_merge_window"), "Duration out-of-range: update_merge_window must not be negative");
                }
            }

            cluster.MergeWindow = new UpdateMergeWindow(mergeWindow, context.TimeProvider, context.Stats ?? cluster.Info.Stats.Store);
            if (config.CommonLbConfig?.CloseConnectionsOnHostSetChange == true)
            {
                // As Envoy: hosts added or removed drain the connections to every host the cluster
                // keeps (removed hosts are drained by every cluster, see Cluster.DrainRemovedHosts).
                var set = cluster.PrioritySet;
                set.Updated += update =>
                {
                    if (update.Added.IsEmpty && update.Removed.IsEmpty)
                    {
                        return;
                    }

                    foreach (var host in set.Current.Hosts)
                    {
                        host.DrainConnectionPools();
                    }
                };
            }
            var checkers = new List<HealthChecker>();
            for (var i = 0; i < config.HealthChecks.Count; i++)
            {
                if (HealthCheckSettings.From(config.HealthChecks[i], FieldPath.Index(FieldPath.Field(path, "health_checks"), i), errors) is { } healthCheck)
                {
                    checkers.Add(new HealthChecker(cluster, healthCheck, context.TimeProvider, context.NextRandom, config.CommonLbConfig?.IgnoreNewHostsUntilFirstHc ?? false));
                }
            }

            cluster.HealthCheckers = checkers;
            if (config.OutlierDetection is { } outlier)
            {
                cluster.OutlierDetector = new OutlierDetector(cluster, OutlierDetectionSettings.From(outlier), context.TimeProvider, context.NextRandom);
            }
        }

        return cluster;
    }

    /// <summary>
    /// An <c>envoy.clusters.aggregate</c> cluster. Envoy's checks: lb_policy must be
    /// CLUSTER_PROVIDED (the cluster provides its load balancer) and the list must not be empty.
    /// </summary>
    private static AggregateCluster? CreateAggregate(ClusterConfig config, string path, ConfigErrors errors, TimeSpan connectTimeout, ulong lbSeed)
    {
        var before = errors.Errors.Count;
        if (config.LbPolicy != LbPolicy.ClusterProvided)
        {
            errors.Add(FieldPath.Field(path, "lb_policy"),
                $"cluster manager: cluster provided LB not specified but cluster '{config.Name}' provided one. Check cluster documentation.");
        }

        var typedPath = FieldPath.Field(FieldPath.Field(path, "cluster_type"), "typed_config");
        var aggregateConfig = config.ClusterType.TypedConfig.Unpack<AggregateConfig>();
        if (aggregateConfig.Clusters.Count == 0)
        {
            errors.Add(FieldPath.Field(typedPath, "clusters"), "an aggregate cluster needs at least one cluster");
        }

        for (var i = 0; i < aggregateConfig.Clusters.Count; i++)
        {
            if (aggregateConfig.Clusters[i] == config.Name)
            {
                errors.Add(FieldPath.Index(FieldPath.Field(typedPath, "clusters"), i), $"aggregate cluster '{config.Name}' cannot list itself");
            }
        }

        if (config.LoadAssignment is { Endpoints.Count: > 0 })
        {
            errors.Warn(FieldPath.Field(path, "load_assignment"), "an aggregate cluster has no endpoints of its own; load_assignment is ignored");
        }

        return errors.Errors.Count == before
            ? new AggregateCluster(config.Name, connectTimeout, lbSeed, [.. aggregateConfig.Clusters])
            : null;
    }

    private static EdsCluster? CreateEds(ClusterConfig config, string path, ConfigErrors errors, ClusterFactoryContext context, TimeSpan connectTimeout, ulong lbSeed)
    {
        var edsPath = FieldPath.Field(path, "eds_cluster_config");
        if (config.LoadAssignment is not null)
        {
            // Envoy ignores an EDS cluster's load_assignment; saying so beats a silent surprise.
            errors.Warn(FieldPath.Field(path, "load_assignment"), "an EDS cluster takes its endpoints from EDS; load_assignment is ignored");
        }

        if (context.Eds is not { } eds)
        {
            errors.Add(edsPath, "EDS clusters need an xDS source, which this context does not have");
            return null;
        }

        var edsConfig = config.EdsClusterConfig;
        var serviceName = edsConfig is { ServiceName.Length: > 0 } ? edsConfig.ServiceName : config.Name;
        var watch = eds.CreateWatch(serviceName, edsConfig?.EdsConfig, FieldPath.Field(edsPath, "eds_config"), errors);
        return watch is null ? null : new EdsCluster(config.Name, connectTimeout, config.LbPolicy, lbSeed, serviceName, watch);
    }

    private static OriginalDstSettings OriginalDstSettingsOf(ClusterConfig config, string path, ConfigErrors errors)
    {
        var lbConfig = config.OriginalDstLbConfig;
        string? header = null;
        string? metadataNamespace = null;
        var metadataPath = ImmutableArray<string>.Empty;
        if (lbConfig is not null)
        {
            if (lbConfig.UseHttpHeader)
            {
                header = lbConfig.HttpHeaderName.Length > 0 ? lbConfig.HttpHeaderName.ToLowerInvariant() : OriginalDstSettings.DefaultHeaderName;
            }
            else if (lbConfig.HttpHeaderName.Length > 0)
            {
                errors.Add(FieldPath.Field(FieldPath.Field(path, "original_dst_lb_config"), "http_header_name"),
                    $"ORIGINAL_DST cluster: invalid config http_header_name={lbConfig.HttpHeaderName} and use_http_header is false. Set use_http_header to true if http_header_name is desired.");
            }

            if (lbConfig.MetadataKey is { } metadataKey)
            {
                // The destination from dynamic metadata: filter_metadata[key], then each path key
                // (key and path non-empty: the proto's validation rules, checked on load).
                metadataNamespace = metadataKey.Key;
                metadataPath = [.. metadataKey.Path.Select(p => p.Key)];
            }
        }

        int? port = null;
        if (lbConfig?.UpstreamPortOverride is { } portOverride)
        {
            if (portOverride > System.Net.IPEndPoint.MaxPort)
            {
                errors.Add(FieldPath.Field(FieldPath.Field(path, "original_dst_lb_config"), "upstream_port_override"), $"{portOverride} is not a valid port (0-65535)");
            }
            else
            {
                port = (int)portOverride;
            }
        }

        var cleanup = config.CleanupInterval?.ToTimeSpan() ?? OriginalDstCluster.DefaultCleanupInterval;
        if (cleanup <= TimeSpan.Zero)
        {
            errors.Add(FieldPath.Field(path, "cleanup_interval"), "cleanup_interval must be greater than 0");
            cleanup = OriginalDstCluster.DefaultCleanupInterval;
        }

        return new OriginalDstSettings(header, port, cleanup) { MetadataNamespace = metadataNamespace, MetadataPath = metadataPath };
    }

    /// <summary>membership_{total,healthy,degraded} follow every snapshot; membership_change counts updates that added or removed hosts.</summary>
    private static void TrackMembership(Cluster cluster)
    {
        var stats = cluster.Info.Stats;
        var set = cluster.PrioritySet;
        set.Updated += update =>
        {
            if (!update.Added.IsEmpty || !update.Removed.IsEmpty)
            {
                stats.MembershipChange.Inc();
            }
        };
        set.Published += snapshot => SetMembership(stats, snapshot);
        var current = set.Current;
        if (!current.Hosts.IsEmpty)
        {
            // The hosts a static cluster started with were its first membership change, as in Envoy.
            stats.MembershipChange.Inc();
        }

        SetMembership(stats, current);
    }

    private static void SetMembership(ClusterStats stats, PrioritySnapshot snapshot)
    {
        long healthy = 0, degraded = 0, excluded = 0;
        foreach (var hostSet in snapshot.HostSets)
        {
            healthy += hostSet.HealthyHosts.Length;
            degraded += hostSet.DegradedHosts.Length;
            excluded += hostSet.ExcludedCount;
        }

        stats.MembershipTotal.Set(snapshot.Hosts.Length);
        stats.MembershipHealthy.Set(healthy);
        stats.MembershipDegraded.Set(degraded);
        stats.MembershipExcluded.Set(excluded);
    }

    /// <summary>The hosts of a load assignment of IP addresses (STATIC clusters, EDS).</summary>
    internal static List<Host> StaticHosts(ClusterLoadAssignment? assignment, string path, ConfigErrors errors, bool pathIsAssignment = false)
    {
        var hosts = new List<Host>();
        ForEachEndpoint(assignment, path, errors, pathIsAssignment, (locality, lbEndpoint, lbEndpointPath) =>
        {
            if (CreateHost(locality, lbEndpoint, lbEndpointPath, errors) is { } host)
            {
                hosts.Add(host);
            }
        });
        return hosts;
    }

    /// <summary>
    /// The host of one lb_endpoint of an assignment (<paramref name="lbEndpointPath"/> names it),
    /// or null with the reason added: what <see cref="StaticHosts"/> does for each endpoint, for
    /// an EDS update that compiles only the endpoints it changed.
    /// </summary>
    internal static Host? HostOf(LocalityLbEndpoints locality, LbEndpoint lbEndpoint, string lbEndpointPath, ConfigErrors errors) =>
        HasAddress(lbEndpoint, LbEndpointPath.Whole(lbEndpointPath), errors) ? CreateHost(locality, lbEndpoint, LbEndpointPath.Whole(lbEndpointPath), errors) : null;

    private static Host? CreateHost(LocalityLbEndpoints locality, LbEndpoint lbEndpoint, LbEndpointPath lbEndpointPath, ConfigErrors errors)
    {
        var address = TcpEndpoint(lbEndpoint.Endpoint.Address)
            ?? SocketAddresses.ToTcpEndpoint(lbEndpoint.Endpoint.Address, FieldPath.Field(FieldPath.Field(lbEndpointPath.ToString(), "endpoint"), "address"), errors);
        if (address is null)
        {
            return null;
        }

        var healthCheck = lbEndpoint.Endpoint.HealthCheckConfig;
        System.Net.IPAddress? healthCheckIp = null;
        if (healthCheck?.Address is { } healthCheckAddress)
        {
            // An IP literal (its port, if any, is not used: port_value or the serving port is).
            var path = FieldPath.Field(FieldPath.Field(FieldPath.Field(lbEndpointPath.ToString(), "endpoint"), "health_check_config"), "address");
            if (healthCheckAddress.SocketAddress is not { } socket || !System.Net.IPAddress.TryParse(socket.Address, out healthCheckIp))
            {
                errors.Add(path, "the health check address must be a socket_address with an IP literal");
                return null;
            }
        }

        return new Host(address, lbEndpoint.Endpoint.Hostname, lbEndpoint.LoadBalancingWeight ?? 1,
            locality.Locality, locality.Priority, lbEndpoint.Metadata, lbEndpoint.HealthStatus, locality.LoadBalancingWeight ?? 0)
        {
            HealthCheckPort = (int)(healthCheck?.PortValue ?? 0),
            HealthCheckIp = healthCheckIp,
            HealthCheckHostname = healthCheck?.Hostname ?? string.Empty,
            ActiveHealthCheckDisabled = healthCheck?.DisableActiveHealthCheck ?? false,
        };
    }

    /// <summary>
    /// The endpoint of a valid TCP <c>socket_address</c> (an IP literal and a <c>port_value</c>),
    /// else null: the common case without the field paths <see cref="SocketAddresses.ToTcpEndpoint"/>
    /// builds for its errors (they were most of what compiling 10,000 EDS endpoints allocated).
    /// Anything else goes through that function, which reports it.
    /// </summary>
    private static System.Net.IPEndPoint? TcpEndpoint(Address? address) =>
        address is { AddressCase: Address.AddressOneofCase.SocketAddress, SocketAddress: var socket }
            && socket.Protocol == SocketAddress.Types.Protocol.Tcp
            && socket.PortSpecifierCase != SocketAddress.PortSpecifierOneofCase.NamedPort
            && socket.PortValue <= System.Net.IPEndPoint.MaxPort
            && System.Net.IPAddress.TryParse(socket.Address, out var ip)
            ? new System.Net.IPEndPoint(ip, (int)socket.PortValue)
            : null;

    /// <summary>False, with the reason added, for an lb_endpoint that names no endpoint address.</summary>
    private static bool HasAddress(LbEndpoint lbEndpoint, LbEndpointPath lbEndpointPath, ConfigErrors errors)
    {
        if (lbEndpoint.HostIdentifierCase == LbEndpoint.HostIdentifierOneofCase.EndpointName)
        {
            errors.Add(FieldPath.Field(lbEndpointPath.ToString(), "endpoint_name"), "named endpoints (ClusterLoadAssignment.named_endpoints) are not supported yet");
            return false;
        }

        if (lbEndpoint.Endpoint?.Address is null)
        {
            errors.Add(FieldPath.Field(lbEndpointPath.ToString(), "endpoint"), "an endpoint with an address is required");
            return false;
        }

        return true;
    }

    private static List<DnsEndpoint> DnsEndpoints(ClusterLoadAssignment? assignment, string path, string typeName, ConfigErrors errors)
    {
        var endpoints = new List<DnsEndpoint>();
        ForEachEndpoint(assignment, path, errors, (locality, lbEndpoint, lbEndpointPath) =>
        {
            if (DnsName(lbEndpoint.Endpoint.Address, FieldPath.Field(FieldPath.Field(lbEndpointPath.ToString(), "endpoint"), "address"), typeName, errors) is var (name, port))
            {
                var hostname = lbEndpoint.Endpoint.Hostname.Length > 0 ? lbEndpoint.Endpoint.Hostname : name;
                endpoints.Add(new DnsEndpoint(name, port, hostname, lbEndpoint.LoadBalancingWeight ?? 1,
                    locality.Locality, locality.Priority, lbEndpoint.Metadata, lbEndpoint.HealthStatus, locality.LoadBalancingWeight ?? 0));
            }
        });
        return endpoints;
    }

    private static DnsEndpoint? LogicalDnsEndpoint(ClusterLoadAssignment? assignment, string path, ConfigErrors errors)
    {
        var localities = assignment?.Endpoints.Count ?? 0;
        var count = assignment?.Endpoints.Sum(l => l.LbEndpoints.Count) ?? 0;
        if (localities != 1 || count != 1)
        {
            errors.Add(assignment is null ? path : FieldPath.Field(path, "load_assignment"),
                $"LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint (found {count} endpoints in {localities} localities)");
            return null;
        }

        var endpoints = DnsEndpoints(assignment, path, "LOGICAL_DNS", errors);
        return endpoints.Count == 1 ? endpoints[0] : null;
    }

    /// <summary>Walks every lb_endpoint, reporting those without an endpoint address.</summary>
    private static void ForEachEndpoint(
        ClusterLoadAssignment? assignment,
        string path,
        ConfigErrors errors,
        Action<LocalityLbEndpoints, LbEndpoint, LbEndpointPath> action)
        => ForEachEndpoint(assignment, path, errors, false, action);

    private static void ForEachEndpoint(
        ClusterLoadAssignment? assignment,
        string path,
        ConfigErrors errors,
        bool pathIsAssignment,
        Action<LocalityLbEndpoints, LbEndpoint, LbEndpointPath> action)
    {
        if (assignment is null)
        {
            // Envoy accepts a cluster without endpoints: it has no hosts (requests get 503 UH).
            return;
        }

        var localitiesPath = FieldPath.Field(pathIsAssignment ? path : FieldPath.Field(path, "load_assignment"), "endpoints");
        for (var l = 0; l < assignment.Endpoints.Count; l++)
        {
            var locality = assignment.Endpoints[l];
            for (var e = 0; e < locality.LbEndpoints.Count; e++)
            {
                var lbEndpoint = locality.LbEndpoints[e];
                var lbEndpointPath = LbEndpointPath.At(localitiesPath, l, e);
                if (!HasAddress(lbEndpoint, lbEndpointPath, errors))
                {
                    continue;
                }

                action(locality, lbEndpoint, lbEndpointPath);
            }
        }
    }

    /// <summary>
    /// The field path of one lb_endpoint, made into a string only when an error names it: built
    /// for every endpoint, the paths were most of what compiling an assignment allocated.
    /// </summary>
    private readonly struct LbEndpointPath
    {
        // The lb_endpoint's path when given whole (_locality < 0), else the localities' path.
        private readonly string _path;
        private readonly int _locality;
        private readonly int _endpoint;

        private LbEndpointPath(string path, int locality, int endpoint)
        {
            _path = path;
            _locality = locality;
            _endpoint = endpoint;
        }

        public static LbEndpointPath Whole(string path) => new(path, -1, -1);

        public static LbEndpointPath At(string localitiesPath, int locality, int endpoint) => new(localitiesPath, locality, endpoint);

        public override string ToString() => _locality < 0
            ? _path
            : FieldPath.Index(FieldPath.Field(FieldPath.Index(_path, _locality), "lb_endpoints"), _endpoint);
    }

    /// <summary>The name and port of a DNS cluster's endpoint address, or null with the reason added.</summary>
    private static (string Name, int Port)? DnsName(Address address, string path, string typeName, ConfigErrors errors)
    {
        if (address.AddressCase != Address.AddressOneofCase.SocketAddress)
        {
            var kind = address.AddressCase switch
            {
                Address.AddressOneofCase.Pipe => "pipe",
                Address.AddressOneofCase.EnvoyInternalAddress => "envoy_internal_address",
                _ => null,
            };
            errors.Add(kind is null ? path : FieldPath.Field(path, kind), $"{typeName} clusters need a socket_address with a host name or IP address");
            return null;
        }

        var socketPath = FieldPath.Field(path, "socket_address");
        var socket = address.SocketAddress;
        var ok = true;
        if (socket.ResolverName.Length > 0)
        {
            errors.Add(FieldPath.Field(socketPath, "resolver_name"), $"{typeName} clusters must NOT have a custom resolver name set");
            ok = false;
        }

        if (socket.Protocol != SocketAddress.Types.Protocol.Tcp)
        {
            errors.Add(FieldPath.Field(socketPath, "protocol"), "only TCP is implemented yet");
            ok = false;
        }

        if (socket.PortSpecifierCase == SocketAddress.PortSpecifierOneofCase.NamedPort)
        {
            errors.Add(FieldPath.Field(socketPath, "named_port"), "named ports are not supported; use port_value");
            ok = false;
        }
        else if (socket.PortValue > System.Net.IPEndPoint.MaxPort)
        {
            errors.Add(FieldPath.Field(socketPath, "port_value"), $"{socket.PortValue} is not a valid port (0-65535)");
            ok = false;
        }

        if (socket.Address.Length == 0)
        {
            errors.Add(FieldPath.Field(socketPath, "address"), "a host name to resolve is required");
            ok = false;
        }

        return ok ? (socket.Address, (int)socket.PortValue) : null;
    }

    /// <summary>Name servers: IP socket addresses (port 0 = 53).</summary>
    private static List<System.Net.IPEndPoint> ServersOf(IReadOnlyList<Address> addresses, string path, ConfigErrors errors)
    {
        var servers = new List<System.Net.IPEndPoint>();
        for (var i = 0; i < addresses.Count; i++)
        {
            if (addresses[i].SocketAddress is { } socketAddress && System.Net.IPAddress.TryParse(socketAddress.Address, out var ip))
            {
                servers.Add(new System.Net.IPEndPoint(ip, socketAddress.PortValue is > 0 and <= 65535 ? (int)socketAddress.PortValue : 53));
            }
            else
            {
                errors.Add(FieldPath.Index(path, i), "a DNS resolver must be a socket_address with an IP address");
            }
        }

        return servers;
    }

    private static DnsSettings DnsSettingsOf(ClusterConfig config, string path, ConfigErrors errors, ClusterFactoryContext context)
    {
        var refreshRate = config.DnsRefreshRate?.ToTimeSpan() ?? DnsSettings.DefaultRefreshRate;
        (TimeSpan, TimeSpan)? failureRate = null;
        if (config.DnsFailureRefreshRate is { } rate)
        {
            var ratePath = FieldPath.Field(path, "dns_failure_refresh_rate");
            if (rate.BaseInterval is null)
            {
                errors.Add(FieldPath.Field(ratePath, "base_interval"), "base_interval is required");
            }
            else
            {
                var baseInterval = rate.BaseInterval.ToTimeSpan();
                // Envoy's default: ten times the base interval.
                var maxInterval = rate.MaxInterval?.ToTimeSpan() ?? baseInterval * 10;
                if (maxInterval < baseInterval)
                {
                    errors.Add(FieldPath.Field(ratePath, "max_interval"),
                        "dns_failure_refresh_rate must have max_interval greater than or equal to the base_interval");
                }

                failureRate = (baseInterval, maxInterval);
            }
        }

        // dns_resolvers names the servers to ask: Legate's own DNS client, as Envoy's c-ares with
        // those resolvers. respect_dns_ttl needs TTLs, which getaddrinfo does not give: the same
        // client with resolv.conf's servers (a resolver a test put in the context stays).
        IDnsResolver? resolver = null;
#pragma warning disable CS0612 // dns_resolvers is deprecated, yet still honoured by Envoy.
        var dnsResolvers = config.DnsResolvers;
#pragma warning restore CS0612
        if (config.TypedDnsResolverConfig?.TypedConfig is { } typed && typed.Is(Envoy.Extensions.Network.DnsResolver.Cares.V3.CaresDnsResolverConfig.Descriptor))
        {
            // envoy.network.dns_resolver.cares (it wins over dns_resolvers, as in Envoy): its
            // resolvers, or resolv.conf's without any. getaddrinfo is the default resolver itself.
            var cares = typed.Unpack<Envoy.Extensions.Network.DnsResolver.Cares.V3.CaresDnsResolverConfig>();
            resolver = cares.Resolvers.Count > 0
                ? new DnsClient(ServersOf(cares.Resolvers, FieldPath.Field(FieldPath.Field(FieldPath.Field(path, "typed_dns_resolver_config"), "typed_config"), "resolvers"), errors))
                : DnsClient.System;
        }
        else if (config.TypedDnsResolverConfig?.TypedConfig is { } getaddrinfo && getaddrinfo.Is(Envoy.Extensions.Network.DnsResolver.Getaddrinfo.V3.GetAddrInfoDnsResolverConfig.Descriptor))
        {
            // The system resolver, asked for: with respect_dns_ttl, Envoy's fixed 60 s TTL.
            resolver = SystemDnsResolver.Instance;
        }
        else if (dnsResolvers.Count > 0)
        {
            resolver = new DnsClient(ServersOf(dnsResolvers, FieldPath.Field(path, "dns_resolvers"), errors));
        }
        else if (config.RespectDnsTtl && ReferenceEquals(context.DnsResolver, SystemDnsResolver.Instance))
        {
            resolver = DnsClient.System;
        }

        return new DnsSettings(refreshRate, failureRate, config.DnsLookupFamily, config.WaitForWarmOnInit ?? true)
        {
            RespectDnsTtl = config.RespectDnsTtl,
            Resolver = resolver,
        };
    }
}
