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

    // The cluster, http and vhost extractors find their value without their regex: the result must be
    // the regex's, including the edge cases (empty value, no dot after the prefix, .+? needing one char).
    [Theory]
    [InlineData("cluster.foo.upstream_cx_total", @"^cluster\.((.*?)\.)")]
    [InlineData("cluster..upstream_cx_total", @"^cluster\.((.*?)\.)")]
    [InlineData("cluster.nodot", @"^cluster\.((.*?)\.)")]
    [InlineData("cluster.", @"^cluster\.((.*?)\.)")]
    [InlineData("cluster.a.b.c.d", @"^cluster\.((.*?)\.)")]
    [InlineData("http.ingress.rds.main.update_success", @"^http\.((.*?)\.)")]
    [InlineData("vhost.a.vcluster.b.upstream_rq_time", @"^vhost\.((.+?)\.)")]
    [InlineData("vhost..x.y", @"^vhost\.((.+?)\.)")]
    [InlineData("vhost..", @"^vhost\.((.+?)\.)")]
    [InlineData("vhost.", @"^vhost\.((.+?)\.)")]
    public void TheRegexFreeExtractorsAgreeWithTheirRegex(string full, string pattern)
    {
        var extractors = new TagExtractors(useAllDefaultTags: true);
        var name = extractors.Extract(full);

        var match = System.Text.RegularExpressions.Regex.Match(full, pattern);
        var expected = match.Success ? full.Remove(match.Groups[1].Index, match.Groups[1].Length) : full;
        var first = name.Tags.FirstOrDefault(t => t.Name is "envoy.cluster_name" or "envoy.http_conn_manager_prefix" or "envoy.virtual_host");
        Assert.Equal(match.Success ? match.Groups[2].Value : null, first.Value);
        Assert.Equal(expected, name.TagExtracted); // no other default extractor matches these names
    }

    [Fact]
    public void StatsOfOneClusterShareTheirTagValueAndExtractedNamesAreShared()
    {
        var extractors = new TagExtractors(useAllDefaultTags: true);
        var a = extractors.Extract("cluster.c1.upstream_cx_total");
        var b = extractors.Extract("cluster.c1.upstream_rq_total");
        var c = extractors.Extract("cluster.c2.upstream_cx_total");

        Assert.Same(a.Tags[0].Value, b.Tags[0].Value);
        Assert.Equal("c2", c.Tags[0].Value);
        Assert.Same(a.TagExtracted, c.TagExtracted);
        Assert.Equal("cluster.upstream_cx_total", c.TagExtracted);
    }

    [Fact]
    public void StatsOfOneClusterShareOneTagArrayAndSplitNamesExtractAsJoinedOnes()
    {
        var extractors = new TagExtractors(useAllDefaultTags: true);
        var a = extractors.Extract("cluster.c1.", "upstream_cx_total");
        var b = extractors.Extract("cluster.c1.", "upstream_rq_total");
        var coded = extractors.Extract("cluster.c1.", "upstream_rq_2xx");
        var c = extractors.Extract("cluster.c1.", "upstream_cx_active");

        Assert.Same(a.Tags, b.Tags);
        Assert.Equal("cluster.c1.upstream_rq_2xx", coded.Full);
        Assert.Equal("cluster.upstream_rq_xx", coded.TagExtracted);
        Assert.Equal("envoy.cluster_name=c1;envoy.response_code_class=2", string.Join(";", coded.Tags.Select(t => $"{t.Name}={t.Value}")));
        Assert.Equal(a.Tags, c.Tags);
        Assert.Equal("cluster.c1.", a.Prefix);
        Assert.Equal("upstream_cx_total", a.Suffix);
        Assert.Same(extractors.Extract("cluster.c1.upstream_cx_total").TagExtracted, a.TagExtracted);
    }

    [Fact]
    public void UseAllDefaultTagsFalseExtractsNothing()
    {
        var name = new TagExtractors(useAllDefaultTags: false).Extract("cluster.foo.upstream_rq_200");

        Assert.Equal("cluster.foo.upstream_rq_200", name.TagExtracted);
        Assert.Empty(name.Tags);
    }
}
