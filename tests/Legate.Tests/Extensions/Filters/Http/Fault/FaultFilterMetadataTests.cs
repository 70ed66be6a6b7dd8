using Legate.Tests.AccessLog;
using Legate.Tests.Harness;

namespace Legate.Tests.Extensions.Filters.Http.Fault;

/// <summary>
/// <c>filter_metadata</c>: when a delay or an abort is injected, the struct is merged into the
/// request's dynamic metadata under the fault filter's name (what
/// <c>%DYNAMIC_METADATA(&lt;filter name&gt;:key)%</c> prints); a request without a fault has none.
/// </summary>
public sealed class FaultFilterMetadataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-fault-metadata-").FullName;

    private string LogPath => Path.Combine(_dir, "access.log");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task AnInjectedFaultLeavesTheMetadataUnderTheFiltersName()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var config = new ProxyConfig(upstream.Port)
        {
            HttpFilters = """
                - name: chaos
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    abort: { header_abort: {}, percentage: { numerator: 100 } }
                    delay: { header_delay: {}, percentage: { numerator: 100 } }
                    filter_metadata: { experiment: latency-42, owner: sre }
                """,
            Hcm = $$"""access_log: [{ name: envoy.access_loggers.file, typed_config: { "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: "{{LogPath}}", log_format: { text_format_source: { inline_string: "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %DYNAMIC_METADATA(chaos:experiment)% %DYNAMIC_METADATA(chaos:owner)%\n" } } } }]""",
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(config, "--file-flush-interval-msec", "50");

        using (var plain = await legate.GetAsync("web", "/plain"))
        {
            Assert.Equal(200, (int)plain.StatusCode);
        }

        using (var aborted = await legate.GetAsync("web", "/aborted", ("x-envoy-fault-abort-request", "503")))
        {
            Assert.Equal(503, (int)aborted.StatusCode);
        }

        using (var delayed = await legate.GetAsync("web", "/delayed", ("x-envoy-fault-delay-request", "1")))
        {
            Assert.Equal(200, (int)delayed.StatusCode);
        }

        Assert.Equal(
            ["/plain 200 - - -", "/aborted 503 FI latency-42 sre", "/delayed 200 DI latency-42 sre"],
            await AccessLogTests.WaitForLinesAsync(LogPath, 3));
    }
}
