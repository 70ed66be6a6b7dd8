using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Config.Extensions;
using Legate.Config.Semantic;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;

namespace Legate.Tests.Config;

/// <summary>
/// The config walkers skip subtrees that cannot hold what they look for (TypeReach); what they
/// look for must still be found wherever it can be, maps and Any included.
/// </summary>
public sealed class TypeReachTests
{
    [Fact]
    public void AnswersFromTheSchemaThroughMapsAndRecursiveTypes()
    {
        var reach = new TypeReach(type => type == DataSource.Descriptor);

        Assert.False(reach.Reaches(Endpoint.Descriptor)); // address, health check config: no DataSource
        Assert.False(reach.Reaches(Struct.Descriptor)); // recursive (Struct -> Value -> Struct), ends
        Assert.True(reach.Reaches(ClusterConfig.Descriptor)); // transport socket, health checks...
        Assert.True(reach.Reaches(DataSource.Descriptor));
        Assert.False(reach.Follow(LbEndpoint.Descriptor.FindFieldByName("endpoint")));
        Assert.True(reach.Follow(ClusterConfig.Descriptor.FindFieldByName("health_checks")));
    }

    [Fact]
    public void ATargetFieldIsFollowedWhateverItsType()
    {
        var reach = new TypeReach(_ => false, field => field.Name == "typed_extension_protocol_options");

        Assert.True(reach.Follow(ClusterConfig.Descriptor.FindFieldByName("typed_extension_protocol_options")));
        Assert.True(reach.Reaches(ClusterConfig.Descriptor));
        Assert.False(reach.Reaches(Endpoint.Descriptor));
    }

    [Fact]
    public void TheExtensionCheckerStillFindsAWrongTypeInAMapSlot()
    {
        var cluster = new ClusterConfig { Name = "c" };
        cluster.TypedExtensionProtocolOptions.Add("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", Any.Pack(new Envoy.Extensions.Filters.Http.Router.V3.Router()));
        var errors = new ConfigErrors();

        ExtensionChecker.Check(cluster, "", errors);

        var error = Assert.Single(errors.Errors);
        Assert.Contains("typed_extension_protocol_options", error.Path);
        Assert.Contains("cannot be used as", error.Message);
    }

    [Fact]
    public void TheDataSourceCheckerStillFindsAMissingFileDeepInACluster()
    {
        var cluster = new ClusterConfig { Name = "c" };
        cluster.LoadAssignment = new ClusterLoadAssignment { ClusterName = "c" };
        cluster.LoadAssignment.Endpoints.Add(new LocalityLbEndpoints { LbEndpoints = { new LbEndpoint { Endpoint = new Endpoint { Address = new Address { SocketAddress = new SocketAddress { Address = "10.0.0.1", PortValue = 80 } } } } } });
        cluster.TransportSocket = new TransportSocket
        {
            Name = "envoy.transport_sockets.tls",
            TypedConfig = Any.Pack(new Envoy.Extensions.TransportSockets.Tls.V3.UpstreamTlsContext
            {
                CommonTlsContext = new Envoy.Extensions.TransportSockets.Tls.V3.CommonTlsContext
                {
                    ValidationContext = new Envoy.Extensions.TransportSockets.Tls.V3.CertificateValidationContext { TrustedCa = new DataSource { Filename = "/nonexistent/ca.pem" } },
                },
            }),
        };
        var errors = new ConfigErrors();

        DataSourceChecker.Check(cluster, errors, _ => false);

        var error = Assert.Single(errors.Errors);
        Assert.Equal("transport_socket.typed_config.common_tls_context.validation_context.trusted_ca.filename", error.Path);
    }
}
