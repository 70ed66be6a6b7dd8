using Envoy.Config.Core.V3;
using Legate.Config;
using Legate.Tests.Extensions.Filters.Http;
using Legate.Tests.Harness;
using Legate.Xds;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>
/// <c>rate_limit_settings</c> on the ADS source: a token bucket on the discovery requests of the
/// stream, as Envoy's. The server runs on a clock the test moves, so "held until a token is back"
/// is observed by counting the requests the scripted control plane receives, never by timing.
/// </summary>
public sealed class XdsRateLimitTests
{
    private static string Bootstrap(int xdsPort, string settings)
    {
        var bootstrap = AdsBootstrap(xdsPort).Replace(
            "    transport_api_version: V3\n    grpc_services:",
            $"    transport_api_version: V3\n    rate_limit_settings: {settings}\n    grpc_services:",
            StringComparison.Ordinal);
        Assert.Contains("rate_limit_settings", bootstrap, StringComparison.Ordinal);
        return bootstrap;
    }

    [Fact]
    public async Task RequestsOverTheLimitWaitForTokensAndAreSentInOrderNotDropped()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1");
        xds.Set(ListenerType, "l1");
        xds.Set(EndpointType, "e1", Endpoints("blue", blue.Port));
        var clock = new ManualClock();

        // Start-up needs four requests (CDS request and ACK, LDS request and ACK): the four tokens.
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(xds.Port, "{ max_tokens: 4, fill_rate: 1 }"), clock);
        await xds.WaitForRequestAsync(r => r.TypeUrl == ListenerType && r.ResponseNonce.Length > 0);
        Assert.Equal(4, xds.Requests.Count);
        Assert.Equal(0, XdsWait.Counter(legate, "control_plane.rate_limit_enforced"));

        // A CDS update with an EDS cluster: its ACK and the EDS request find the bucket empty and wait.
        xds.Set(ClusterType, "c2", EdsCluster("blue"));
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "control_plane.pending_requests") == 2, "two requests to wait for tokens");
        Assert.Equal(4, xds.Requests.Count);
        Assert.True(XdsWait.Counter(legate, "control_plane.rate_limit_enforced") >= 1);
        Assert.Equal(1, XdsWait.Gauge(legate, "cluster_manager.warming_clusters"));

        // One second gives one token (fill_rate 1): exactly one request goes, the first that waited.
        clock.Advance(TimeSpan.FromSeconds(1));
        await xds.WaitForRequestAsync(r => r.TypeUrl == ClusterType && r.VersionInfo == "c2");
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "control_plane.pending_requests") == 1, "one request still waiting");
        Assert.Equal(5, xds.Requests.Count);
        Assert.Equal(1, XdsWait.Gauge(legate, "cluster_manager.warming_clusters"));

        // The next token sends the EDS request; the server answers and the cluster warms, but the
        // EDS ACK waits for the token after.
        clock.Advance(TimeSpan.FromSeconds(1));
        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.ResourceNames.Contains("blue"));
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "cluster_manager.warming_clusters") == 0, "cluster blue to warm");
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "control_plane.pending_requests") == 1, "the EDS ACK to wait");
        Assert.Equal(6, xds.Requests.Count);

        clock.Advance(TimeSpan.FromSeconds(1));
        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.VersionInfo == "e1");
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "control_plane.pending_requests") == 0, "the queue to empty");

        // Everything that waited went out, in the order it was made.
        var late = xds.Requests.Skip(4).ToArray();
        Assert.Equal(3, late.Length);
        Assert.Equal((ClusterType, "c2"), (late[0].TypeUrl, late[0].VersionInfo));
        Assert.Equal((EndpointType, string.Empty), (late[1].TypeUrl, late[1].VersionInfo));
        Assert.Equal((EndpointType, "e1"), (late[2].TypeUrl, late[2].VersionInfo));
        Assert.Single(legate.Server.Clusters.Find("blue")!.PrioritySet.Current.Hosts);
    }

    [Fact]
    public async Task WithoutRateLimitSettingsNothingWaits()
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1");
        xds.Set(ListenerType, "l1");
        var clock = new ManualClock();
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port), clock);
        // More ACKs than Envoy's default bucket (100) would hold: only a configured bucket limits.
        for (var i = 2; i < 150; i++)
        {
            xds.Set(ClusterType, "c" + i);
        }

        // A frozen clock refills nothing; without a bucket every ACK still goes out.
        await xds.WaitForRequestAsync(r => r.TypeUrl == ClusterType && r.VersionInfo == "c149");
        Assert.Equal(0, XdsWait.Counter(legate, "control_plane.rate_limit_enforced"));
    }

    [Fact]
    public void TheBucketStartsFullWithEnvoysDefaultsAndRefillsAtTheFillRate()
    {
        var clock = new ManualClock();
        var limiter = new XdsRequestRateLimiter(new RateLimitSettings(), clock);
        for (var i = 0; i < 100; i++)
        {
            Assert.True(limiter.TryConsume(), "token " + i);
        }

        Assert.False(limiter.TryConsume());
        Assert.Equal(TimeSpan.FromMilliseconds(100), limiter.NextTokenAvailable());
        clock.Advance(TimeSpan.FromMilliseconds(100));
        Assert.True(limiter.TryConsume());
        Assert.False(limiter.TryConsume());

        // A long pause refills up to max_tokens, not beyond.
        clock.Advance(TimeSpan.FromHours(1));
        for (var i = 0; i < 100; i++)
        {
            Assert.True(limiter.TryConsume(), "token " + i);
        }

        Assert.False(limiter.TryConsume());
    }

    [Fact]
    public void AFillRateOfZeroIsAnErrorAtItsPath()
    {
        var yaml = Bootstrap(9, "{ max_tokens: 4, fill_rate: 0 }");
        var error = Assert.Throws<ConfigException>(() => BootstrapLoader.Load(null, yaml));
        Assert.Contains(error.Errors, e => e.Path == "dynamic_resources.ads_config.rate_limit_settings.fill_rate");
    }
}
