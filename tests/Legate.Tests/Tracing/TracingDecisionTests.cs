using Legate.Tests.Harness;

namespace Legate.Tests.Tracing;

/// <summary>The HCM tracing decision, packed into x-request-id as Envoy does, seen by a real upstream.</summary>
public sealed class TracingDecisionTests
{
    private static string Config(int upstreamPort, string tracing, bool internalClient = true) =>
        Legate.Tests.AccessLog.AccessLogTests.Config(upstreamPort, string.Empty)
            .Replace("          stat_prefix: ingress\n", "          stat_prefix: ingress\n" + (tracing.Length == 0 ? string.Empty : "          tracing: " + tracing + "\n") + (internalClient ? InternalLoopback : string.Empty), StringComparison.Ordinal);

    // x-envoy-force-trace is an internal-only header (Envoy strips it from external requests), so
    // the test client on loopback is declared internal.
    private const string InternalLoopback =
        "          use_remote_address: true\n" +
        "          internal_address_config: { cidr_ranges: [{ address_prefix: 127.0.0.0, prefix_len: 8 }] }\n";

    [Theory]
    [InlineData("", null, '4')]
    [InlineData("{}", null, '9')]
    [InlineData("{ random_sampling: { value: 0 } }", null, '4')]
    [InlineData("{ random_sampling: { value: 0 } }", "x-envoy-force-trace", 'a')]
    [InlineData("{ random_sampling: { value: 0 } }", "x-client-trace-id", 'b')]
    [InlineData("{ random_sampling: { value: 0 }, client_sampling: { value: 0 } }", "x-client-trace-id", '4')]
    [InlineData("{ overall_sampling: { value: 0 } }", "x-envoy-force-trace", '4')]
    public async Task TraceReasonIsPackedIntoTheRequestId(string tracing, string? header, char expected)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Admin() + Config(upstream.Port, tracing));
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("ingress", "/a"));
        if (header is not null)
        {
            request.Headers.Add(header, "1");
        }

        using var response = await legate.Http.SendAsync(request);
        var id = (await upstream.Log.WaitForRequestsAsync(1))[0].Header("x-request-id");
        Assert.NotNull(id);
        Assert.Equal(36, id.Length);
        Assert.Equal(expected, id[14]);
    }

    [Fact]
    public async Task AnExternalCallerCannotForceATrace()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Admin() + Config(upstream.Port, "{ random_sampling: { value: 0 } }", internalClient: false));
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("ingress", "/a"));
        request.Headers.Add("x-envoy-force-trace", "1");

        using var response = await legate.Http.SendAsync(request);
        var seen = (await upstream.Log.WaitForRequestsAsync(1))[0];
        Assert.Null(seen.Header("x-envoy-force-trace"));
        Assert.Equal('4', seen.Header("x-request-id")![14]);
    }

    [Fact]
    public async Task AnIdAlreadyMarkedKeepsItsReasonAndFeedsTheTraceableFilter()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var dir = Directory.CreateTempSubdirectory("legate-trace-").FullName;
        try
        {
            var path = Path.Combine(dir, "traced.log");
            var yaml = WithTracedLog(upstream.Port, path, "%REQ(:PATH)% %REQ(x-request-id)%");
            await using var legate = await InProcessLegate.StartAsync(yaml, "--file-flush-interval-msec", "50");

            await legate.Http.GetStringAsync(legate.ListenerUri("ingress", "/a"));
            using (var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("ingress", "/b")))
            {
                request.Headers.Add("x-request-id", "11111111-2222-a333-8444-555555555555");
                await legate.Http.SendAsync(request);
            }

            Assert.Equal(["/b 11111111-2222-a333-8444-555555555555"], await Legate.Tests.AccessLog.AccessLogTests.WaitForLinesAsync(path, 1));
            await legate.Server.AccessLogs.FlushAllAsync();
            Assert.Single(File.ReadAllLines(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private const string NoPacking = """
                  request_id_extension:
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig, pack_trace_reason: false }

        """;

    private const string NotFromRequestId = """
                  request_id_extension:
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig, use_request_id_for_trace_sampling: false }

        """;

    [Theory]
    [InlineData(null, 'a')]
    [InlineData(NoPacking, '4')]
    public async Task PackTraceReasonFalseLeavesTheRequestIdAlone(string? requestId, char expected)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var yaml = TestConfigs.Admin() + Config(upstream.Port, "{ random_sampling: { value: 0 } }");
        if (requestId is not null)
        {
            yaml = yaml.Replace("          stat_prefix: ingress\n", "          stat_prefix: ingress\n" + requestId, StringComparison.Ordinal);
        }

        await using var legate = await InProcessLegate.StartAsync(yaml);
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("ingress", "/a"));
        request.Headers.Add("x-envoy-force-trace", "1");

        using var response = await legate.Http.SendAsync(request);
        Assert.Equal(expected, (await upstream.Log.WaitForRequestsAsync(1))[0].Header("x-request-id")![14]);
    }

    [Theory]
    [InlineData(null, new[] { "/b" })]
    [InlineData(NoPacking, new string[0])]
    [InlineData(NotFromRequestId, new[] { "/a", "/b" })]
    public async Task TheRequestIdExtensionDecidesWhatIsTraced(string? requestId, string[] traced)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var dir = Directory.CreateTempSubdirectory("legate-trace-").FullName;
        try
        {
            var path = Path.Combine(dir, "traced.log");
            var all = Path.Combine(dir, "all.log");
            var yaml = WithTracedLog(upstream.Port, path, "%REQ(:PATH)%", requestId ?? string.Empty, all);
            await using var legate = await InProcessLegate.StartAsync(yaml, "--file-flush-interval-msec", "50");

            // Random sampling is 0%: only /b, already marked as forced (by an Envoy in front),
            // is traced, unless the request id is not read (then every request is "sampled" and
            // left to the tracer, as Envoy's use_request_id_for_trace_sampling: false).
            await legate.Http.GetStringAsync(legate.ListenerUri("ingress", "/a"));
            using (var forced = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("ingress", "/b")))
            {
                forced.Headers.Add("x-request-id", "11111111-2222-a333-8444-555555555555");
                await legate.Http.SendAsync(forced);
            }

            // Both requests are logged (a stream logs after its response went out): the unfiltered
            // log has them, so the filtered one has had its say.
            await Legate.Tests.AccessLog.AccessLogTests.WaitForLinesAsync(all, 2);
            await legate.Server.AccessLogs.FlushAllAsync();
            var lines = File.Exists(path) ? File.ReadAllLines(path) : [];
            Assert.Equal(traced, lines);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// Random sampling off, <paramref name="hcmExtra"/> (indented HCM fields), an access log with
    /// <c>traceable_filter</c> at <paramref name="tracedPath"/> and, with <paramref name="allPath"/>,
    /// an unfiltered one (both in <paramref name="format"/>).
    /// </summary>
    private static string WithTracedLog(int upstreamPort, string tracedPath, string format, string hcmExtra = "", string? allPath = null)
    {
        string Log(string path, bool traceable) =>
            "          - name: envoy.access_loggers.file\n" +
            (traceable ? "            filter: { traceable_filter: {} }\n" : string.Empty) +
            "            typed_config:\n" +
            "              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n" +
            $"              path: {path}\n" +
            $"              log_format: {{ text_format_source: {{ inline_string: \"{format}\\n\" }} }}\n";

        var logs = "          access_log:\n" + Log(tracedPath, traceable: true) + (allPath is null ? string.Empty : Log(allPath, traceable: false));
        return TestConfigs.Admin() + Config(upstreamPort, "{ random_sampling: { value: 0 } }")
            .Replace("          stat_prefix: ingress\n", "          stat_prefix: ingress\n" + hcmExtra + logs, StringComparison.Ordinal);
    }
}
