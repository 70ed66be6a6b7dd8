using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf.WellKnownTypes;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;
using RouterConfig = Envoy.Extensions.Filters.Http.Router.V3.Router;

namespace Legate.Tests.Xds;

/// <summary>Resources and bootstraps for the xDS tests.</summary>
internal static class XdsTestResources
{
    public const string ClusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    public const string ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener";
    public const string RouteType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    public const string EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    public const string SecretType = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
    public const string ExtensionConfigType = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";

    /// <summary>
    /// Serves one EDS cluster <paramref name="cluster"/> at 127.0.0.1:<paramref name="port"/>
    /// behind the RDS listener "ingress" whose route table "main" sends everything to it; the
    /// versions are c1/e1/l1/r1, or <paramref name="version"/> for all four.
    /// </summary>
    public static void ServeOneRoutedCluster(ScriptedXdsServer xds, string cluster, int port, string? version = null)
    {
        xds.Set(ClusterType, version ?? "c1", EdsCluster(cluster));
        xds.Set(EndpointType, version ?? "e1", Endpoints(cluster, port));
        xds.Set(ListenerType, version ?? "l1", RdsListener("ingress", "main"));
        xds.Set(RouteType, version ?? "r1", Routes("main", cluster));
    }

    /// <summary>A bootstrap whose CDS and LDS come over ADS from 127.0.0.1:<paramref name="xdsPort"/>.</summary>
    public static string AdsBootstrap(int xdsPort, string apiType = "AGGREGATED_GRPC", string initialFetchTimeout = "30s", string extraClusters = "") => $$"""
        node: { id: test-node, cluster: test-cluster }
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        dynamic_resources:
          ads_config:
            api_type: {{apiType}}
            transport_api_version: V3
            grpc_services:
            - envoy_grpc: { cluster_name: xds_cluster }
              retry_policy:
                retry_back_off: { base_interval: 0.1s, max_interval: 1s }
          cds_config: { ads: {}, resource_api_version: V3, initial_fetch_timeout: {{initialFetchTimeout}} }
          lds_config: { ads: {}, resource_api_version: V3, initial_fetch_timeout: {{initialFetchTimeout}} }
        static_resources:
          clusters:
          - name: xds_cluster
            type: STATIC
            connect_timeout: 1s
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
            load_assignment:
              cluster_name: xds_cluster
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{xdsPort}} } } }
        {{extraClusters}}
        """;

    public static ConfigSource Ads() => new() { Ads = new AggregatedConfigSource(), ResourceApiVersion = ApiVersion.V3 };

    public static Cluster EdsCluster(string name, string? serviceName = null) => new()
    {
        Name = name,
        Type = Cluster.Types.DiscoveryType.Eds,
        ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)),
        EdsClusterConfig = new Cluster.Types.EdsClusterConfig { EdsConfig = Ads(), ServiceName = serviceName ?? string.Empty },
    };

    public static ClusterLoadAssignment Endpoints(string name, params int[] ports)
    {
        var locality = new LocalityLbEndpoints();
        foreach (var port in ports)
        {
            locality.LbEndpoints.Add(new LbEndpoint
            {
                Endpoint = new Endpoint { Address = new Address { SocketAddress = new SocketAddress { Address = "127.0.0.1", PortValue = (uint)port } } },
            });
        }

        var assignment = new ClusterLoadAssignment { ClusterName = name };
        assignment.Endpoints.Add(locality);
        return assignment;
    }

    /// <summary>An HTTP listener on 127.0.0.1 (port 0 unless given) whose routes come from RDS <paramref name="routeName"/>.</summary>
    public static Listener RdsListener(string name, string routeName, int port = 0) =>
        HttpListener(name, port, hcm => hcm.Rds = new Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.Rds { ConfigSource = Ads(), RouteConfigName = routeName });

    public static Listener InlineListener(string name, RouteConfiguration routes, int port = 0) =>
        HttpListener(name, port, hcm => hcm.RouteConfig = routes);

    private static Listener HttpListener(string name, int port, Action<Hcm> routes)
    {
        var hcm = new Hcm { StatPrefix = name };
        routes(hcm);
        hcm.HttpFilters.Add(new Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter
        {
            Name = "envoy.filters.http.router",
            TypedConfig = Any.Pack(new RouterConfig()),
        });
        var chain = new FilterChain();
        chain.Filters.Add(new Envoy.Config.Listener.V3.Filter { Name = "envoy.filters.network.http_connection_manager", TypedConfig = Any.Pack(hcm) });
        var listener = new Listener
        {
            Name = name,
            Address = new Address { SocketAddress = new SocketAddress { Address = "127.0.0.1", PortValue = (uint)port } },
        };
        listener.FilterChains.Add(chain);
        return listener;
    }

    /// <summary>One virtual host "*" routing <paramref name="prefix"/> to <paramref name="cluster"/>.</summary>
    public static RouteConfiguration Routes(string name, string cluster, string prefix = "/")
    {
        var host = new VirtualHost { Name = "all" };
        host.Domains.Add("*");
        host.Routes.Add(new Route { Match = new RouteMatch { Prefix = prefix }, Route_ = new RouteAction { Cluster = cluster } });
        var config = new RouteConfiguration { Name = name };
        config.VirtualHosts.Add(host);
        return config;
    }
}
