using Envoy.Config.Endpoint.V3;
using Google.Protobuf.Reflection;
using Legate.Upstream;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;

namespace Legate.Tests.Upstream;

public sealed class UpstreamImplementedFieldsTests
{
    [Fact]
    public void EveryListedFieldExists()
    {
        var descriptors = new MessageDescriptor[]
        {
            ClusterConfig.Descriptor, ClusterConfig.Types.RefreshRate.Descriptor, ClusterLoadAssignment.Descriptor,
            LocalityLbEndpoints.Descriptor, LbEndpoint.Descriptor, Endpoint.Descriptor,
        }.ToDictionary(d => d.FullName);

        Assert.Equal(descriptors.Keys.Order(), UpstreamImplementedFields.Fields.Keys.Order());
        foreach (var (type, fields) in UpstreamImplementedFields.Fields)
        {
            Assert.All(fields, field => Assert.NotNull(descriptors[type].FindFieldByName(field)));
        }
    }
}
