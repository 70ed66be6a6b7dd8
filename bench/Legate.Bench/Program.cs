using System.Diagnostics;
using System.Net;
using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Router.Matching;
using Legate.Upstream;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

// Micro-benchmarks for the per-request pieces that exist so far: route matching and the round
// robin pick. Each case runs warm-up rounds first (tiered JIT), then reports the best of several
// timed rounds as ns per operation, and the bytes allocated per operation.
// usage: dotnet run -c Release --project bench/Legate.Bench      (xDS at scale: add `xds`, see bench/xds-scale.sh)
if (args.Length > 0 && args[0] == "xds-stages")
{
    Legate.Bench.XdsStagesBench.Run();
    return;
}

if (args.Length > 0 && args[0] == "xds-alloc")
{
    Legate.Bench.XdsStagesBench.RunAllocations();
    return;
}

if (args.Length > 0 && args[0] == "xds")
{
    await Legate.Bench.XdsScaleBench.RunAsync(args.Length > 1 && args[1] == "delta" ? "AGGREGATED_DELTA_GRPC" : "AGGREGATED_GRPC");
    return;
}

Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}");
Console.WriteLine("| case | ns/op | bytes/op |");
Console.WriteLine("| --- | ---: | ---: |");

foreach (var routes in new[] { 10, 10_000 })
{
    var matcher = BuildRoutes(routes, out var config);
    var paths = new[] { "/svc0/x", $"/svc{routes / 2}/items?id=1", $"/svc{routes - 1}/", "/nomatch" };
    var inputs = paths.Select(p => new RouteMatchInput("GET", p, "example.com")).ToArray();
    var i = 0;
    Measure($"route match, {routes:N0} prefix routes in one virtual host", () =>
    {
        var input = inputs[i++ & 3];
        return matcher.Match(input).Route is null ? 0 : 1;
    });
}

foreach (var hosts in new[] { 3, 100, 10_000 })
{
    var set = new PrioritySet();
    set.Update(Enumerable.Range(0, hosts).Select(n => new Host(new IPEndPoint(IPAddress.Parse($"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"), 80), weight: 1)).ToArray());
    var lb = new RoundRobinLoadBalancer(set, seed: 1);
    Measure($"round robin pick, {hosts:N0} equal-weight hosts", () => lb.ChooseHost(null) is null ? 0 : 1);

    var weighted = new PrioritySet();
    weighted.Update(Enumerable.Range(0, hosts).Select(n => new Host(new IPEndPoint(IPAddress.Parse($"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"), 80), weight: (uint)(1 + n % 3))).ToArray());
    var wlb = new RoundRobinLoadBalancer(weighted, seed: 1);
    Measure($"round robin pick, {hosts:N0} hosts weighted 1/2/3", () => wlb.ChooseHost(null) is null ? 0 : 1);

    var least = LoadBalancerFactory.Create(set, LoadBalancerSettings.Default with { Policy = LbPolicy.LeastRequest }, null, null);
    Measure($"least request pick (2 choices), {hosts:N0} equal-weight hosts", () => least.ChooseHost(null) is null ? 0 : 1);
    var weightedLeast = LoadBalancerFactory.Create(weighted, LoadBalancerSettings.Default with { Policy = LbPolicy.LeastRequest }, null, null);
    Measure($"least request pick (EDF), {hosts:N0} hosts weighted 1/2/3", () => weightedLeast.ChooseHost(null) is null ? 0 : 1);
    var random = LoadBalancerFactory.Create(set, LoadBalancerSettings.Default with { Policy = LbPolicy.Random }, null, null);
    Measure($"random pick, {hosts:N0} hosts", () => random.ChooseHost(null) is null ? 0 : 1);
    var hash = new BenchHash();
    var ring = LoadBalancerFactory.Create(set, LoadBalancerSettings.Default with { Policy = LbPolicy.RingHash }, null, null);
    Measure($"ring hash pick with a hash, {hosts:N0} hosts", () => ring.ChooseHost(hash.Next()) is null ? 0 : 1);
    var maglev = LoadBalancerFactory.Create(set, LoadBalancerSettings.Default with { Policy = LbPolicy.Maglev }, null, null);
    Measure($"maglev pick with a hash, {hosts:N0} hosts", () => maglev.ChooseHost(hash.Next()) is null ? 0 : 1);
}

static CompiledRouteConfiguration BuildRoutes(int count, out RouteConfiguration config)
{
    var host = new VirtualHost { Name = "all", Domains = { "*" } };
    for (var n = 0; n < count; n++)
    {
        host.Routes.Add(new Route
        {
            Name = $"r{n}",
            Match = new RouteMatch { Prefix = $"/svc{n}/" },
            DirectResponse = new DirectResponseAction { Status = 200 },
        });
    }

    config = new RouteConfiguration { VirtualHosts = { host } };
    var errors = new ConfigErrors();
    var compiled = CompiledRouteConfiguration.Create(config, errors);
    errors.ThrowIfAny();
    return compiled;
}

static void Measure(string name, Func<int> op)
{
    const int perRound = 1_000_000;
    var sink = 0;
    for (var w = 0; w < 3; w++)
    {
        for (var n = 0; n < perRound; n++)
        {
            sink += op();
        }
    }

    var best = double.MaxValue;
    long bytes = 0;
    for (var round = 0; round < 5; round++)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        for (var n = 0; n < perRound; n++)
        {
            sink += op();
        }

        sw.Stop();
        bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        best = Math.Min(best, sw.Elapsed.TotalNanoseconds / perRound);
    }

    Console.WriteLine($"| {name} | {best:F1} | {(double)bytes / perRound:F1} |{(sink == -1 ? " " : "")}");
}

/// <summary>A request hash that changes every pick (what a route's hash_policy gives the load balancer).</summary>
internal sealed class BenchHash : LoadBalancerContext
{
    private ulong _hash;

    public override ulong? HashKey => _hash;

    public BenchHash Next()
    {
        _hash = (_hash + 1) * 0x9E3779B97F4A7C15UL;
        return this;
    }
}
