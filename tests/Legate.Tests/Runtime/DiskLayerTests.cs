using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Runtime;

/// <summary>
/// A runtime <c>disk_layer</c>, driven the way Envoy's fault-injection sandbox drives it: a tree of
/// files under <c>symlink_root/subdirectory</c> whose paths are the keys, replaced by writing a new
/// tree and moving a new symlink over the old one, which Legate notices and reloads.
/// </summary>
public sealed class DiskLayerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("legate-runtime-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [ToolFact("mv")]
    public async Task TheFilesAreKeysAndASymlinkSwapReloadsThem()
    {
        Write("v1/envoy/fault/http/abort/abort_percent", "100\n");
        Write("v1/envoy/fault/http/abort/http_status", "# the status the fault answers with\n418\n");
        Directory.CreateDirectory(Path.Combine(_root, "v2/envoy"));
        File.CreateSymbolicLink(Path.Combine(_root, "current"), Path.Combine(_root, "v1"));

        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Bootstrap = $"layered_runtime:\n  layers:\n  - name: disk\n    disk_layer: {{ symlink_root: \"{Path.Combine(_root, "current")}\", subdirectory: envoy }}",
            HttpFilters = """
                - name: envoy.filters.http.fault
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    abort: { http_status: 503, percentage: { numerator: 0 } }
                """,
        }.Build());

        Assert.DoesNotContain(legate.Server.Warnings, w => w.ToString().Contains("disk_layer", StringComparison.Ordinal));
        Assert.Equal("100", legate.Server.Runtime.Snapshot.Get("fault.http.abort.abort_percent"));
        using (var aborted = await legate.GetAsync("web", "/"))
        {
            Assert.Equal((HttpStatusCode)418, aborted.StatusCode);
        }

        // The sandbox's disable script: a new tree, then a new symlink renamed over the old one.
        var next = Path.Combine(_root, "next");
        File.CreateSymbolicLink(next, Path.Combine(_root, "v2"));
        // rename(2) of the link itself (File.Move would follow it to the directory).
        var moved = await ExternalTool.RunAsync("mv", ["-T", next, Path.Combine(_root, "current")]);
        Assert.Equal(0, moved.ExitCode);

        await InProcessLegate.WaitUntilAsync(() => legate.Server.Runtime.Snapshot.Get("fault.http.abort.abort_percent") is null, "the swapped layer to be loaded");
        using var passed = await legate.GetAsync("web", "/");
        Assert.Equal(HttpStatusCode.OK, passed.StatusCode);
    }

    private void Write(string relative, string text)
    {
        var path = Path.Combine(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }
}
