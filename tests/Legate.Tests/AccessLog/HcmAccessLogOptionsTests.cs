using Legate.Tests.Harness;

namespace Legate.Tests.AccessLog;

/// <summary>
/// The connection manager's <c>access_log_options</c>: an entry when a request starts
/// (DownstreamStart), periodic entries while it runs (DownstreamPeriodic), one when a CONNECT
/// tunnel is up (DownstreamTunnelSuccessfullyEstablished), and always the final DownstreamEnd.
/// </summary>
public sealed class HcmAccessLogOptionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-hcm-log-").FullName;

    private string LogPath => Path.Combine(_dir, "access.log");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task FlushOnNewRequestLogsTheStartAndTheEnd()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = AccessLog("access_log_options: { flush_access_log_on_new_request: true }") });

        using (await legate.GetAsync("web", "/a")) { }

        Assert.Equal(["DownstreamStart 0 /a", "DownstreamEnd 200 /a"], await AccessLogTests.WaitForLinesAsync(LogPath, 2));
    }

    [Fact]
    public async Task TheDeprecatedFieldStillWorks()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = AccessLog("flush_access_log_on_new_request: true") });

        using (await legate.GetAsync("web", "/a")) { }

        Assert.Equal(["DownstreamStart 0 /a", "DownstreamEnd 200 /a"], await AccessLogTests.WaitForLinesAsync(LogPath, 2));
    }

    [Fact]
    public async Task PeriodicEntriesWhileTheRequestRuns()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("late") with { HoldUntil = release.Task });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port) { Hcm = AccessLog("access_log_options: { access_log_flush_interval: 0.05s }") });

        var pending = legate.GetAsync("web", "/slow");
        await upstream.Log.WaitForRequestsAsync(1);

        // The request is held at the upstream: entries keep coming, with no response yet.
        var periodic = await AccessLogTests.WaitForLinesAsync(LogPath, 2);
        Assert.All(periodic, line => Assert.Equal("DownstreamPeriodic 0 /slow", line));

        release.SetResult();
        using (await pending) { }
        await AccessLogTests.WaitForAsync(() => File.ReadAllLines(LogPath).Contains("DownstreamEnd 200 /slow"));

        // The timer stopped with the stream: two later requests (each logged and flushed, which
        // takes longer than the interval) see no new /slow entry between them.
        using (await legate.GetAsync("web", "/next")) { }
        await AccessLogTests.WaitForAsync(() => File.ReadAllLines(LogPath).Contains("DownstreamEnd 200 /next"));
        var before = File.ReadAllLines(LogPath).Count(line => line.EndsWith("/slow", StringComparison.Ordinal));
        using (await legate.GetAsync("web", "/third")) { }
        await AccessLogTests.WaitForAsync(() => File.ReadAllLines(LogPath).Contains("DownstreamEnd 200 /third"));
        Assert.Equal(before, File.ReadAllLines(LogPath).Count(line => line.EndsWith("/slow", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task AnEntryWhenTheTunnelIsUp()
    {
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var buffer = new byte[1024];
            int read;
            while ((read = await connection.Stream.ReadAsync(buffer)) > 0)
            {
                await connection.WriteAsync(buffer.AsMemory(0, read));
            }
        });
        await using var legate = await StartAsync(new ProxyConfig(upstream.Port)
        {
            Hcm = "upgrade_configs: [{ upgrade_type: CONNECT }]\n" + AccessLog("access_log_options: { flush_log_on_tunnel_successfully_established: true }", "%ACCESS_LOG_TYPE% %RESPONSE_CODE% %REQ(:AUTHORITY)%"),
            Routes = """
                - match: { connect_matcher: {} }
                  route: { cluster: backend, upgrade_configs: [{ upgrade_type: CONNECT, connect_config: {} }] }
                """,
        });

        await using (var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web")))
        {
            await client.WriteAsync("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
            Assert.Equal(200, RawResponse.ParseHead((await client.ReadHeadAsync())!).Status);

            // The tunnel is up and still open: its entry is already there.
            Assert.Equal(["DownstreamTunnelSuccessfullyEstablished 200 example.com:443"], await AccessLogTests.WaitForLinesAsync(LogPath, 1));
        }

        Assert.Equal("DownstreamEnd 200 example.com:443", (await AccessLogTests.WaitForLinesAsync(LogPath, 2))[1]);
    }

    [Fact]
    public async Task OptionsAndTheDeprecatedFieldsTogetherAreAnError()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => StartAsync(new ProxyConfig(1)
        {
            Hcm = AccessLog("flush_access_log_on_new_request: true\naccess_log_options: { flush_access_log_on_new_request: true }"),
        }));

        Assert.Contains("access_log_options cannot be set together with the deprecated", error.Message, StringComparison.Ordinal);
    }

    private string AccessLog(string options, string format = "%ACCESS_LOG_TYPE% %RESPONSE_CODE% %REQ(:PATH)%") =>
        $$"""access_log: [{ name: envoy.access_loggers.file, typed_config: { "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: "{{LogPath}}", log_format: { text_format_source: { inline_string: "{{format}}\n" } } } }]""" + "\n" + options;

    private static Task<InProcessLegate> StartAsync(ProxyConfig config) =>
        InProcessLegate.StartAsync(config.Build(), "--file-flush-interval-msec", "50");
}
