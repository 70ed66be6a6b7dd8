using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Tests.Harness;
using Legate.Xds;
using static Legate.Tests.Xds.XdsTestResources;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;

namespace Legate.Tests.Xds;

/// <summary>
/// xDS subscription hygiene over ADS (state of the world and Delta), against the tests' scripted
/// server: the SDS secret of a CDS cluster's TLS context leaves the subscription when the cluster
/// is replaced by a version that no longer names it or is removed, and a listener or cluster
/// version that fails to compile gives back the route table and secrets it had already asked for
/// (SotW: later requests no longer list them; Delta: <c>resource_names_unsubscribe</c>).
/// </summary>
public sealed class SubscriptionReleaseTests : IDisposable
{
    private readonly TestCertificates _pki = new();

    public void Dispose() => _pki.Dispose();

    [Theory]
    [InlineData("AGGREGATED_GRPC")]
    [InlineData("AGGREGATED_DELTA_GRPC")]
    public async Task AClusterSecretLeavesTheSubscriptionWhenTheClusterIsReplacedAndThenRemoved(string apiType)
    {
        var delta = apiType.Contains("DELTA", StringComparison.Ordinal);
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(SecretType, "s1", SdsTests.CaSecret("ca_a", _pki.Root.CertificatePem), SdsTests.CaSecret("ca_b", _pki.Root.CertificatePem));
        xds.Set(ClusterType, "c1", TlsCluster("secure", "ca_a"));
        xds.Set(ListenerType, "l1", InlineListener("plain", Routes("plain-routes", "secure")));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType));
        await XdsWait.UntilAsync(() => legate.Server.Clusters.Find("secure") is not null, "the TLS cluster to warm with its CA");
        Assert.Equal(["ca_a"], SecretNames(legate));

        // A new version of the cluster trusts another CA: once it is in force, ca_a has no user left.
        var mark = delta ? xds.DeltaRequests.Count : xds.Requests.Count;
        xds.Set(ClusterType, "c2", TlsCluster("secure", "ca_b"));
        await ExpectReleasedAsync(xds, delta, mark, ["ca_b"], "ca_a");
        Assert.Equal(["ca_b"], SecretNames(legate));
        if (delta)
        {
            Assert.DoesNotContain(xds.DeltaRequests.Skip(mark), r => r.TypeUrl == SecretType && r.ResourceNamesUnsubscribe.Contains("ca_b"));
        }

        // The cluster is removed: its secret goes with it.
        mark = delta ? xds.DeltaRequests.Count : xds.Requests.Count;
        xds.Set(ClusterType, "c3");
        await ExpectReleasedAsync(xds, delta, mark, [], "ca_b");
        Assert.Null(legate.Server.Clusters.Find("secure"));
        Assert.Empty(SecretNames(legate));
    }

    [Theory]
    [InlineData("AGGREGATED_GRPC")]
    [InlineData("AGGREGATED_DELTA_GRPC")]
    public async Task AListenerAndAClusterThatFailToCompileGiveBackTheNamesTheyHadTaken(string apiType)
    {
        var delta = apiType.Contains("DELTA", StringComparison.Ordinal);
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", TlsCluster("placeholder", caSecret: null));
        xds.Set(ListenerType, "l1", InlineListener("plain", Routes("plain-routes", "placeholder")));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType));
        await XdsWait.UntilAsync(() => legate.Server.Listeners.Find("plain")?.BoundEndpoint is not null, "the first listener");

        // The first filter chain names RDS "broken-routes" and SDS "broken_cert", and compiles; the
        // second names a static secret that does not exist, so the listener fails to compile.
        var mark = delta ? xds.DeltaRequests.Count : xds.Requests.Count;
        xds.Set(ListenerType, "l2", InlineListener("plain", Routes("plain-routes", "placeholder")), BrokenListener());
        var nack = delta
            ? (await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == ListenerType && r.ErrorDetail is not null)).ErrorDetail
            : (await xds.WaitForRequestAsync(r => r.TypeUrl == ListenerType && r.ErrorDetail is not null)).ErrorDetail;
        Assert.Contains("broken", nack.Message);
        Assert.Contains("Unknown static secret: missing_cert", nack.Message);
        await XdsWait.UntilAsync(() => SecretNames(legate).Length == 0 && RouteNames(legate).Length == 0, "the broken listener's names to be given back");
        if (delta)
        {
            // It did subscribe them while it compiled, and unsubscribed them after.
            await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == SecretType && r.ResourceNamesUnsubscribe.Contains("broken_cert"));
            await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == RouteType && r.ResourceNamesUnsubscribe.Contains("broken-routes"));
        }
        else
        {
            Assert.DoesNotContain(xds.Requests.Skip(mark), r => r.TypeUrl == SecretType && r.ResourceNames.Contains("broken_cert") && r.ResponseNonce.Length > 0);
        }

        // The same for a cluster: its client certificate comes from SDS, its CA names a static secret that does not exist.
        var broken = TlsCluster("broken-cluster", caSecret: null);
        var context = broken.TransportSocket.TypedConfig.Unpack<UpstreamTlsContext>();
        context.CommonTlsContext.TlsCertificateSdsSecretConfigs.Add(new SdsSecretConfig { Name = "broken_client_cert", SdsConfig = Ads() });
        context.CommonTlsContext.ValidationContextSdsSecretConfig = new SdsSecretConfig { Name = "missing_ca" };
        broken.TransportSocket.TypedConfig = Any.Pack(context);
        xds.Set(ClusterType, "c2", TlsCluster("placeholder", caSecret: null), broken);
        var clusterNack = delta
            ? (await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == ClusterType && r.ErrorDetail is not null)).ErrorDetail
            : (await xds.WaitForRequestAsync(r => r.TypeUrl == ClusterType && r.ErrorDetail is not null)).ErrorDetail;
        Assert.Contains("Unknown static secret: missing_ca", clusterNack.Message);
        if (delta)
        {
            await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == SecretType && r.ResourceNamesUnsubscribe.Contains("broken_client_cert"));
        }

        await XdsWait.UntilAsync(() => SecretNames(legate).Length == 0, "the broken cluster's secret to be given back");
        Assert.Null(legate.Server.Clusters.Find("broken-cluster"));
        Assert.Equal("status 503", await XdsWait.GetAsync(legate, "plain"));
    }

    private static string[] SecretNames(InProcessLegate legate) => legate.Server.Xds.Find(XdsResourceType.Secret)?.Names() ?? [];

    private static string[] RouteNames(InProcessLegate legate) => legate.Server.Xds.Find(XdsResourceType.RouteConfiguration)?.Names() ?? [];

    /// <summary>Waits for a Secret request after <paramref name="mark"/> that no longer names <paramref name="released"/>: SotW lists <paramref name="sotwNames"/>, Delta unsubscribes it.</summary>
    private static async Task ExpectReleasedAsync(ScriptedXdsServer xds, bool delta, int mark, string[] sotwNames, string released)
    {
        if (delta)
        {
            await XdsWait.UntilAsync(() => xds.DeltaRequests.Skip(mark).Any(r => r.TypeUrl == SecretType && r.ResourceNamesUnsubscribe.Contains(released)), released + " to be unsubscribed");
        }
        else
        {
            await XdsWait.UntilAsync(() => xds.Requests.Skip(mark).Any(r => r.TypeUrl == SecretType && r.ResourceNames.SequenceEqual(sotwNames)), released + " to leave the requests");
        }
    }

    /// <summary>A static cluster (one unused endpoint) with an UpstreamTlsContext whose CA comes from SDS <paramref name="caSecret"/> over ADS (none: no validation context).</summary>
    private static ClusterConfig TlsCluster(string name, string? caSecret)
    {
        var cluster = new ClusterConfig
        {
            Name = name,
            Type = ClusterConfig.Types.DiscoveryType.Static,
            ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            LoadAssignment = Endpoints(name, 1),
        };
        var common = new CommonTlsContext();
        if (caSecret is not null)
        {
            common.ValidationContextSdsSecretConfig = new SdsSecretConfig { Name = caSecret, SdsConfig = Ads() };
        }

        cluster.TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(new UpstreamTlsContext { CommonTlsContext = common }) };
        return cluster;
    }

    /// <summary>Listener "broken": chain 0 (RDS broken-routes, SDS broken_cert) compiles; chain 1 (server name other.example) names a missing static secret.</summary>
    private static Listener BrokenListener()
    {
        var listener = RdsListener("broken", "broken-routes");
        var good = new CommonTlsContext();
        good.TlsCertificateSdsSecretConfigs.Add(new SdsSecretConfig { Name = "broken_cert", SdsConfig = Ads() });
        listener.FilterChains[0].TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(new DownstreamTlsContext { CommonTlsContext = good }) };

        var second = listener.FilterChains[0].Clone();
        second.FilterChainMatch = new FilterChainMatch();
        second.FilterChainMatch.ServerNames.Add("other.example");
        var bad = new CommonTlsContext();
        bad.TlsCertificateSdsSecretConfigs.Add(new SdsSecretConfig { Name = "missing_cert" });
        second.TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(new DownstreamTlsContext { CommonTlsContext = bad }) };
        listener.FilterChains.Add(second);
        return listener;
    }
}
