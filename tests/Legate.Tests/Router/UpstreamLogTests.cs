using System.Net;
using Legate.Tests.AccessLog;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// The router's <c>upstream_log</c>: one entry per upstream attempt when it ends (UpstreamEnd), with
/// the attempt's own response code, host, flags and trailers; with
/// <c>flush_upstream_log_on_upstream_stream</c> one more when the attempt has its connection
/// (UpstreamPoolReady). The connection manager's access log still has one entry per request.
/// </summary>
public sealed class UpstreamLogTests : IDisposable
{
    private const string Format = "%ACCESS_LOG_TYPE% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_HOST% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %REQ(:PATH)% %TRAILER(grpc-status)% %RESPONSE_CODE_DETAILS%";

    private readonly string _dir = Directory.CreateTempSubdirectory("legate-upstream-log-").FullName;

    private string UpstreamLogPath => Path.Combine(_dir, "upstream.log");

    private string DownstreamLogPath => Path.Combine(_dir, "downstream.log");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task EachAttemptOfARetriedRequestIsLogged()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("fine")).OnPath("/flaky", UpstreamResponse.Text("down", 503), times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await StartAsync(upstream.Port, route: "retry_policy: { retry_on: 5xx, num_retries: 1 }");

        using var response = await legate.GetAsync("web", "/flaky");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var host = $"127.0.0.1:{upstream.Port}";
        Assert.Equal(
            [$"UpstreamEnd 503 - {host} 1 /flaky - via_upstream", $"UpstreamEnd 200 - {host} 2 /flaky - via_upstream"],
            await AccessLogTests.WaitForLinesAsync(UpstreamLogPath, 2));
        Assert.Equal([$"DownstreamEnd 200 - {host} 2 /flaky - via_upstream"], await AccessLogTests.WaitForLinesAsync(DownstreamLogPath, 1));
    }

    /// <summary>
    /// Hedging: the attempt whose per-try timeout fired runs on beside the retry; when the retry
    /// answers first, the reset attempt still gets its entry (its own attempt number, no response).
    /// </summary>
    [Fact]
    public async Task AHedgedAttemptThatLosesIsLoggedToo()
    {
        var release = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Text("second"))
            .OnPath("/hedged", UpstreamResponse.Text("first") with { HoldUntil = release.Task }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await StartAsync(upstream.Port, route: Hedged);

        using (var response = await legate.GetAsync("web", "/hedged"))
        {
            Assert.Equal("second", await response.Content.ReadAsStringAsync());
        }

        var host = $"127.0.0.1:{upstream.Port}";
        Assert.Equal(
            [$"UpstreamEnd 0 - {host} 1 /hedged - -", $"UpstreamEnd 200 - {host} 2 /hedged - via_upstream"],
            await AccessLogTests.WaitForLinesAsync(UpstreamLogPath, 2));
        release.SetResult();
    }

    /// <summary>The attempt that timed out answers first: the retry is the one reset, and the winner's entry keeps its own attempt number.</summary>
    [Fact]
    public async Task AHedgedAttemptThatWinsKeepsItsOwnEntry()
    {
        var releaseFirst = new TaskCompletionSource();
        var never = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Text("later"))
            .OnPath("/hedged", UpstreamResponse.Text("first") with { HoldUntil = releaseFirst.Task }, times: 1)
            .OnPath("/hedged", UpstreamResponse.Text("second") with { HoldUntil = never.Task }, times: 1);
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await StartAsync(upstream.Port, route: Hedged);

        var pending = legate.GetAsync("web", "/hedged");
        await upstream.Log.WaitForRequestsAsync(2);
        releaseFirst.SetResult();
        using (var response = await pending)
        {
            Assert.Equal("first", await response.Content.ReadAsStringAsync());
        }

        var host = $"127.0.0.1:{upstream.Port}";
        Assert.Equal(
            [$"UpstreamEnd 0 - {host} 2 /hedged - -", $"UpstreamEnd 200 - {host} 1 /hedged - via_upstream"],
            await AccessLogTests.WaitForLinesAsync(UpstreamLogPath, 2));
        never.SetResult();
    }

    private const string Hedged = "retry_policy: { retry_on: 5xx, num_retries: 1, per_try_timeout: 0.2s }, hedge_policy: { hedge_on_per_try_timeout: true }";

    [Fact]
    public async Task AConnectFailureIsAnAttemptWithoutAResponse()
    {
        var closed = FreePort.Get();
        await using var legate = await StartAsync(closed, route: "retry_policy: { retry_on: connect-failure, num_retries: 1 }");

        using var response = await legate.GetAsync("web", "/down");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);

        var lines = await AccessLogTests.WaitForLinesAsync(UpstreamLogPath, 2);
        Assert.All(lines, line => Assert.StartsWith($"UpstreamEnd 0 UF 127.0.0.1:{closed} ", line, StringComparison.Ordinal));
        Assert.EndsWith("upstream_reset_before_response_started{connection_failure}", lines[0], StringComparison.Ordinal);
        Assert.Contains(" 1 /down ", lines[0], StringComparison.Ordinal);
        Assert.Contains(" 2 /down ", lines[1], StringComparison.Ordinal);

        // The request's own entry names the host it could not reach too (%UPSTREAM_HOST% is the host's address).
        var downstream = Assert.Single(await AccessLogTests.WaitForLinesAsync(DownstreamLogPath, 1));
        Assert.StartsWith($"DownstreamEnd 503 UF,URX 127.0.0.1:{closed} 2 /down ", downstream, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FlushOnUpstreamStreamAddsAnEntryWhenTheConnectionIsThere()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("fine"));
        await using var legate = await StartAsync(upstream.Port, options: "upstream_log_options: { flush_upstream_log_on_upstream_stream: true }");

        using var response = await legate.GetAsync("web", "/a");

        var host = $"127.0.0.1:{upstream.Port}";
        Assert.Equal([$"UpstreamPoolReady 0 - {host} 1 /a - -", $"UpstreamEnd 200 - {host} 1 /a - via_upstream"],
            await AccessLogTests.WaitForLinesAsync(UpstreamLogPath, 2));
    }

    [Fact]
    public async Task AnHttp2AttemptIsLoggedWithItsTrailers()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("fine").WithTrailer("grpc-status", "0"), UpstreamProtocols.Http2);
        await using var legate = await StartAsync(upstream.Port, cluster: TestConfigs.Http2UpstreamCluster);
        using var client = TestHttp.CreateClient(HttpVersion.Version20);

        using var response = await client.GetAsync(legate.ListenerUri("web", "/h2"));
        Assert.Equal("fine", await response.Content.ReadAsStringAsync());

        Assert.Equal([$"UpstreamEnd 200 - 127.0.0.1:{upstream.Port} 1 /h2 0 via_upstream"], await AccessLogTests.WaitForLinesAsync(UpstreamLogPath, 1));
    }

    [Fact]
    public async Task PeriodicEntriesWhileAnAttemptRuns()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("late") with { HoldUntil = release.Task });
        await using var legate = await StartAsync(upstream.Port, options: "upstream_log_options: { upstream_log_flush_interval: 0.05s }");

        var pending = legate.GetAsync("web", "/slow");
        await upstream.Log.WaitForRequestsAsync(1);
        var periodic = await AccessLogTests.WaitForLinesAsync(UpstreamLogPath, 2);
        Assert.All(periodic, line => Assert.StartsWith($"UpstreamPeriodic 0 - 127.0.0.1:{upstream.Port} 1 /slow", line, StringComparison.Ordinal));

        release.SetResult();
        using (await pending) { }
        await AccessLogTests.WaitForAsync(() => File.ReadAllLines(UpstreamLogPath).Any(line => line.StartsWith("UpstreamEnd 200", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task ATerminatedConnectTunnelIsOneAttempt()
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
        const string Tunnel = """
            - match: { connect_matcher: {} }
              route: { cluster: backend, upgrade_configs: [{ upgrade_type: CONNECT, connect_config: {} }] }
            """;
        await using var legate = await StartAsync(upstream.Port, hcm: "upgrade_configs: [{ upgrade_type: CONNECT }]\n", routes: Tunnel);

        await using (var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web")))
        {
            await client.WriteAsync("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
            Assert.Equal(200, RawResponse.ParseHead((await client.ReadHeadAsync())!).Status);
            await client.WriteAsync("ping");
            Assert.Equal("ping", System.Text.Encoding.ASCII.GetString(await client.ReadExactlyAsync(4)));
        }

        var line = Assert.Single(await AccessLogTests.WaitForLinesAsync(UpstreamLogPath, 1));
        // The flags column is "-" or DC: the client's close may reach the stream before the tunnel's end is logged.
        Assert.Matches($@"^UpstreamEnd 200 (-|DC) 127\.0\.0\.1:{upstream.Port} 1 ", line);
    }

    private Task<InProcessLegate> StartAsync(int upstreamPort, string route = "", string options = "", string cluster = "", string hcm = "", string routes = "")
    {
        var upstreamLog = $$"""upstream_log: [{ name: envoy.access_loggers.file, typed_config: { "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: "{{UpstreamLogPath}}", log_format: { text_format_source: { inline_string: "{{Format}}\n" } } } }]""";
        var config = new ProxyConfig(upstreamPort)
        {
            Route = route,
            Cluster = cluster,
            Router = upstreamLog + (options.Length > 0 ? ", " + options : ""),
            Routes = routes,
            Hcm = hcm + $$"""access_log: [{ name: envoy.access_loggers.file, typed_config: { "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: "{{DownstreamLogPath}}", log_format: { text_format_source: { inline_string: "{{Format}}\n" } } } }]""",
        }.Build();
        return InProcessLegate.StartAsync(config, "--file-flush-interval-msec", "50");
    }
}
