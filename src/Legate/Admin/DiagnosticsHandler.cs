using Envoy.Admin.V3;
using Legate.Server;
using Microsoft.AspNetCore.Http;

namespace Legate.Admin;

/// <summary>
/// Envoy's diagnostic endpoints a Legate build has no engine for, answered as an Envoy build
/// without them answers (so scripts see the same status and text), plus <c>/init_dump</c>:
/// <list type="bullet">
/// <item><c>/init_dump</c> (<c>?mask=listener</c>): <c>envoy.admin.v3.UnreadyTargetsDumps</c>, one entry
/// per warming listener naming the route tables it still waits for; <c>{}</c> when nothing waits.</item>
/// <item><c>/contention</c>: there is no <c>--enable-mutex-tracing</c>, so always Envoy's "not enabled" text.</item>
/// <item><c>/cpuprofiler</c> (POST <c>?enable=y|n</c>): as Envoy without gperftools, starting fails (500).</item>
/// <item><c>/heapprofiler</c> (POST): as Envoy without gperftools, 501.</item>
/// <item><c>/allocprofiler</c> (POST <c>?enable=y|n</c>): as Envoy without tcmalloc, 501.</item>
/// <item><c>/heap_dump</c>: as Envoy without tcmalloc, 501 with its text. A .NET heap summary was
/// considered and left out: tools that call /heap_dump expect a pprof heap profile, and an error
/// they know is better than a body they cannot parse (<c>/memory</c> has the managed heap's numbers).</item>
/// </list>
/// </summary>
internal sealed class DiagnosticsHandler(IServerInstance server)
{
    public const string InitDumpHelp = "dump current Envoy init manager information (experimental)";
    public const string ContentionHelp = "dump current Envoy mutex contention stats (if enabled)";
    public const string CpuProfilerHelp = "enable/disable the CPU profiler";
    public const string HeapProfilerHelp = "enable/disable the heap profiler";
    public const string HeapDumpHelp = "dump current Envoy heap (if supported)";
    public const string AllocProfilerHelp = "enable/disable the allocation profiler (if supported)";

    public void Register(AdminHandlerTable handlers)
    {
        handlers.Add("/init_dump", InitDumpHelp, false, InitDumpAsync);
        handlers.Add("/contention", ContentionHelp, false, ContentionAsync);
        handlers.Add("/cpuprofiler", CpuProfilerHelp, true, CpuProfilerAsync);
        handlers.Add("/heapprofiler", HeapProfilerHelp, true, HeapProfilerAsync);
        handlers.Add("/heap_dump", HeapDumpHelp, false, HeapDumpAsync);
        handlers.Add("/allocprofiler", AllocProfilerHelp, true, AllocProfilerAsync);
    }

    public ValueTask<AdminResponse> InitDumpAsync(HttpContext context)
    {
        var dump = new UnreadyTargetsDumps();
        var mask = context.Request.Query["mask"].ToString();

        // Envoy knows one component, "listener"; another mask dumps nothing, no mask dumps everything.
        if (mask.Length == 0 || mask == "listener")
        {
            foreach (var (listener, routeConfigs) in server.Xds?.Lds?.UnreadyTargets() ?? [])
            {
                var entry = new UnreadyTargetsDumps.Types.UnreadyTargetsDump { Name = "Listener-local-init-manager " + listener };
                foreach (var routeConfig in routeConfigs)
                {
                    entry.TargetNames.Add("RdsRouteConfigSubscription init " + routeConfig);
                }

                dump.UnreadyTargetsDumps_.Add(entry);
            }
        }

        return ValueTask.FromResult(AdminResponse.Json(ProtoJson.Format(dump)));
    }

    public static ValueTask<AdminResponse> ContentionAsync(HttpContext context) =>
        ValueTask.FromResult(AdminResponse.Text("Mutex contention tracing is not enabled. To enable, run Envoy with flag --enable-mutex-tracing."));

    public static ValueTask<AdminResponse> CpuProfilerAsync(HttpContext context)
    {
        var query = context.Request.Query;
        if (query.Count != 1 || !query.TryGetValue("enable", out var value) || value.ToString() is not ("y" or "n"))
        {
            return ValueTask.FromResult(AdminResponse.Text("?enable=<y|n>\n", StatusCodes.Status400BadRequest));
        }

        // Stopping a profiler that never ran is fine; starting one needs gperftools, which this build lacks.
        return ValueTask.FromResult(value.ToString() == "y"
            ? AdminResponse.Text("failure to start the profiler", StatusCodes.Status500InternalServerError)
            : AdminResponse.Text("OK\n"));
    }

    public static ValueTask<AdminResponse> HeapProfilerAsync(HttpContext context) =>
        ValueTask.FromResult(AdminResponse.Text("The current build does not support heap profiler", StatusCodes.Status501NotImplemented));

    /// <summary>
    /// Envoy's allocation profiler needs tcmalloc: without it the request is checked as Envoy checks
    /// it (one <c>enable=y|n</c>, else the usage line and 400) and then answered 501, starting or stopping.
    /// </summary>
    public static ValueTask<AdminResponse> AllocProfilerAsync(HttpContext context)
    {
        var query = context.Request.Query;
        if (query.Count != 1 || !query.TryGetValue("enable", out var value) || value.ToString() is not ("y" or "n"))
        {
            return ValueTask.FromResult(AdminResponse.Text("?enable=<y|n>\n", StatusCodes.Status400BadRequest));
        }

        return ValueTask.FromResult(AdminResponse.Text("Allocation profile is not implemented in current build", StatusCodes.Status501NotImplemented));
    }

    public static ValueTask<AdminResponse> HeapDumpAsync(HttpContext context) =>
        ValueTask.FromResult(AdminResponse.Text("Heap profile is not implemented in current build", StatusCodes.Status501NotImplemented));
}
