using System.Buffers;
using Envoy.Config.Endpoint.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Tests.Harness;
using Legate.Xds;
using Legate.Xds.Server;
using static Legate.Tests.Xds.XdsTestResources;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;

namespace Legate.Tests.Xds;

/// <summary>
/// A state-of-the-world response at scale repeats every resource for the one that changed: the
/// client reads it from the wire bytes, finds each unchanged resource by its bytes (not copied,
/// decoded or rebuilt), and still rejects the whole response for one invalid resource; the
/// bundled server writes it from each resource's cached encoding, byte for byte what the
/// generated serialiser writes.
/// </summary>
public sealed class SotwWireTests
{
    [Fact]
    public async Task OneChangedAssignmentInALargeResponseIsAppliedAndNoOtherClusterIsRebuilt()
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        const int count = 300;
        var ports = Enumerable.Range(0, count).Select(c => new[] { 20_000 + c, 21_000 + c }).ToArray();
        xds.Set(ClusterType, "c1", Enumerable.Range(0, count).Select(c => (IMessage)EdsCluster($"c{c}")).ToArray());
        xds.Set(EndpointType, "e1", Assignments(ports));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        var clusters = Enumerable.Range(0, count).Select(c => legate.Server.Clusters.Find($"c{c}")).ToArray();
        await XdsWait.UntilAsync(() => clusters.All(c => c?.PrioritySet.Current.Hosts.Length == 2), "every cluster's endpoints");
        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.VersionInfo == "e1");
        var before = clusters.Select(c => c!.PrioritySet.Current).ToArray();
        var successes = XdsWait.Counter(legate, "cluster.c17.update_success");

        ports[17][1] = 30_000;
        xds.Set(EndpointType, "e2", Assignments(ports));
        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.VersionInfo == "e2" && r.ErrorDetail is null);

        var changed = clusters[17]!.PrioritySet.Current;
        Assert.NotSame(before[17], changed);
        Assert.Equal([20_017, 30_000], changed.Hosts.Select(h => h.Address.Port));
        Assert.Same(before[17].Hosts[0], changed.Hosts[0]);
        for (var c = 0; c < count; c++)
        {
            if (c != 17)
            {
                Assert.Same(before[c], clusters[c]!.PrioritySet.Current);
                Assert.Same(clusters[c], legate.Server.Clusters.Find($"c{c}"));
            }
        }

        Assert.Equal(successes + 1, XdsWait.Counter(legate, "cluster.c17.update_success"));
    }

    [Fact]
    public async Task OneInvalidChangedAssignmentAmongUnchangedOnesRejectsTheWholeResponse()
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        const int count = 300;
        var ports = Enumerable.Range(0, count).Select(c => new[] { 20_000 + c }).ToArray();
        xds.Set(ClusterType, "c1", Enumerable.Range(0, count).Select(c => (IMessage)EdsCluster($"c{c}")).ToArray());
        xds.Set(EndpointType, "e1", Assignments(ports));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        var clusters = Enumerable.Range(0, count).Select(c => legate.Server.Clusters.Find($"c{c}")).ToArray();
        await XdsWait.UntilAsync(() => clusters.All(c => c?.PrioritySet.Current.Hosts.Length == 1), "every cluster's endpoints");
        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.VersionInfo == "e1");
        var before = clusters.Select(c => c!.PrioritySet.Current).ToArray();

        // c5 changes validly and c250 invalidly (weight 0): neither is applied.
        ports[5][0] = 30_005;
        var assignments = Assignments(ports);
        ((ClusterLoadAssignment)assignments[250]).Endpoints[0].LbEndpoints[0].LoadBalancingWeight = 0;
        xds.Set(EndpointType, "e2", assignments);

        var nack = await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.ErrorDetail is not null);
        Assert.Equal("e1", nack.VersionInfo);
        Assert.Contains("c250", nack.ErrorDetail.Message);
        Assert.Contains("endpoints[0].lb_endpoints[0].load_balancing_weight", nack.ErrorDetail.Message);
        Assert.DoesNotContain("c5:", nack.ErrorDetail.Message);
        for (var c = 0; c < count; c++)
        {
            Assert.Same(before[c], clusters[c]!.PrioritySet.Current);
        }

        // The same response made valid again is applied (the rejected bytes were not remembered as accepted).
        ((ClusterLoadAssignment)assignments[250]).Endpoints[0].LbEndpoints[0].LoadBalancingWeight = null;
        xds.Set(EndpointType, "e3", assignments);
        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.VersionInfo == "e3" && r.ErrorDetail is null);
        Assert.Equal(30_005, clusters[5]!.PrioritySet.Current.Hosts[0].Address.Port);
        Assert.Same(before[6], clusters[6]!.PrioritySet.Current);
    }

    [Fact]
    public async Task UnchangedBytesAreNeitherCopiedNorDecodedAgainAndOnlyTheChangedResourceIsNew()
    {
        var handler = new RecordingHandler();
        var subscription = Subscription(XdsResourceType.Endpoint, handler);
        var ports = Enumerable.Range(0, 1_000).Select(c => new[] { 20_000 + c }).ToArray();
        Assert.Empty(await ProcessAsync(subscription, Response("v1", Assignments(ports))));
        var accepted = subscription.Resources.ToDictionary(r => r.Key, r => r.Value);

        ports[400][0] = 30_400;
        Assert.Empty(await ProcessAsync(subscription, Response("v2", Assignments(ports))));

        var update = handler.Updates[^1];
        Assert.Equal(1_000, update.Resources.Count);
        Assert.Equal(["c400"], update.Resources.Where(r => !r.IsUnchanged).Select(r => r.Name));
        Assert.Equal("v2", subscription.AcceptedVersion);
        foreach (var (name, resource) in subscription.Resources)
        {
            Assert.Equal("v2", resource.Version);
            if (name == "c400")
            {
                Assert.NotSame(accepted[name].Message, resource.Message);
                Assert.Equal(30_400u, ((ClusterLoadAssignment)resource.Message).Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.PortValue);
            }
            else
            {
                // The bytes and message in force are kept: the response's bytes were compared, not copied or decoded.
                Assert.Same(accepted[name].Message, resource.Message);
                Assert.Same(accepted[name].Encoded, resource.Encoded);
                Assert.Equal(accepted[name].LastUpdated, resource.LastUpdated);
            }
        }
    }

    [Fact]
    public async Task AnInvalidChangedClusterRejectsTheResponseAndTheClustersItLeftOutStay()
    {
        var handler = new RecordingHandler();
        var subscription = Subscription(XdsResourceType.Cluster, handler);
        var clusters = Enumerable.Range(0, 100).Select(c => (IMessage)EdsCluster($"c{c}")).ToArray();
        Assert.Empty(await ProcessAsync(subscription, Response("v1", clusters)));
        var accepted = subscription.Resources;

        // c3 absent, c7 invalid (a negative connect_timeout): the whole response is rejected.
        var next = clusters.Where(c => ((ClusterConfig)c).Name != "c3").Select(c => (IMessage)((ClusterConfig)c).Clone()).ToArray();
        ((ClusterConfig)next.Single(c => ((ClusterConfig)c).Name == "c7")).ConnectTimeout = new Duration { Seconds = -1 };
        var errors = await ProcessAsync(subscription, Response("v2", next));

        Assert.Equal(["c7"], errors.Select(e => e.Resource));
        Assert.Single(handler.Updates);
        Assert.Same(accepted, subscription.Resources);
        Assert.Equal("v1", subscription.AcceptedVersion);
        Assert.NotNull(subscription.ErrorState);

        // Valid again: c3 is removed (wildcard), everything else unchanged.
        ((ClusterConfig)next.Single(c => ((ClusterConfig)c).Name == "c7")).ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1));
        Assert.Empty(await ProcessAsync(subscription, Response("v3", next)));
        Assert.Equal(["c3"], handler.Updates[^1].Removed);
        Assert.Equal(["c7"], handler.Updates[^1].Resources.Where(r => !r.IsUnchanged).Select(r => r.Name));
        Assert.False(subscription.Resources.ContainsKey("c3"));
        Assert.Null(subscription.ErrorState);
    }

    [Fact]
    public async Task TheSameBytesTwiceAreADuplicateAndTheSameContentInOtherBytesIsUnchanged()
    {
        var subscription = Subscription(XdsResourceType.Endpoint, new RecordingHandler());
        Assert.Empty(await ProcessAsync(subscription, Response("v1", Endpoints("a", 1), Endpoints("b", 2))));

        // The same bytes twice: the second is a duplicate, as when it is decoded.
        var errors = await ProcessAsync(subscription, Response("v2", Endpoints("a", 1), Endpoints("a", 1)));
        Assert.Contains(errors, e => e.Resource == "a" && e.Message.Contains("duplicate"));
        Assert.Equal("v1", subscription.AcceptedVersion);

        // Same content in other bytes (the name after the endpoints): decoded, found equal, its new bytes kept.
        var a = new ClusterLoadAssignment { Endpoints = { Endpoints("a", 1).Endpoints } }.ToByteArray().Concat(new ClusterLoadAssignment { ClusterName = "a" }.ToByteArray()).ToArray();
        Assert.NotEqual(Endpoints("a", 1).ToByteArray(), a);
        var response = Response("v3", Endpoints("b", 2));
        response.Resources.Add(new Any { TypeUrl = EndpointType, Value = ByteString.CopyFrom(a) });
        var handler = new RecordingHandler();
        var other = Subscription(XdsResourceType.Endpoint, handler);
        Assert.Empty(await ProcessAsync(other, Response("v1", Endpoints("a", 1))));
        var before = other.Resources["a"];
        Assert.Empty(await ProcessAsync(other, response));
        Assert.True(handler.Updates[^1].Resources.Single(r => r.Name == "a").IsUnchanged);
        Assert.Same(before.Message, other.Resources["a"].Message);
        Assert.Equal(a, other.Resources["a"].Encoded!.ToByteArray());
    }

    [Fact]
    public void TheReaderReadsWhatTheGeneratedParserReads()
    {
        var response = Response("v7", Endpoints("a", 1), Endpoints("b", 2));
        response.Canary = true;
        response.ControlPlane = new Envoy.Config.Core.V3.ControlPlane { Identifier = "cp-1" };
        response.Resources.Add(new Any { TypeUrl = ClusterType, Value = EdsCluster("x").ToByteString() });
        // An unknown field (99, length-delimited) anywhere is skipped.
        var bytes = response.ToByteArray().Concat(new byte[] { 0x9A, 0x06, 0x02, 0x68, 0x69 }).ToArray();

        var read = DiscoveryResponseReader.Read(bytes);

        Assert.Equal("v7", read.VersionInfo);
        Assert.Equal(EndpointType, read.TypeUrl);
        Assert.Equal(response.Nonce, read.Nonce);
        Assert.Equal(response.Resources.Select(r => r.TypeUrl), read.Resources.Select(r => r.TypeUrl));
        Assert.Equal(response.Resources.Select(r => r.Value.ToByteArray()), read.Resources.Select(r => r.Value.ToArray()));
        Assert.All(read.Resources, r => Assert.Equal("v7", r.Version));
        Assert.All(read.Resources, r => Assert.Null(r.Name));
    }

    [Theory]
    [InlineData(new byte[] { 0x12, 0x05, 0x0A })] // resources: 5 bytes announced, 1 there
    [InlineData(new byte[] { 0x0A })] // version_info: no length
    [InlineData(new byte[] { 0x08, 0xFF })] // canary: the varint never ends
    [InlineData(new byte[] { 0x0B, 0x00 })] // a group (wire type 3)
    [InlineData(new byte[] { 0x00, 0x00 })] // field 0
    public void AMalformedResponseIsAnError(byte[] bytes)
    {
        Assert.Throws<InvalidDataException>(() => DiscoveryResponseReader.Read(bytes));
    }

    [Fact]
    public void EveryTypeNamesItsResourcesInTheFieldTheClientReadsFromTheBytes()
    {
        foreach (var type in XdsResourceType.All)
        {
            var message = (IMessage)Activator.CreateInstance(type.Descriptor.ClrType)!;
            var field = type.Descriptor.FindFieldByNumber(type.NameField);
            Assert.Equal(Google.Protobuf.Reflection.FieldType.String, field.FieldType);
            field.Accessor.SetValue(message, "the-name");
            Assert.Equal("the-name", type.NameOf(message));
            Assert.Equal("the-name", type.NameIn(message.ToByteArray()));
        }

        // The last occurrence wins, as in the parser; malformed bytes give no name.
        Assert.Equal("b", DiscoveryResponseReader.StringField(new byte[] { 0x0A, 0x01, (byte)'a', 0x0A, 0x01, (byte)'b' }, 1));
        Assert.Null(DiscoveryResponseReader.StringField(new byte[] { 0x0A, 0x05, (byte)'a' }, 1));
        Assert.Null(DiscoveryResponseReader.StringField(Endpoints("a", 1).Endpoints[0].ToByteArray(), 1));
    }

    [Fact]
    public void TheServerWritesTheResponseTheGeneratedSerialiserWrites()
    {
        var resources = Enumerable.Range(0, 50).ToDictionary(c => $"c{c}", c => Any.Pack(Endpoints($"c{c}", 1_000 + c)), StringComparer.Ordinal);
        var first = new ServedResources(1, resources, null);
        var changed = new Dictionary<string, Any>(resources, StringComparer.Ordinal) { ["c7"] = Any.Pack(Endpoints("c7", 9)) };
        var second = new ServedResources(2, changed, first);

        var wanted = second.Sorted.Where(r => r.Name != "c9").ToArray();
        var body = new SotwBody("2", EndpointType, "n-1", wanted);
        var writer = new ArrayBufferWriter<byte>(16);
        body.WriteTo(writer);

        var expected = new DiscoveryResponse { VersionInfo = "2", TypeUrl = EndpointType, Nonce = "n-1" };
        expected.Resources.Add(changed.Where(r => r.Key != "c9").OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => r.Value));
        Assert.Equal(expected.ToByteArray(), writer.WrittenSpan.ToArray());
        Assert.Equal(writer.WrittenCount, body.Length);
        // An unchanged resource keeps its encoding from the version before; a changed one gets a new one.
        Assert.Same(first.Sorted.Single(r => r.Name == "c8").Entry, second.Sorted.Single(r => r.Name == "c8").Entry);
        Assert.NotSame(first.Sorted.Single(r => r.Name == "c7"), second.Sorted.Single(r => r.Name == "c7"));
    }

    private static IMessage[] Assignments(int[][] ports) =>
        ports.Select((p, c) => (IMessage)Endpoints($"c{c}", p)).ToArray();

    private static DiscoveryResponse Response(string version, params IMessage[] resources)
    {
        var response = new DiscoveryResponse { VersionInfo = version, TypeUrl = Any.Pack(resources[0]).TypeUrl, Nonce = "n-" + version };
        response.Resources.Add(resources.Select(Any.Pack));
        return response;
    }

    private static ValueTask<IReadOnlyList<XdsResourceError>> ProcessAsync(XdsSubscription subscription, DiscoveryResponse response)
    {
        // As the gRPC stream does: the resources are slices of the received bytes.
        var read = DiscoveryResponseReader.Read(response.ToByteArray());
        return subscription.ProcessAsync(read.Resources, [], read.VersionInfo, stateOfWorld: true, CancellationToken.None);
    }

    private static XdsSubscription Subscription(XdsResourceType type, IXdsUpdateHandler handler)
    {
        var logs = LogManager.Create(CommandLineParser.Parse([]), new CapturingLogSink());
        return new XdsSubscription(type, new XdsSourceSpec { Kind = XdsSourceKind.Ads }, handler, new XdsStats(new StatsStore(), "test."), new XdsResourceValidator(() => new HashSet<string>(StringComparer.Ordinal)), TimeProvider.System, logs.Get(LogComponents.Config));
    }

    private sealed class RecordingHandler : IXdsUpdateHandler
    {
        public List<XdsUpdate> Updates { get; } = new();

        public ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken)
        {
            Updates.Add(update);
            return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>([]);
        }

        public void OnInitialFetchTimeout()
        {
        }
    }
}
