using System.Diagnostics;
using System.Globalization;
using System.Net;
using Envoy.Config.Endpoint.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Config.Extensions;
using Legate.Config.Semantic;
using Legate.Config.Validation;
using Legate.Upstream;
using Legate.Xds;
using Legate.Xds.Server;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;

namespace Legate.Bench;

/// <summary>
/// Where the time of the xDS scale cases goes, stage by stage, without the network: decoding,
/// each validation pass, compiling hosts and the priority set update, for one 10,000-endpoint
/// assignment with one endpoint changed; the state-of-the-world response that repeats 3,000 other
/// assignments for it (server and client side); and the per-cluster stages of 1,000 EDS clusters.
/// Each stage reports the best of several rounds, in wall time and in the thread's CPU time
/// (robust against other processes on the machine).
/// usage: dotnet bench/Legate.Bench/bin/Release/net10.0/Legate.Bench.dll xds-stages
/// </summary>
internal static class XdsStagesBench
{
    public static void Run()
    {
        var type = XdsResourceType.Endpoint;
        var validator = new XdsResourceValidator(() => new HashSet<string>(StringComparer.Ordinal));
        var before = Any.Pack(Assignment(10_000, 80));
        var after = Any.Pack(Assignment(10_000, 81));
        var old = (ClusterLoadAssignment)validator.Decode(type, before, out _)!;
        var changed = (ClusterLoadAssignment)validator.Decode(type, after, out _)!;
        Console.WriteLine("| stage (one 10,000-endpoint assignment) | best ms | best thread CPU ms | allocated |");
        Console.WriteLine("| --- | ---: | ---: | ---: |");
        Stage("decode", () => validator.Decode(type, after, out _));
        Stage("Equals with the assignment in force", () => old.Equals(changed));
        Stage("validate: all (XdsResourceValidator.Validate)", () => validator.Validate(type, changed, []));
        Stage("  PgvValidator", () => PgvValidator.Validate(changed, "", new ConfigErrors()));
        Stage("  ExtensionChecker", () => ExtensionChecker.Check(changed, "", new ConfigErrors()));
        Stage("  DataSourceChecker", () => DataSourceChecker.Check(changed, new ConfigErrors()));
        Stage("  ImplementedFields.Warn", () => ImplementedFields.Warn(changed, "", new ConfigErrors()));
        Stage("EdsCluster.HostsOf", () => EdsCluster.HostsOf(changed, new ConfigErrors()));
        var set = new PrioritySet();
        var hostsA = EdsCluster.HostsOf(old, new ConfigErrors())!;
        var hostsB = EdsCluster.HostsOf(changed, new ConfigErrors())!;
        var flip = false;
        Stage("PrioritySet.Update (one endpoint differs)", () => set.Update((flip = !flip) ? hostsA : hostsB));
        Stage("validate: all, with the accepted assignment (diff)", () => validator.Validate(type, changed, [], old));
        var cluster = ClusterFactory.Create(new ClusterConfig
        {
            Name = "big",
            Type = ClusterConfig.Types.DiscoveryType.Static,
            ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            LoadAssignment = old,
        }, "", new ConfigErrors(), ClusterFactoryContext.Default)!;
        var inForce = cluster.PrioritySet.Current.Hosts.ToArray();
        var oneNew = inForce.ToArray();
        flip = false;
        Stage("PrioritySet.Update of a round-robin cluster, same Host objects but one", () =>
        {
            oneNew[0] = new Host(new IPEndPoint(IPAddress.Loopback, (flip = !flip) ? 81 : 82));
            cluster.PrioritySet.Update(oneNew);
        });
        var bytes = after.Value;
        Stage("ByteString hash (encoding lookup)", () => bytes.GetHashCode());

        SotwStages(validator);

        var clusters = Enumerable.Range(0, 1_000).Select(c => Any.Pack(new ClusterConfig
        {
            Name = $"c{c}",
            Type = ClusterConfig.Types.DiscoveryType.Eds,
            ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            EdsClusterConfig = new ClusterConfig.Types.EdsClusterConfig { EdsConfig = new Envoy.Config.Core.V3.ConfigSource { Ads = new(), ResourceApiVersion = Envoy.Config.Core.V3.ApiVersion.V3 } },
        })).ToArray();
        var small = Enumerable.Range(0, 1_000).Select(c => Any.Pack(Assignment(10, 80, $"c{c}"))).ToArray();
        Console.WriteLine("| stage (1,000 clusters, 1,000 assignments of 10 endpoints) | best ms | best thread CPU ms | allocated |");
        Console.WriteLine("| --- | ---: | ---: | ---: |");
        Stage("decode + validate 1,000 clusters", () =>
        {
            foreach (var any in clusters)
            {
                validator.Validate(XdsResourceType.Cluster, validator.Decode(XdsResourceType.Cluster, any, out _)!, []);
            }
        });
        Stage("decode + validate 1,000 assignments", () =>
        {
            foreach (var any in small)
            {
                validator.Validate(type, validator.Decode(type, any, out _)!, []);
            }
        });
        Stage("HostsOf + PrioritySet.Update x1,000", () =>
        {
            foreach (var any in small)
            {
                new PrioritySet().Update(EdsCluster.HostsOf(any.Unpack<ClusterLoadAssignment>(), new ConfigErrors())!);
            }
        });
    }

