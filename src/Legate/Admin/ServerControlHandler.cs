using Envoy.Admin.V3;
using Legate.Server;
using Microsoft.AspNetCore.Http;

namespace Legate.Admin;

/// <summary>
/// The small server-control endpoints: <c>/healthcheck/fail</c>, <c>/healthcheck/ok</c>,
/// <c>/drain_listeners</c> (<c>?inboundonly</c>, <c>?graceful</c>, <c>?skip_exit</c> with graceful), <c>/memory</c> and
/// <c>/hot_restart_version</c>, with Envoy's answers.
/// </summary>
internal sealed class ServerControlHandler(IServerInstance server)
{
    public ValueTask<AdminResponse> HealthCheckFailAsync(HttpContext context)
    {
        server.SetHealthCheckFailed(true);
        return ValueTask.FromResult(AdminResponse.Text("OK\n"));
    }

    public ValueTask<AdminResponse> HealthCheckOkAsync(HttpContext context)
    {
        server.SetHealthCheckFailed(false);
        return ValueTask.FromResult(AdminResponse.Text("OK\n"));
    }

    public ValueTask<AdminResponse> DrainListenersAsync(HttpContext context)
    {
        var query = context.Request.Query;
        var graceful = query.ContainsKey("graceful");
        var skipExit = query.ContainsKey("skip_exit");
        if (skipExit && !graceful)
        {
            // Envoy's answer: skip_exit only means something with a graceful drain.
            return ValueTask.FromResult(AdminResponse.Text("skip_exit requires graceful\n", StatusCodes.Status400BadRequest));
        }

        server.DrainListeners(inboundOnly: query.ContainsKey("inboundonly"), graceful, skipExit);
        return ValueTask.FromResult(AdminResponse.Text("OK\n"));
    }

    /// <summary>Envoy's <c>envoy.admin.v3.Memory</c>, from the managed heap (tcmalloc's page heap fields are 0).</summary>
    public ValueTask<AdminResponse> MemoryAsync(HttpContext context)
    {
        var gc = GC.GetGCMemoryInfo();
        var memory = new Memory
        {
            Allocated = (ulong)GC.GetTotalMemory(forceFullCollection: false),
            HeapSize = (ulong)Math.Max(gc.HeapSizeBytes, 0),
            PageheapUnmapped = 0,
            PageheapFree = (ulong)Math.Max(gc.FragmentedBytes, 0),
            TotalThreadCache = 0,
            TotalPhysicalBytes = (ulong)Environment.WorkingSet,
        };
        return ValueTask.FromResult(AdminResponse.Json(ProtoJson.FormatWithDefaults(memory)));
    }

    public ValueTask<AdminResponse> HotRestartVersionAsync(HttpContext context) =>
        ValueTask.FromResult(AdminResponse.Text(ServerInfoHandler.HotRestartVersion));
}
