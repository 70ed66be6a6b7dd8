using Google.Protobuf;
using Google.Protobuf.Reflection;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;
using ClusterLoadAssignment = Envoy.Config.Endpoint.V3.ClusterLoadAssignment;
using ListenerConfig = Envoy.Config.Listener.V3.Listener;
using RouteConfiguration = Envoy.Config.Route.V3.RouteConfiguration;

namespace Legate.Xds;

/// <summary>
/// One xDS resource type: its type URL, message type, how a resource names itself, and the gRPC
/// methods of its own discovery service (used with api_type GRPC / DELTA_GRPC; ADS multiplexes
/// every type on one stream).
/// </summary>
internal sealed class XdsResourceType
{
    public const string AdsSotwMethod = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
    public const string AdsDeltaMethod = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

    public static readonly XdsResourceType Cluster = new(
        "cds", ClusterConfig.Descriptor, m => ((ClusterConfig)m).Name, ClusterConfig.NameFieldNumber,
        "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters", "/envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters", wildcard: true);

    public static readonly XdsResourceType Listener = new(
        "lds", ListenerConfig.Descriptor, m => ((ListenerConfig)m).Name, ListenerConfig.NameFieldNumber,
        "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners", "/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners", wildcard: true);

    public static readonly XdsResourceType RouteConfiguration = new(
        "rds", Envoy.Config.Route.V3.RouteConfiguration.Descriptor, m => ((RouteConfiguration)m).Name, Envoy.Config.Route.V3.RouteConfiguration.NameFieldNumber,
        "/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes", "/envoy.service.route.v3.RouteDiscoveryService/DeltaRoutes", wildcard: false);

    public static readonly XdsResourceType Endpoint = new(
        "eds", ClusterLoadAssignment.Descriptor, m => ((ClusterLoadAssignment)m).ClusterName, ClusterLoadAssignment.ClusterNameFieldNumber,
        "/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints", "/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints", wildcard: false);

    /// <summary>RTDS: one runtime layer per resource (named by <c>rtds_layer.name</c>).</summary>
    public static readonly XdsResourceType Runtime = new(
        "rtds", Envoy.Service.Runtime.V3.Runtime.Descriptor, m => ((Envoy.Service.Runtime.V3.Runtime)m).Name, Envoy.Service.Runtime.V3.Runtime.NameFieldNumber,
        "/envoy.service.runtime.v3.RuntimeDiscoveryService/StreamRuntime", "/envoy.service.runtime.v3.RuntimeDiscoveryService/DeltaRuntime", wildcard: false);

    /// <summary>SDS: TLS certificates and validation contexts by name (<c>SdsSecretConfig.name</c>).</summary>
    public static readonly XdsResourceType Secret = new(
        "sds", Envoy.Extensions.TransportSockets.Tls.V3.Secret.Descriptor, m => ((Envoy.Extensions.TransportSockets.Tls.V3.Secret)m).Name, Envoy.Extensions.TransportSockets.Tls.V3.Secret.NameFieldNumber,
        "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets", "/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets", wildcard: false);

    /// <summary>ECDS: HTTP filter configurations by name (<c>config_discovery</c> of an HTTP filter).</summary>
    public static readonly XdsResourceType ExtensionConfig = new(
        "ecds", Envoy.Config.Core.V3.TypedExtensionConfig.Descriptor, m => ((Envoy.Config.Core.V3.TypedExtensionConfig)m).Name, Envoy.Config.Core.V3.TypedExtensionConfig.NameFieldNumber,
        "/envoy.service.extension.v3.ExtensionConfigDiscoveryService/StreamExtensionConfigs", "/envoy.service.extension.v3.ExtensionConfigDiscoveryService/DeltaExtensionConfigs", wildcard: false);

    /// <summary>Every type, in Envoy's update order (clusters before endpoints before listeners before routes; the secrets and filter configurations they warm on with them; runtime last).</summary>
    public static readonly XdsResourceType[] All = [Cluster, Endpoint, Secret, Listener, RouteConfiguration, ExtensionConfig, Runtime];

    private readonly Func<IMessage, string> _nameOf;

    private XdsResourceType(string shortName, MessageDescriptor descriptor, Func<IMessage, string> nameOf, int nameField, string sotwMethod, string deltaMethod, bool wildcard)
    {
        NameField = nameField;
        ShortName = shortName;
        Descriptor = descriptor;
        TypeUrl = "type.googleapis.com/" + descriptor.FullName;
        _nameOf = nameOf;
        SotwMethod = sotwMethod;
        DeltaMethod = deltaMethod;
        IsWildcard = wildcard;
    }

    /// <summary>cds, lds, rds, eds, sds, ecds, rtds.</summary>
    public string ShortName { get; }

    public MessageDescriptor Descriptor { get; }

    public string TypeUrl { get; }

    public string SotwMethod { get; }

    /// <summary>The REST path Envoy POSTs a DiscoveryRequest to (api_type REST): <c>/v3/discovery:clusters</c>, ...</summary>
    public string RestPath => ShortName switch
    {
        "cds" => "/v3/discovery:clusters",
        "lds" => "/v3/discovery:listeners",
        "rds" => "/v3/discovery:routes",
        "eds" => "/v3/discovery:endpoints",
        "sds" => "/v3/discovery:secrets",
        "ecds" => "/v3/discovery:extension_configs",
        _ => "/v3/discovery:runtime",
    };

    public string DeltaMethod { get; }

    /// <summary>LDS and CDS subscribe to everything, and a resource absent from a state-of-the-world response is removed.</summary>
    public bool IsWildcard { get; }

    public string NameOf(IMessage resource) => _nameOf(resource);

    /// <summary>The field number of the resource's name (read from the wire bytes to find the resource in force without decoding).</summary>
    public int NameField { get; }

    /// <summary>The name in a resource's encoded bytes, without decoding it; null when absent or malformed (a hint: see <see cref="DiscoveryResponseReader.StringField"/>).</summary>
    public string? NameIn(ReadOnlySpan<byte> encoded) => DiscoveryResponseReader.StringField(encoded, NameField);

    public static XdsResourceType? FromTypeUrl(string typeUrl) => Array.Find(All, t => t.TypeUrl == typeUrl);

    public override string ToString() => TypeUrl;
}
