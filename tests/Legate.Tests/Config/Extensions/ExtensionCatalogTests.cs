using Legate.Config.Extensions;

namespace Legate.Tests.Config.Extensions;

public sealed class ExtensionCatalogTests
{
    [Theory]
    [InlineData("envoy.extensions.filters.http.router.v3.Router", "envoy.filters.http.router", "HttpFilter")]
    [InlineData("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", "envoy.filters.network.http_connection_manager", "NetworkFilter")]
    [InlineData("envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector", "envoy.filters.listener.tls_inspector", "ListenerFilter")]
    [InlineData("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", "envoy.transport_sockets.tls", "TransportSocket")]
    [InlineData("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog", "envoy.access_loggers.stdout", "AccessLogger")]
    [InlineData("envoy.config.trace.v3.ZipkinConfig", "envoy.tracers.zipkin", "Tracer")]
    [InlineData("envoy.config.metrics.v3.StatsdSink", "envoy.stat_sinks.statsd", "StatSink")]
    [InlineData("envoy.extensions.clusters.aggregate.v3.ClusterConfig", "envoy.clusters.aggregate", "Cluster")]
    [InlineData("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "UpstreamProtocolOptions")]
    [InlineData("envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig", "envoy.filters.udp_listener.udp_proxy", "UdpListenerFilter")]
    public void Names_and_categories_follow_envoy(string configType, string name, string category)
    {
        var info = ExtensionCatalog.FindByConfigType(configType);

        Assert.NotNull(info);
        Assert.Equal(name, info.Name);
        Assert.Equal(category, info.Category.ToString());
    }

    [Fact]
    public void Messages_outside_the_extension_tree_configure_no_extension()
    {
        Assert.Null(ExtensionCatalog.FindByConfigType("envoy.config.cluster.v3.Cluster"));
        Assert.Null(ExtensionCatalog.NameOf("envoy.config.route.v3.Route"));
    }

    [Theory]
    [InlineData("envoy.router", "envoy.filters.http.router")]
    [InlineData("envoy.http_connection_manager", "envoy.filters.network.http_connection_manager")]
    [InlineData("envoy.filters.http.router", "envoy.filters.http.router")]
    [InlineData("envoy.filters.http.cors", "envoy.filters.http.cors")]
    public void Legacy_and_canonical_names_resolve(string name, string canonical)
    {
        Assert.Equal(canonical, ExtensionCatalog.FindByName(name)?.Name);
    }

    [Fact]
    public void Only_implemented_extensions_are_marked_so()
    {
        Assert.True(ExtensionCatalog.FindByName("envoy.filters.http.router")!.Implemented);
        Assert.True(ExtensionCatalog.FindByName("envoy.filters.network.http_connection_manager")!.Implemented);
        Assert.False(ExtensionCatalog.FindByName("envoy.filters.http.cors")!.Implemented);
        Assert.Null(ExtensionCatalog.FindByName("envoy.filters.http.no_such_filter"));
    }
}
