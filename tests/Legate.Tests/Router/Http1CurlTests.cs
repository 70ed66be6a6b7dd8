using System.Diagnostics;
using System.Globalization;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// Real command-line clients through the HTTP/1.1 upstream path: curl over HTTP/1.1 (keep-alive
/// across URLs, chunked upload, HEAD, a local reply) and with HTTP/2 prior knowledge (an h2c
/// client in front of an HTTP/1.1 upstream), and h2load in HTTP/1.1 mode for a short load run.
/// Reported as skipped where the tool is not installed.
/// </summary>
public sealed class Http1CurlTests
{
    [ToolFact("curl")]
    public async Task CurlKeepsOneConnectionAcrossUrlsAndUploadsChunked()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(file, UpstreamResponse.GeneratedBody(200_000));
            var (exit, output) = await ToolFactAttribute.RunAsync("curl", "-sS", "-i", "--http1.1",
                legate.ListenerUri("web", "/first").ToString(), legate.ListenerUri("web", "/second").ToString(),
                "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file, legate.ListenerUri("web", "/upload").ToString());

            Assert.True(exit == 0, output);
            Assert.Equal(3, output.Split("HTTP/1.1 200 OK").Length - 1);
            Assert.Contains("x-envoy-upstream-service-time:", output, StringComparison.Ordinal);
            var requests = await upstream.Log.WaitForRequestsAsync(3);
            Assert.Single(requests.Select(r => r.ConnectionId).Distinct());
            Assert.Equal(200_000, requests[^1].Body.Length);
            Assert.Equal(UpstreamResponse.GeneratedBody(200_000), requests[^1].Body);
            Assert.Equal(1, legate.Counter("http.web.downstream_cx_total"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [ToolFact("curl")]
    public async Task CurlSeesEnvoysConnectFailureReply()
    {
        using var refused = FreePort.Refusing();
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(refused.Port).Build());

        var (exit, output) = await ToolFactAttribute.RunAsync("curl", "-sS", "-i", legate.ListenerUri("web", "/x").ToString());

        Assert.True(exit == 0, output);
        Assert.StartsWith("HTTP/1.1 503 Service Unavailable\r\n", output, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nupstream connect error or disconnect/reset before headers. reset reason: connection failure", output, StringComparison.Ordinal);
    }

    [ToolFact("curl")]
    public async Task CurlWithHttp2PriorKnowledgeReachesAnHttp1Upstream()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Sized(100_000));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());

        var (exit, output) = await ToolFactAttribute.RunAsync("curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null",
            "-w", "%{http_version} %{response_code} %{size_download}", legate.ListenerUri("web", "/h2").ToString());

        Assert.True(exit == 0, output);
        Assert.Equal("2 200 100000", output.Trim());
        var seen = Assert.Single(await upstream.Log.WaitForRequestsAsync(1));
        Assert.Equal("HTTP/1.1", seen.Protocol);
        Assert.Equal(1, legate.Counter("http.web.downstream_rq_http2_total"));
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_http1_total"));
    }

    [ToolFact("h2load")]
    public async Task H2loadHttp1RunHasNoErrorsAndReusesUpstreamConnections()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Sized(1024));
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port).Build());
        const int total = 400;

        var (exit, output) = await ToolFactAttribute.RunAsync("h2load", "--h1", "-n", total.ToString(CultureInfo.InvariantCulture), "-c", "4", legate.ListenerUri("web", "/load").ToString());

        Assert.True(exit == 0, output);
        Assert.Contains($"requests: {total} total, {total} started, {total} done, {total} succeeded, 0 failed, 0 errored", output, StringComparison.Ordinal);
        Assert.Equal(total, legate.Counter("http.web.downstream_rq_http1_total"));
        Assert.Equal(4, legate.Counter("http.web.downstream_cx_total"));

        // Four client connections in parallel need at most four upstream connections, reused throughout.
        Assert.InRange(legate.Counter("cluster.backend.upstream_cx_total"), 1, 4);
    }
}

/// <summary>A test that runs an external tool; reported as skipped (never passed) where the tool is not installed.</summary>
public sealed class ToolFactAttribute : FactAttribute
{
    public ToolFactAttribute(string tool)
    {
        if (Find(tool) is null)
        {
            Skip = tool + " is not installed";
        }
    }

    public static string? Find(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, tool)).FirstOrDefault(File.Exists);

    public static async Task<(int Exit, string Output)> RunAsync(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(Find(tool)!) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment.Remove("http_proxy");
        start.Environment.Remove("HTTP_PROXY");
        start.Environment.Remove("all_proxy");
        start.Environment.Remove("ALL_PROXY");
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
