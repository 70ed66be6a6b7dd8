using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Legate.Config;
using Legate.Tests.Harness;

namespace Legate.Tests.AccessLog;

/// <summary>Access logs end to end: real listener, real upstream, real files.</summary>
public sealed class AccessLogTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-accesslog-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task DefaultFormatLineEqualsEnvoysLineForAScriptedRequest()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello upstream") with { Status = 201 });
        var path = Path.Combine(_dir, "access.log");
        await using var legate = await StartAsync(Config(upstream.Port, FileLogger(path)));

        using var request = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("ingress", "/orders/7?x=1"))
        {
            Content = new StringContent("12345"),
        };
        request.Headers.UserAgent.ParseAdd("test-agent/1.0");
        request.Headers.Add("x-forwarded-for", "203.0.113.9");
        using var response = await legate.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var requestId = (await upstream.Log.WaitForRequestsAsync(1))[0].Header("x-request-id");
        Assert.NotNull(requestId);

        var line = Assert.Single(await WaitForLinesAsync(path, 1));

        // The two values a test cannot know beforehand (time and durations) are read back and checked for shape.
        var match = Regex.Match(line, @"^\[(?<start>[^\]]+)\] .* (?<duration>\d+) (?<service>\d+) ""203");
        Assert.True(match.Success, line);
        var start = DateTime.ParseExact(match.Groups["start"].Value, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
        Assert.InRange(start, DateTime.UtcNow.AddMinutes(-5), DateTime.UtcNow.AddMinutes(1));
        var authority = legate.ListenerUri("ingress").Authority;
        var expected =
            $"[{match.Groups["start"].Value}] \"POST /orders/7?x=1 HTTP/1.1\" 201 - 5 14 {match.Groups["duration"].Value} {match.Groups["service"].Value} " +
            $"\"203.0.113.9\" \"test-agent/1.0\" \"{requestId}\" \"{authority}\" \"127.0.0.1:{upstream.Port}\"";
        Assert.Equal(expected, line);
    }

    [Fact]
    public async Task LocalRepliesAndResponseFlagsAppearInTheDefaultFormat()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var path = Path.Combine(_dir, "access.log");
        await using var legate = await StartAsync(Config(upstream.Port, FileLogger(path)));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/no-route-here"));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);

        var line = Assert.Single(await WaitForLinesAsync(path, 1));
        Assert.Matches(@"^\[[^\]]+\] ""GET /no-route-here HTTP/1\.1"" 404 NR 0 0 \d+ - ""-"" ""-"" ""[0-9a-f-]{36}"" ""127\.0\.0\.1:\d+"" ""-""$", line);
    }

    [Fact]
    public async Task JsonFormatLinesParseAndKeepNumbersAsNumbers()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("abc"));
        var path = Path.Combine(_dir, "access.json");
        await using var legate = await StartAsync(Config(upstream.Port, FileLogger(path, """
            log_format:
              json_format:
                code: "%RESPONSE_CODE%"
                method: "%REQ(:METHOD)%"
                path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
                flags: "%RESPONSE_FLAGS%"
                missing: "%REQ(x-not-there)%"
                sent: "%BYTES_SENT%"
                text: "cluster=%UPSTREAM_CLUSTER% attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT%"
                nested: { route: "%ROUTE_NAME%", constant: 7 }
            """)));

        await legate.Http.GetStringAsync(legate.ListenerUri("ingress", "/a"));
        await legate.Http.GetStringAsync(legate.ListenerUri("ingress", "/b"));

        var lines = await WaitForLinesAsync(path, 2);
        using var first = JsonDocument.Parse(lines[0]);
        var root = first.RootElement;
        Assert.Equal(200, root.GetProperty("code").GetInt32());
        Assert.Equal("GET", root.GetProperty("method").GetString());
        Assert.Equal("/a", root.GetProperty("path").GetString());
        Assert.Equal("-", root.GetProperty("flags").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("missing").ValueKind);
        Assert.Equal(3, root.GetProperty("sent").GetInt64());
        Assert.Equal("cluster=backend attempts=1", root.GetProperty("text").GetString());
        Assert.Equal("default", root.GetProperty("nested").GetProperty("route").GetString());
        Assert.Equal(7, root.GetProperty("nested").GetProperty("constant").GetInt32());
        using var second = JsonDocument.Parse(lines[1]);
        Assert.Equal("/b", second.RootElement.GetProperty("path").GetString());
    }

    [Fact]
    public async Task OmitEmptyValuesDropsMissingJsonFieldsAndDashes()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("abc"));
        var json = Path.Combine(_dir, "omit.json");
        var text = Path.Combine(_dir, "omit.log");
        await using var legate = await StartAsync(Config(upstream.Port,
            FileLogger(json, """
                log_format:
                  omit_empty_values: true
                  json_format: { code: "%RESPONSE_CODE%", missing: "%REQ(x-not-there)%" }
                """) +
            FileLogger(text, """
                log_format:
                  omit_empty_values: true
                  text_format_source: { inline_string: "[%REQ(x-not-there)%] %RESPONSE_CODE%\n" }
                """)));

        await legate.Http.GetStringAsync(legate.ListenerUri("ingress", "/a"));

        using var doc = JsonDocument.Parse(Assert.Single(await WaitForLinesAsync(json, 1)));
        Assert.False(doc.RootElement.TryGetProperty("missing", out _));
        Assert.Equal(200, doc.RootElement.GetProperty("code").GetInt32());
        Assert.Equal("[] 200", Assert.Single(await WaitForLinesAsync(text, 1)));
    }

    [Fact]
    public async Task FiltersDecideWhichStreamsAreLogged()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("ok"))
            .OnPath("/fail", UpstreamResponse.Text("bad") with { Status = 503 }));
        var errors = Path.Combine(_dir, "errors.log");
        var tagged = Path.Combine(_dir, "tagged.log");
        var flagged = Path.Combine(_dir, "flagged.log");
        await using var legate = await StartAsync(Config(upstream.Port,
            FileLogger(errors, """log_format: { text_format_source: { inline_string: "%REQ(:PATH)% %RESPONSE_CODE%\n" } }""",
                """filter: { status_code_filter: { comparison: { op: GE, value: { default_value: 500, runtime_key: unused } } } }""") +
            FileLogger(tagged, """log_format: { text_format_source: { inline_string: "%REQ(:PATH)%\n" } }""",
                """
                filter:
                  and_filter:
                    filters:
                    - header_filter: { header: { name: x-log, present_match: true } }
                    - not_health_check_filter: {}
                    - duration_filter: { comparison: { op: GE, value: { default_value: 0, runtime_key: unused } } }
                """) +
            FileLogger(flagged, """log_format: { text_format_source: { inline_string: "%REQ(:PATH)% %RESPONSE_FLAGS%\n" } }""",
                """
                filter:
                  or_filter:
                    filters:
                    - response_flag_filter: { flags: [NR] }
                    - runtime_filter: { runtime_key: never, percent_sampled: { numerator: 0 } }
                """)));

        await legate.Http.GetAsync(legate.ListenerUri("ingress", "/ok"));
        await legate.Http.GetAsync(legate.ListenerUri("ingress", "/fail"));
        await legate.Http.GetAsync(legate.ListenerUri("ingress", "/no-route-here"));
        using (var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("ingress", "/tagged")))
        {
            request.Headers.Add("x-log", "1");
            await legate.Http.SendAsync(request);
        }

        // The last request's line proves the earlier ones were filtered out, not merely late.
        await legate.Http.GetAsync(legate.ListenerUri("ingress", "/fail?last"));
        Assert.Equal(["/fail 503", "/fail?last 503"], await WaitForLinesAsync(errors, 2));
        Assert.Equal(["/tagged"], await WaitForLinesAsync(tagged, 1));
        Assert.Equal(["/no-route-here NR"], await WaitForLinesAsync(flagged, 1));
        await legate.Server.AccessLogs.FlushAllAsync();
        Assert.Single(File.ReadAllLines(tagged));
        Assert.Single(File.ReadAllLines(flagged));
    }

    [Fact]
    public async Task ReopenLogsAfterRenameWritesToTheNewFile()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var path = Path.Combine(_dir, "rotate.log");
        await using var legate = await StartAsync(Config(upstream.Port,
            FileLogger(path, """log_format: { text_format_source: { inline_string: "%REQ(:PATH)%\n" } }""")));

        await legate.Http.GetStringAsync(legate.ListenerUri("ingress", "/before"));
        Assert.Equal(["/before"], await WaitForLinesAsync(path, 1));

        // logrotate's "create" mode: rename, then ask for a reopen.
        var rotated = path + ".1";
        File.Move(path, rotated);
        using (var reopen = await legate.Http.PostAsync(new Uri(legate.AdminUri, "/reopen_logs"), null))
        {
            Assert.Equal(HttpStatusCode.OK, reopen.StatusCode);
        }

        using (var get = await legate.Http.GetAsync(new Uri(legate.AdminUri, "/reopen_logs")))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        }

        await WaitForAsync(() => File.Exists(path));
        await legate.Http.GetStringAsync(legate.ListenerUri("ingress", "/after"));
        Assert.Equal(["/after"], await WaitForLinesAsync(path, 1));
        Assert.Equal(["/before"], File.ReadAllLines(rotated));
    }

    [Fact]
    public async Task AFailingWriteIsCountedAndReportedNotACrash()
    {
        if (!File.Exists("/dev/full"))
        {
            return;
        }

        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await StartAsync(Config(upstream.Port, FileLogger("/dev/full")));

        using (var response = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/x")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await legate.Logs.WaitForAsync("access log file '/dev/full': write failed", Timeout);
        var failed = legate.Server.Stats.Counter("access_log_file.write_failed");
        Assert.True(failed.Value >= 1);
        Assert.True(legate.Server.Stats.Counter("access_log_file.write_buffered").Value >= 1);

        // Still serving.
        using var again = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/y"));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task StatsCountBufferedCompletedAndTimerFlushes()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var path = Path.Combine(_dir, "stats.log");
        await using var legate = await StartAsync(Config(upstream.Port, FileLogger(path)));

        await legate.Http.GetStringAsync(legate.ListenerUri("ingress", "/x"));
        await WaitForLinesAsync(path, 1);

        var stats = legate.Server.Stats;
        Assert.Equal(1, stats.Counter("access_log_file.write_buffered").Value);
        await WaitForAsync(() => stats.Counter("access_log_file.write_completed").Value == 1);
        Assert.Equal(1, stats.Counter("access_log_file.flushed_by_timer").Value);
        Assert.Equal(0, stats.Counter("access_log_file.write_failed").Value);
        Assert.Equal(0, stats.Gauge("access_log_file.write_total_buffered", Legate.Stats.ImportMode.Accumulate).Value);
    }

    [Fact]
    public async Task ListenerAccessLogHasOneLinePerConnectionAndNoFilterChainMatchIsNR()
    {
        var path = Path.Combine(_dir, "listener.log");
        await using var legate = await StartAsync($$"""
            static_resources:
              listeners:
              - name: ingress
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                access_log:
                - name: envoy.access_loggers.file
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                    path: {{path}}
                    log_format: { text_format_source: { inline_string: "%CONNECTION_ID% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS% %RESPONSE_FLAGS% %CONNECTION_TERMINATION_DETAILS%\n" } }
                filter_chains:
                - filter_chain_match: { source_prefix_ranges: [{ address_prefix: 127.0.0.2, prefix_len: 32 }] }
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: ingress
                      route_config:
                        virtual_hosts:
                        - name: all
                          domains: ["*"]
                          routes:
                          - match: { prefix: "/" }
                            direct_response: { status: 200, body: { inline_string: "hi" } }
            """);
        var endpoint = legate.ListenerEndpoint("ingress");

        // A connection from 127.0.0.2 matches the first chain; one from 127.0.0.1 matches none.
        using (var client = new TcpClient())
        {
            client.Client.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
            await client.ConnectAsync(endpoint);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
            var reader = new StreamReader(stream);
            Assert.StartsWith("HTTP/1.1 200", await reader.ReadLineAsync());
            await reader.ReadToEndAsync();
        }

        var line = Assert.Single(await WaitForLinesAsync(path, 1));
        Assert.Matches($@"^\d+ 127\.0\.0\.2 127\.0\.0\.1:{endpoint.Port} - -$", line);

        using (var refused = new TcpClient())
        {
            await refused.ConnectAsync(endpoint);
            var buffer = new byte[16];
            Assert.Equal(0, await refused.GetStream().ReadAsync(buffer));
        }

        var lines = await WaitForLinesAsync(path, 2);
        Assert.Matches($@"^\d+ 127\.0\.0\.1 127\.0\.0\.1:{endpoint.Port} NR filter_chain_not_found$", lines[1]);
        Assert.Equal(1, legate.Counter($"listener.127.0.0.1_{endpoint.Port}.no_filter_chain_match"));
        Assert.NotEqual(lines[0].Split(' ')[0], lines[1].Split(' ')[0]);
    }

    [Fact]
    public async Task AdminRequestsAreLoggedToTheAdminAccessLog()
    {
        var path = Path.Combine(_dir, "admin.log");
        var yaml = TestConfigs.Admin() + $$"""
              access_log:
              - name: envoy.access_loggers.file
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                  path: {{path}}
            """;
        await using var legate = await StartAsync(yaml);

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(legate.AdminUri, "/ready"));
        request.Headers.UserAgent.ParseAdd("probe/2");
        using var response = await legate.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var line = Assert.Single(await WaitForLinesAsync(path, 1));
        Assert.Matches($@"^\[[^\]]+\] ""GET /ready HTTP/1\.1"" 200 - 0 5 \d+ - ""-"" ""probe/2"" ""-"" ""{Regex.Escape(legate.AdminUri.Authority)}"" ""-""$", line);
    }

    [Fact]
    public async Task StdoutLoggerWritesToTheProcessStandardOutput()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var yaml = TestConfigs.Admin() + Config(upstream.Port, """
            access_log:
            - name: envoy.access_loggers.stdout
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
                log_format: { text_format_source: { inline_string: "stdout-line %REQ(:PATH)% %RESPONSE_CODE%\n" } }
            - name: envoy.access_loggers.stderr
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog
            - name: envoy.access_loggers.file
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                path: /dev/stdout
                log_format: { text_format_source: { inline_string: "file-to-stdout %REQ(:PATH)%\n" } }
            """);
        await using var process = await LegateProcess.StartServingAsync(yaml, "--file-flush-interval-msec", "50");
        var listener = await process.WaitForListenerAsync("ingress");
        using var http = TestHttp.CreateClient();
        await http.GetStringAsync(new Uri("http://" + Legate.Network.SocketAddresses.Format(listener) + "/via-stdout"));

        await process.Stdout.WaitForAsync("^stdout-line /via-stdout 200$", Timeout);
        await process.Stdout.WaitForAsync("^file-to-stdout /via-stdout$", Timeout);
        await process.Stderr.WaitForAsync(@"^\[[^\]]+\] ""GET /via-stdout HTTP/1\.1"" 200 - 0 2 ", Timeout);
    }

    [Theory]
    [InlineData("text_format_source: { inline_string: \"%NOT_AN_OPERATOR%\" }", "log_format.text_format_source", "%NOT_AN_OPERATOR%: command operator not supported yet")]
    [InlineData("json_format: { a: \"%REQ()%\" }", "log_format.json_format[\"a\"]", "needs a header name")]
    [InlineData("text_format_source: { inline_string: \"%START_TIME(%Y\" }", "log_format.text_format_source", "unterminated command operator")]
    [InlineData("text_format_source: { inline_string: \"%GRPC_STATUS(LOUD)%\" }", "log_format.text_format_source", "is not CAMEL_STRING, SNAKE_STRING or NUMBER")]
    public void BadFormatsAreConfigErrorsWithTheFieldPath(string format, string pathSuffix, string message)
    {
        var yaml = Config(1, FileLogger(Path.Combine(_dir, "never.log"), "log_format: { " + format + " }"));
        var ex = Assert.Throws<ConfigException>(() => Create(yaml));
        var error = Assert.Single(ex.Errors);
        Assert.EndsWith("access_log[0].typed_config." + pathSuffix, error.Path, StringComparison.Ordinal);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownResponseFlagInAFilterIsAConfigError()
    {
        var yaml = Config(1, FileLogger(Path.Combine(_dir, "never.log"), "", "filter: { response_flag_filter: { flags: [NOPE] } }"));
        var ex = Assert.Throws<ConfigException>(() => Create(yaml));
        Assert.Contains(ex.Errors, e => e.Path.EndsWith("access_log[0].filter.response_flag_filter.flags[0]", StringComparison.Ordinal));
    }

    private static void Create(string yaml)
    {
        var options = Legate.Server.CommandLineParser.Parse(["--config-yaml", yaml]);
        var loaded = BootstrapLoader.Load(options.ConfigPath, options.ConfigYaml);
        using var logs = Legate.Server.Logging.LogManager.Create(options, new CapturingLogSink());
        var server = Legate.Server.LegateServer.Create(options, loaded, logs);
        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    private static Task<InProcessLegate> StartAsync(string yaml) =>
        InProcessLegate.StartAsync(TestConfigs.Admin() + yaml.Replace(TestConfigs.Admin(), string.Empty, StringComparison.Ordinal), "--file-flush-interval-msec", "50");

    internal static async Task<string[]> WaitForLinesAsync(string path, int count)
    {
        string[] lines = [];
        await WaitForAsync(() =>
        {
            lines = File.Exists(path) ? File.ReadAllLines(path) : [];
            return lines.Length >= count;
        });
        return lines;
    }

    internal static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(20);
        }
    }

    internal static string FileLogger(string path, string body = "", string filter = "") =>
        $$"""
        - name: envoy.access_loggers.file
        {{Indent(filter, 2)}}
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
            path: {{path}}
        {{Indent(body, 4)}}

        """;

    private static string Indent(string text, int spaces) =>
        string.Join("\n", text.TrimEnd('\n').Split('\n').Select(l => new string(' ', spaces) + l));

    /// <summary>A listener routing /orders, /a… to a cluster on <paramref name="upstreamPort"/>; <paramref name="accessLogs"/> is the HCM's access_log list.</summary>
    internal static string Config(int upstreamPort, string accessLogs) => $$"""
        static_resources:
          listeners:
          - name: ingress
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress
        {{(accessLogs.Length == 0 ? string.Empty : "          access_log:\n" + Indent(accessLogs.Replace("access_log:\n", string.Empty, StringComparison.Ordinal), 10))}}
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { safe_regex: { regex: "/(a|b|orders|ok|fail|tagged|x|y|before|after|via-stdout|grpc).*" } }
                        name: default
                        route: { cluster: backend }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: backend
            connect_timeout: 5s
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstreamPort}} } } }
        """;
}
