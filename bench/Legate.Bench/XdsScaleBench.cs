using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Legate.Config;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Upstream;
using Legate.Xds.Server;

namespace Legate.Bench;

/// <summary>
/// xDS at scale, end to end on loopback: the bundled management server serves 1,000 EDS clusters
/// with 10,000 endpoints over ADS to an in-process Legate. Reports the time to apply them (from
/// server start to LIVE: CDS, 1,000 EDS subscriptions, every cluster warmed), the time one endpoint
/// change in a 10,000-endpoint cluster takes to reach the load balancer (from the server's push),
/// and the managed memory the client holds per 10,000 endpoints. Run by hand; never a timed test.
/// </summary>
internal static class XdsScaleBench
{
    public static async Task RunAsync(string apiType)
    {
        var dir = Directory.CreateTempSubdirectory("legate-xds-bench-").FullName;
        try
        {
            await RunInAsync(dir, apiType);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task RunInAsync(string dir, string apiType)
    {
        var level = Environment.GetEnvironmentVariable("BENCH_LOG") ?? "warn";
        // BENCH_CLUSTERS=1 measures the fixed cost (cold start, JIT) that the 1,000-cluster time includes.
        var count = int.Parse(Environment.GetEnvironmentVariable("BENCH_CLUSTERS") ?? "1000", CultureInfo.InvariantCulture);
        WriteClusters(dir, count, 10);
        using var logs = LogManager.Create(CommandLineParser.Parse(["-l", level]), new TextWriterLogSink(Console.Error, ownsWriter: false));
        await using var server = new XdsManagementServer(dir, new IPEndPoint(IPAddress.Loopback, 0), logs.Get(LogComponents.Config));
        await server.StartAsync(CancellationToken.None);

        var memoryBefore = Memory();
        var options = CommandLineParser.Parse(["--config-yaml", Bootstrap(server.BoundEndpoint.Port, apiType), "-l", level]);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        // Where start-up CPU goes, robust under load: time spent compiling methods (JIT) and in GC pauses.
        var jit = System.Runtime.JitInfo.GetCompilationTime();
        var jitMethods = System.Runtime.JitInfo.GetCompiledMethodCount();
        var gcPause = GC.GetTotalPauseDuration();
        var sw = Stopwatch.StartNew();
        await using var legate = LegateServer.Create(options, BootstrapLoader.Load(null, options.ConfigYaml), logs);
        await legate.StartAsync(CancellationToken.None);
        var applied = sw.Elapsed;
        var appliedCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        var appliedJit = System.Runtime.JitInfo.GetCompilationTime() - jit;
        var appliedJitMethods = System.Runtime.JitInfo.GetCompiledMethodCount() - jitMethods;
        var appliedGcPause = GC.GetTotalPauseDuration() - gcPause;
        var memoryAfter = Memory();
        var clusters = legate.Clusters.Clusters.Length - 1;
        var hosts = legate.Clusters.Clusters.Sum(c => c.PrioritySet.Current.Hosts.Length) - 1;
        var warmed = legate.Clusters.Clusters.Count(c => c.PrioritySet.Current.Hosts.Length == 10);

        // The same work again in a warm process, twice: 1,000 other clusters with 10,000 other endpoints
        // pushed to the live client (the cold start above is paid once per process; the first warm push
        // still pays tiered recompilation of the code it makes hot, the second is the steady state).
        var warmRows = new List<string>();
        var pushes = int.Parse(Environment.GetEnvironmentVariable("BENCH_PUSHES") ?? "2", CultureInfo.InvariantCulture);
        for (var push = 1; push <= pushes; push++)
        {
            warmRows.Add(await WarmPushAsync(server, legate, dir, count, push));
        }

        // One cluster of 10,000 endpoints (its memory measured alone), then one endpoint of it changes.
        var memoryBeforeBig = Memory();
        WriteBig(dir, 10_000, changedPort: 80);
        server.Reload();
        await WaitAsync(() => legate.Clusters.Find("big")?.PrioritySet.Current.Hosts.Length == 10_000);
        var big = legate.Clusters.Find("big")!;
        var memoryBig = Memory() - memoryBeforeBig;
        var times = new List<double>();
        var cpuTimes = new List<double>();
        var rounds = new List<string>();
        // The clock starts when the server has parsed the directory and is about to push (inside Reload,
        // which writes the push before it returns: the client may already be done when it returns), and
        // stops when the cluster publishes its new priority set (the Published event, on the thread that
        // applies the update), not when the polling loop below notices it.
        long pushedAt = 0;
        long publishedAt = 0;
        var pushCpu = TimeSpan.Zero;
        var gcPauseBefore = TimeSpan.Zero;
        var gcsBefore = (0, 0, 0);
        var jitBefore = TimeSpan.Zero;
        var jitMethodsBefore = 0L;
        var allocatedBefore = 0L;
        // BENCH_THREADS=1: on-CPU time per thread name during the rounds (/proc/self/task/*/schedstat, ns).
        var threads = Environment.GetEnvironmentVariable("BENCH_THREADS") is null ? null : new ThreadTimes();
        server.Pushing += () =>
        {
            threads?.Start();
            gcPauseBefore = GC.GetTotalPauseDuration();
            gcsBefore = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
            jitBefore = System.Runtime.JitInfo.GetCompilationTime();
            jitMethodsBefore = System.Runtime.JitInfo.GetCompiledMethodCount();
            allocatedBefore = GC.GetTotalAllocatedBytes();
            pushCpu = Process.GetCurrentProcess().TotalProcessorTime;
            pushedAt = Stopwatch.GetTimestamp();
        };
        big.PrioritySet.Published += _ => Volatile.Write(ref publishedAt, Stopwatch.GetTimestamp());
        // The first changes after the cluster appeared run its update path while tiered compilation is
        // still compiling it (in the background, on the other core): reported apart, as the first
        // rounds, and the headline is the rounds after them (BENCH_ROUNDS=N of each).
        var roundCount = int.Parse(Environment.GetEnvironmentVariable("BENCH_ROUNDS") ?? "7", CultureInfo.InvariantCulture);
        var first = new List<double>();
        for (var round = 1; round <= 2 * roundCount; round++)
        {
            WriteBig(dir, 10_000, changedPort: 80 + round);
            var version = big.PrioritySet.Current.Version;
            server.Reload(); // parses the directory, then pushes
            // Current changes just before Published is raised: wait for both.
            await WaitAsync(() => big.PrioritySet.Current.Version != version && Volatile.Read(ref publishedAt) > pushedAt);
            var noticedAt = Stopwatch.GetTimestamp();
            threads?.Stop();
            var cpuTime = (Process.GetCurrentProcess().TotalProcessorTime - pushCpu).TotalMilliseconds;
            var wall = Stopwatch.GetElapsedTime(pushedAt, Volatile.Read(ref publishedAt)).TotalMilliseconds;
            if (round <= roundCount)
            {
                first.Add(wall);
            }
            else
            {
                times.Add(wall);
                cpuTimes.Add(cpuTime);
            }

            // Per round, where a slow one went: GC pauses, collections, JIT, bytes allocated (the whole
            // process, from the push on), and how late the polling loop noticed.
            rounds.Add(string.Create(CultureInfo.InvariantCulture,
                $"{wall:N1} ms (CPU {cpuTime:N0}; GC pause {(GC.GetTotalPauseDuration() - gcPauseBefore).TotalMilliseconds:N1} ms, gen0/1/2 {GC.CollectionCount(0) - gcsBefore.Item1}/{GC.CollectionCount(1) - gcsBefore.Item2}/{GC.CollectionCount(2) - gcsBefore.Item3}; "
                + $"JIT {(System.Runtime.JitInfo.GetCompilationTime() - jitBefore).TotalMilliseconds:N1} ms for {System.Runtime.JitInfo.GetCompiledMethodCount() - jitMethodsBefore} methods; {(GC.GetTotalAllocatedBytes() - allocatedBefore) / 1024.0 / 1024.0:N0} MiB; noticed +{Stopwatch.GetElapsedTime(publishedAt, noticedAt).TotalMilliseconds:N1} ms)"));
            if (big.PrioritySet.Current.Hosts[0].Address is not IPEndPoint { Port: var port } || port != 80 + round)
            {
                throw new InvalidOperationException("the changed endpoint did not arrive");
            }
        }

        var firstMedian = first.Order().ElementAt(first.Count / 2);
        times.Sort();
        cpuTimes.Sort();
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, api_type {apiType}, load average {LoadAverage()}");
        Console.WriteLine("| case | result |");
        Console.WriteLine("| --- | ---: |");
        Console.WriteLine($"| {clusters:N0} EDS clusters ({warmed:N0} warmed with their endpoints), {hosts:N0} endpoints over ADS: server start → LIVE (CPU time of both sides: {appliedCpu.TotalMilliseconds:N0} ms, of which JIT {appliedJit.TotalMilliseconds:N0} ms for {appliedJitMethods:N0} methods; GC pauses {appliedGcPause.TotalMilliseconds:N0} ms) | {applied.TotalMilliseconds:N0} ms |");
        foreach (var row in warmRows)
        {
            Console.WriteLine(row);
        }

        Console.WriteLine($"| one endpoint changed in a 10,000-endpoint cluster, its first {first.Count} changes (the update path still tiering up): median (min {first.Min():N1}, max {first.Max():N1}) | {firstMedian:N1} ms |");
        Console.WriteLine($"| one endpoint changed in a 10,000-endpoint cluster: push → load balancer (the {times.Count} changes after those: median; min {times[0]:N1}, max {times[^1]:N1}; median CPU time {cpuTimes[cpuTimes.Count / 2]:N1} ms) | {times[times.Count / 2]:N1} ms |");
        Console.WriteLine($"| the rounds in order: {string.Join("; ", rounds)} | |");
        if (threads is not null)
        {
            Console.WriteLine($"| on-CPU time by thread during the rounds: {threads} | |");
        }

        Console.WriteLine($"| managed memory held for {hosts:N0} endpoints in {clusters:N0} clusters (client and its xDS state) | {(memoryAfter - memoryBefore) / 1024.0 / 1024.0:N1} MiB |");
        Console.WriteLine($"| managed memory held for one cluster of 10,000 endpoints (client, and the server's copy of the resource) | {memoryBig / 1024.0 / 1024.0:N1} MiB |");
        await legate.StopAsync();
    }

    private static async Task<string> WarmPushAsync(XdsManagementServer server, LegateServer legate, string dir, int count, int push)
    {
        var prefix = "p" + push.ToString(CultureInfo.InvariantCulture) + "-";
        WriteClusters(dir, count, 10, prefix, fileSuffix: "-" + prefix, firstOctet: 10 + push);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var jit = System.Runtime.JitInfo.GetCompilationTime();
        var jitMethods = System.Runtime.JitInfo.GetCompiledMethodCount();
        var gcPause = GC.GetTotalPauseDuration();
        var mapBuilds = legate.Clusters.MapBuilds;
        var allocated = GC.GetTotalAllocatedBytes();
        var collections = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var clock = Stopwatch.StartNew();
        using var allocations = Environment.GetEnvironmentVariable("BENCH_ALLOC") is null ? null : new AllocationSampler();
        server.Reload(); // the server parses and validates the new files, then pushes: timed apart below
        var reloaded = clock.Elapsed;
        var reloadedCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        var reloadAllocated = GC.GetTotalAllocatedBytes() - allocated;
        allocations?.Mark("server reload");
        await WaitAsync(() => legate.Clusters.Clusters.Length == (push + 1) * count + 1 && Warmed(legate, prefix, count));
        var applied = clock.Elapsed;
        var appliedCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        var appliedJit = System.Runtime.JitInfo.GetCompilationTime() - jit;
        var appliedJitMethods = System.Runtime.JitInfo.GetCompiledMethodCount() - jitMethods;
        var appliedGcPause = GC.GetTotalPauseDuration() - gcPause;
        allocations?.Mark("client apply");
        var swaps = legate.Clusters.MapBuilds - mapBuilds;
        var appliedAllocated = GC.GetTotalAllocatedBytes() - allocated;
        var gcs = $"{GC.CollectionCount(0) - collections.Item1}/{GC.CollectionCount(1) - collections.Item2}/{GC.CollectionCount(2) - collections.Item3}";
        return $"| warm process, push {push}: {count:N0} other EDS clusters, {count * 10:N0} other endpoints pushed to the live client → all warmed "
            + $"(CPU time of both sides: {appliedCpu.TotalMilliseconds:N0} ms, of which JIT {appliedJit.TotalMilliseconds:N0} ms for {appliedJitMethods:N0} methods; "
            + $"GC pauses {appliedGcPause.TotalMilliseconds:N0} ms, gen0/1/2 collections {gcs}, {appliedAllocated / 1024.0 / 1024.0:N0} MiB allocated, {swaps} cluster map swaps; "
            + $"of it the server's parse and validation of the new files before its push: {reloaded.TotalMilliseconds:N0} ms, CPU {reloadedCpu.TotalMilliseconds:N0} ms, {reloadAllocated / 1024.0 / 1024.0:N0} MiB allocated; "
            + $"so the client: {(applied - reloaded).TotalMilliseconds:N0} ms, CPU {(appliedCpu - reloadedCpu).TotalMilliseconds:N0} ms) | {applied.TotalMilliseconds:N0} ms |";
    }

    private static bool Warmed(LegateServer legate, string prefix, int count)
    {
        for (var c = 0; c < count; c++)
        {
            if (legate.Clusters.Find(prefix + c.ToString(CultureInfo.InvariantCulture)) is not { } cluster || cluster.PrioritySet.Current.Hosts.Length != 10)
            {
                return false;
            }
        }

        return true;
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static long Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static async Task WaitAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException();
            }

            await Task.Delay(1);
        }
    }

