using Legate.Config;

namespace Legate.Tests.Config;

public sealed class ApiTypesTests
{
    [Theory]
    [InlineData("envoy.config.cluster.v3.Cluster")]
    [InlineData("envoy.config.cluster.v3.Cluster.CustomClusterType")]
    [InlineData("envoy.extensions.filters.http.grpc_http1_bridge.v3.Config")]
    [InlineData("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager")]
    [InlineData("envoy.config.filter.http.grpc_http1_reverse_bridge.v2alpha1.FilterConfig")]
    [InlineData("udpa.type.v1.TypedStruct")]
    [InlineData("xds.type.v3.TypedStruct")]
    [InlineData("google.protobuf.Duration")]
    [InlineData("google.rpc.Status")]
    public void Naming_rules_find_the_generated_class(string fullName)
    {
        Assert.Equal(fullName, ApiTypes.ResolveByNamingRules(fullName)?.FullName);
    }

    [Fact]
    public void Every_generated_message_resolves_by_naming_rules_or_by_the_catalog()
    {
        // Map entries have no class of their own; protoc's plugin protos (in the runtime, never in
        // config) keep their own namespace. Every other message resolves without the catalog.
        var misses = ApiTypes.Messages
            .Where(kv => kv.Value.ClrType is not null && !kv.Key.StartsWith("google.protobuf.compiler.", StringComparison.Ordinal))
            .Where(kv => ApiTypes.ResolveByNamingRules(kv.Key) is null).Select(kv => kv.Key).ToArray();

        // Both paths give the same answer.
        Assert.All(ApiTypes.Messages, kv => Assert.Same(kv.Value, ApiTypes.FindByTypeUrl(ApiTypes.TypeUrlPrefix + kv.Key)));
        Assert.Empty(misses);
    }

    [Fact]
    public void Unknown_type_urls_resolve_to_null()
    {
        Assert.Null(ApiTypes.FindByTypeUrl("type.googleapis.com/envoy.nope.v3.Nope"));
        Assert.Null(ApiTypes.FindByTypeUrl("type.googleapis.com/envoy.config.cluster.v3.Clusterx"));
    }
}