    /// <summary>
    /// The state-of-the-world case of the scale bench, stage by stage: the EDS response repeats
    /// every subscribed assignment (3,000 of 10 endpoints and the one of 10,000, ~40,000 endpoints)
    /// for the one endpoint that changed. The server builds and frames it, the client parses it and
    /// the subscription compares each resource with the one in force (the handler here does nothing).
    /// </summary>
    private static void SotwStages(XdsResourceValidator validator)
    {
        var type = XdsResourceType.Endpoint;
        var snapshot = new Dictionary<string, Any>(StringComparer.Ordinal);
        for (var c = 0; c < 3_000; c++)
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"c{c}");
            snapshot[name] = Any.Pack(Assignment(10, 80, name));
        }

        // Two versions of the server's snapshot, the second made from the first (as a reload does).
        ServedResources? previous = null;
        var versions = new[] { 81, 82 }.Select((port, i) => previous = new ServedResources(i + 1, new Dictionary<string, Any>(snapshot, StringComparer.Ordinal) { ["big"] = Any.Pack(Assignment(10_000, port)) }, previous)).ToArray();
        var names = versions[0].Resources.Keys.ToHashSet(StringComparer.Ordinal);
        var frames = versions.Select(v => SotwFrame(v, names).WrittenMemory.ToArray()).ToArray();
        using var logs = Legate.Server.Logging.LogManager.Create(Legate.Server.CommandLineParser.Parse(["-l", "error"]), TextWriter.Null);
        var subscription = new XdsSubscription(type, new XdsSourceSpec { Kind = XdsSourceKind.Ads }, new NoopHandler(), new XdsStats(new Legate.Stats.StatsStore(), "bench."), validator, TimeProvider.System, logs.Get(Legate.Server.Logging.LogComponents.Config));
        var accepted = Process(subscription, frames[0]);
        if (accepted.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", accepted));
        }

        Console.WriteLine("| stage (state of the world: 3,001 assignments, 40,000 endpoints, the 10,000-endpoint one changed) | best ms | best thread CPU ms | allocated |");
        Console.WriteLine("| --- | ---: | ---: | ---: |");
        var flip = 0;
        Stage($"server: select and write the response ({frames[0].Length / 1024:N0} KB) from the resources' cached encodings", () => SotwFrame(versions[flip ^= 1], names));
        Stage("client: the generated parser on the whole DiscoveryResponse (for comparison; not used)", () => DiscoveryResponse.Parser.ParseFrom(frames[flip ^= 1].AsSpan(Legate.Grpc.GrpcProtocol.PrefixLength)));
        Stage("client: DiscoveryResponseReader (the resources stay slices)", () => DiscoveryResponseReader.Read(frames[flip ^= 1].AsMemory(Legate.Grpc.GrpcProtocol.PrefixLength)));
        Stage("client: read, then the subscription compares (nothing changed)", () => Process(subscription, frames[flip]));
        TransferAsync(frames[0].AsMemory(Legate.Grpc.GrpcProtocol.PrefixLength), "the whole response").GetAwaiter().GetResult();
        TransferAsync(frames[0].AsMemory(Legate.Grpc.GrpcProtocol.PrefixLength, 300 * 1024), "300 KB (about the one changed assignment)").GetAwaiter().GetResult();
        Stage("client: read, then the subscription compares, decodes and validates (one changed)", () =>
        {
            if (Process(subscription, frames[flip ^= 1]).Count > 0)
            {
                throw new InvalidOperationException("rejected");
            }
        });
    }

    /// <summary>
    /// One message of <paramref name="payload"/> from the gRPC server to the gRPC client over
    /// loopback HTTP/2 (Kestrel → SocketsHttpHandler), as a push travels: wall time and the CPU
    /// time of the whole process (both sides, every thread), best and median of 21.
    /// </summary>
    private static async Task TransferAsync(ReadOnlyMemory<byte> payload, string what)
    {
        using var logs = Legate.Server.Logging.LogManager.Create(Legate.Server.CommandLineParser.Parse(["-l", "error"]), TextWriter.Null);
        await using var server = new Legate.Grpc.GrpcServer(new IPEndPoint(IPAddress.Loopback, 0), logs.Get(Legate.Server.Logging.LogComponents.Config))
            .Map("/bench.Transfer/Stream", async call =>
            {
                while (await call.ReadAsync(DiscoveryRequest.Parser, call.CallAborted) is not null)
                {
                    await call.WriteAsync(payload.Length, writer => System.Buffers.BuffersExtensions.Write(writer, payload.Span), call.CallAborted);
                }
            });
        await server.StartAsync(CancellationToken.None);
        var endpoint = server.BoundEndpoint;
        using var channel = new Legate.Grpc.GrpcChannel(new Legate.Grpc.GrpcChannelOptions { ResolveEndpoint = _ => ValueTask.FromResult<EndPoint>(endpoint), Authority = "bench", MaxReceiveMessageBytes = 64 * 1024 * 1024 });
        await using var call = channel.StartCall<DiscoveryRequest, DiscoveryResponse>("/bench.Transfer/Stream", DiscoveryResponse.Parser);
        var walls = new List<double>();
        var cpus = new List<double>();
        for (var round = 0; round < 26; round++)
        {
            var cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            call.Write(new DiscoveryRequest());
            using (var frame = await call.ReadFrameAsync() ?? throw new InvalidOperationException("the call ended"))
            {
                if (frame.Length != payload.Length)
                {
                    throw new InvalidOperationException("short frame");
                }
            }

            if (round >= 5)
            {
                walls.Add(sw.Elapsed.TotalMilliseconds);
                cpus.Add((System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds);
            }
        }

        walls.Sort();
        cpus.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| gRPC over loopback HTTP/2: one message of {payload.Length / 1024:N0} KB, {what} (process CPU: best {cpus[0]:N2}, median {cpus[cpus.Count / 2]:N2}) | {walls[0]:N2} (median {walls[walls.Count / 2]:N2}) | | |"));
    }

    private static IReadOnlyList<XdsResourceError> Process(XdsSubscription subscription, byte[] frame)
    {
        var response = DiscoveryResponseReader.Read(frame.AsMemory(Legate.Grpc.GrpcProtocol.PrefixLength));
        return subscription.ProcessAsync(response.Resources, [], response.VersionInfo, stateOfWorld: true, CancellationToken.None).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>What the bundled server's push does for one state-of-the-world client (the pipe here: a buffer writer).</summary>
    private static System.Buffers.ArrayBufferWriter<byte> SotwFrame(ServedResources state, HashSet<string> names)
    {
        var wanted = state.Sorted.Where(r => names.Contains(r.Name)).ToArray();
        var version = state.Version.ToString(CultureInfo.InvariantCulture);
        var body = new SotwBody(version, XdsResourceType.Endpoint.TypeUrl, version, wanted);
        var writer = new System.Buffers.ArrayBufferWriter<byte>(Legate.Grpc.GrpcProtocol.PrefixLength + body.Length);
        Legate.Grpc.GrpcProtocol.WritePrefix(writer.GetSpan(Legate.Grpc.GrpcProtocol.PrefixLength), body.Length);
        writer.Advance(Legate.Grpc.GrpcProtocol.PrefixLength);
        body.WriteTo(writer);
        return writer;
    }

    private sealed class NoopHandler : IXdsUpdateHandler
    {
        public ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken) =>
            ValueTask.FromResult<IReadOnlyList<XdsResourceError>>([]);

        public void OnInitialFetchTimeout()
        {
        }
    }

    /// <summary>
    /// What building one cluster costs in memory: bytes allocated and bytes still held after a full
    /// collection, per cluster, for 1,000 EDS-like clusters (10 endpoints, a shared stats store, new
    /// names each round so every stat is created); and for the cluster's <c>ClusterStats</c> alone.
    /// Deterministic (allocation counts, not time): the numbers to compare before and after a cut.
    /// </summary>
    public static void RunAllocations()
    {
        var store = new Legate.Stats.StatsStore();
        var context = new ClusterFactoryContext { Stats = store };
        Console.WriteLine("| per cluster (1,000 clusters of 10 endpoints, one stats store) | allocated bytes | held bytes |");
        Console.WriteLine("| --- | ---: | ---: |");
        for (var round = 0; round < 3; round++)
        {
            var configs = Enumerable.Range(0, 1_000).Select(c => new ClusterConfig
            {
                Name = string.Create(CultureInfo.InvariantCulture, $"r{round}-c{c}"),
                Type = ClusterConfig.Types.DiscoveryType.Static,
                ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
                LoadAssignment = Assignment(10, 80, string.Create(CultureInfo.InvariantCulture, $"r{round}-c{c}")),
            }).ToArray();
            var held = new List<Cluster>(configs.Length);
            var heldBefore = GC.GetTotalMemory(forceFullCollection: true);
            var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            foreach (var config in configs)
            {
                held.Add(ClusterFactory.Create(config, "", new ConfigErrors(), context)!);
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            var heldBytes = GC.GetTotalMemory(forceFullCollection: true) - heldBefore;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| ClusterFactory.Create, round {round + 1} | {allocated / configs.Length:N0} | {heldBytes / configs.Length:N0} |"));
            GC.KeepAlive(held);
        }

        // The parts of ClusterFactory.Create, allocated bytes per cluster (after a warm-up round).
        var parts = Enumerable.Range(0, 1_000).Select(c => new ClusterConfig
        {
            Name = string.Create(CultureInfo.InvariantCulture, $"part-c{c}"),
            Type = ClusterConfig.Types.DiscoveryType.Static,
            ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            LoadAssignment = Assignment(10, 80, string.Create(CultureInfo.InvariantCulture, $"part-c{c}")),
        }).ToArray();
        Part("LoadBalancerSettingsFactory.Create", parts, c => LoadBalancerSettingsFactory.Create(c, "", new ConfigErrors(), 1));
        Part("StaticHosts (10 endpoints)", parts, c => ClusterFactory.StaticHosts(c.LoadAssignment, "", new ConfigErrors()));
        var hosts = parts.Select(c => ClusterFactory.StaticHosts(c.LoadAssignment, "", new ConfigErrors())).ToArray();
        var i = 0;
        Part("new StaticCluster (its priority set updated)", parts, c => new StaticCluster(c.Name, TimeSpan.FromSeconds(1), c.LbPolicy, 1, hosts[i++ % hosts.Length]));
        Part("ClusterInfo.Create (a fresh stats store each)", parts, c => ClusterInfo.Create(c, "", new ConfigErrors(), new Legate.Stats.StatsStore()));
        Part("new StatsStore", parts, c => new Legate.Stats.StatsStore());

        for (var round = 0; round < 3; round++)
        {
            var names = Enumerable.Range(0, 1_000).Select(c => string.Create(CultureInfo.InvariantCulture, $"s{round}-c{c}")).ToArray();
            var held = new List<Legate.Upstream.ClusterStats>(names.Length);
            var heldBefore = GC.GetTotalMemory(forceFullCollection: true);
            var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            foreach (var name in names)
            {
                held.Add(new Legate.Upstream.ClusterStats(store, name));
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            var heldBytes = GC.GetTotalMemory(forceFullCollection: true) - heldBefore;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| new ClusterStats, round {round + 1} | {allocated / names.Length:N0} | {heldBytes / names.Length:N0} |"));
            GC.KeepAlive(held);
        }
    }

    private static void Part(string name, ClusterConfig[] configs, Func<ClusterConfig, object> part)
    {
        var held = new object[configs.Length];
        for (var round = 0; round < 2; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var c = 0; c < configs.Length; c++)
            {
                held[c] = part(configs[c]);
            }

            if (round == 1)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {(GC.GetAllocatedBytesForCurrentThread() - before) / configs.Length:N0} | |"));
            }
        }
    }

    private static void Stage(string name, Action action)
    {
        for (var i = 0; i < 3; i++)
        {
            action();
        }

        var best = double.MaxValue;
        var bestCpu = double.MaxValue;
        var allocated = long.MaxValue;
        for (var i = 0; i < 7; i++)
        {
            var cpu = ThreadCpuMilliseconds();
            var sw = Stopwatch.StartNew();
            var before = GC.GetAllocatedBytesForCurrentThread();
            action();
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
            bestCpu = Math.Min(bestCpu, ThreadCpuMilliseconds() - cpu);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {best:N2} | {bestCpu:N2} | {allocated / 1024.0:N0} KB |"));
    }

    /// <summary>
    /// The CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID): on a shared, loaded machine
    /// the time a stage was preempted does not count, where its wall time does.
    /// </summary>
    private static double ThreadCpuMilliseconds()
    {
        if (!OperatingSystem.IsLinux() || ClockGetTime(3, out var time) != 0)
        {
            return double.NaN;
        }

        return (time.Seconds * 1_000_000_000.0 + time.Nanoseconds) / 1_000_000.0;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    private static ClusterLoadAssignment Assignment(int endpoints, int firstPort, string name = "big")
    {
        var locality = new LocalityLbEndpoints();
        for (var e = 0; e < endpoints; e++)
        {
            locality.LbEndpoints.Add(new LbEndpoint
            {
                Endpoint = new Endpoint
                {
                    Address = new Envoy.Config.Core.V3.Address
                    {
                        SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = $"10.200.{e >> 8 & 255}.{e & 255}", PortValue = (uint)(e == 0 ? firstPort : 80) },
                    },
                },
            });
        }

        var assignment = new ClusterLoadAssignment { ClusterName = name };
        assignment.Endpoints.Add(locality);
        return assignment;
    }
}
