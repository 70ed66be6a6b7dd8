using Legate.Stats;

namespace Legate.Tests.Stats;

public sealed class TagExtractorsTests
{
    [Theory]
    [InlineData("cluster.foo.upstream_rq_200", "cluster.upstream_rq", "envoy.cluster_name=foo;envoy.response_code=200")]
    [InlineData("http.ingress.downstream_rq_2xx", "http.downstream_rq_xx", "envoy.http_conn_manager_prefix=ingress;envoy.response_code_class=2")]
    [InlineData("listener.127.0.0.1_10000.downstream_cx_total", "listener.downstream_cx_total", "envoy.listener_address=127.0.0.1_10000")]
    [InlineData("listener.[__1]_10000.downstream_cx_total", "listener.downstream_cx_total", "envoy.listener_address=[__1]_10000")]
    [InlineData("listener_manager.worker_3.dispatcher.loop_duration_us", "listener_manager.dispatcher.loop_duration_us", "envoy.worker_id=worker_3")]
    [InlineData("server.live", "server.live", "")]
    public void ExtractsEnvoyDefaultTags(string full, string extracted, string tags)
    {
        var name = new TagExtractors(useAllDefaultTags: true).Extract(full);

        Assert.Equal(full, name.Full);
        Assert.Equal(extracted, name.TagExtracted);
        Assert.Equal(tags, string.Join(";", name.Tags.Select(t => $"{t.Name}={t.Value}")));
    }

    [Fact]
    public void UseAllDefaultTagsFalseExtractsNothing()
    {
        var name = new TagExtractors(useAllDefaultTags: false).Extract("cluster.foo.upstream_rq_200");

        Assert.Equal("cluster.foo.upstream_rq_200", name.TagExtracted);
        Assert.Empty(name.Tags);
    }
}