    private static string Bootstrap(int port, string apiType) => $$"""
        node: { id: bench, cluster: bench }
        dynamic_resources:
          ads_config:
            api_type: {{apiType}}
            transport_api_version: V3
            grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }]
          cds_config: { ads: {}, resource_api_version: V3 }
        static_resources:
          clusters:
          - name: xds_cluster
            type: STATIC
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
            load_assignment:
              cluster_name: xds_cluster
              endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } } } }] }]
        """;

    private static void WriteClusters(string dir, int clusters, int endpointsEach, string prefix = "c", string fileSuffix = "", int firstOctet = 10)
    {
        var cds = new StringBuilder("{\"resources\":[");
        var eds = new StringBuilder("{\"resources\":[");
        var n = 0;
        for (var c = 0; c < clusters; c++)
        {
            cds.Append(c == 0 ? "" : ",").Append(CultureInfo.InvariantCulture, $"{{\"@type\":\"type.googleapis.com/envoy.config.cluster.v3.Cluster\",\"name\":\"{prefix}{c}\",\"type\":\"EDS\",\"connect_timeout\":\"1s\",\"eds_cluster_config\":{{\"eds_config\":{{\"ads\":{{}},\"resource_api_version\":\"V3\"}}}}}}");
            eds.Append(c == 0 ? "" : ",").Append(CultureInfo.InvariantCulture, $"{{\"@type\":\"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\",\"cluster_name\":\"{prefix}{c}\",\"endpoints\":[{{\"lb_endpoints\":[");
            for (var e = 0; e < endpointsEach; e++, n++)
            {
                eds.Append(e == 0 ? "" : ",").Append(CultureInfo.InvariantCulture, $"{{\"endpoint\":{{\"address\":{{\"socket_address\":{{\"address\":\"{firstOctet}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}\",\"port_value\":80}}}}}}}}");
            }

            eds.Append("]}]}");
        }

        File.WriteAllText(Path.Combine(dir, $"clusters{fileSuffix}.json"), cds.Append("]}").ToString());
        File.WriteAllText(Path.Combine(dir, $"endpoints{fileSuffix}.json"), eds.Append("]}").ToString());
    }

    private static void WriteBig(string dir, int endpoints, int changedPort)
    {
        var text = new StringBuilder("{\"resources\":[{\"@type\":\"type.googleapis.com/envoy.config.cluster.v3.Cluster\",\"name\":\"big\",\"type\":\"EDS\",\"connect_timeout\":\"1s\",\"eds_cluster_config\":{\"eds_config\":{\"ads\":{},\"resource_api_version\":\"V3\"}}},");
        text.Append("{\"@type\":\"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\",\"cluster_name\":\"big\",\"endpoints\":[{\"lb_endpoints\":[");
        for (var e = 0; e < endpoints; e++)
        {
            var port = e == 0 ? changedPort : 80;
            text.Append(e == 0 ? "" : ",").Append(CultureInfo.InvariantCulture, $"{{\"endpoint\":{{\"address\":{{\"socket_address\":{{\"address\":\"10.200.{e >> 8 & 255}.{e & 255}\",\"port_value\":{port}}}}}}}}}");
        }

        File.WriteAllText(Path.Combine(dir, "big.json"), text.Append("]}]}]}").ToString());
    }

    /// <summary>On-CPU nanoseconds per thread name between Start and Stop, summed over rounds.</summary>
    private sealed class ThreadTimes
    {
        private readonly Dictionary<string, long> _byName = [];
        private Dictionary<string, (string Name, long Ns)> _start = [];

        public void Start() => _start = Read();

        public void Stop()
        {
            foreach (var (tid, (name, ns)) in Read())
            {
                var before = _start.TryGetValue(tid, out var b) ? b.Ns : 0;
                _byName[name] = _byName.GetValueOrDefault(name) + ns - before;
            }
        }

        public override string ToString() => string.Join(", ", _byName.Where(p => p.Value > 0).OrderByDescending(p => p.Value)
            .Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {p.Value / 1e6:N1} ms")));

        private static Dictionary<string, (string, long)> Read()
        {
            var result = new Dictionary<string, (string, long)>();
            foreach (var task in Directory.GetDirectories("/proc/self/task"))
            {
                try
                {
                    var name = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                    var ns = long.Parse(File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0], CultureInfo.InvariantCulture);
                    result[Path.GetFileName(task)] = (name, ns);
                }
                catch (IOException)
                {
                    // the thread ended
                }
            }

            return result;
        }
    }
}
