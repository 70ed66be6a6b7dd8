using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Legate.Config;
using Legate.Tests.Harness;

namespace Legate.Tests.Extensions.Filters.Http.Tap;

/// <summary>
/// The HTTP tap filter with a static config: matching streams become one file each
/// (<c>&lt;path_prefix&gt;_&lt;id&gt;.json</c>) holding Envoy's http_buffered_trace, through a real
/// proxy path to a scripted upstream.
/// </summary>
public sealed class TapFilterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-tap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task FilePerTapWritesTheMatchingStreamWithTruncatedBodies()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(
            UpstreamResponse.Text("hello from upstream") with { Headers = [new("x-upstream", "seen")] });
        var tap = $$"""
            static_config:
              match:
                and_match:
                  rules:
                  - http_request_headers_match: { headers: [ { name: x-tap, string_match: { exact: "yes" } } ] }
                  - http_response_headers_match: { headers: [ { name: ":status", string_match: { exact: "200" } } ] }
              output_config:
                max_buffered_rx_bytes: 8
                max_buffered_tx_bytes: 5
                sinks:
                - file_per_tap: { path_prefix: "{{_dir}}/tap" }
            """;
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, tap));

        // Not tapped: the request header does not match.
        using (var plain = await legate.Http.PostAsync(legate.ListenerUri("ingress", "/plain"), new StringContent("ignored body")))
        {
            Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("ingress", "/tapped?q=1"))
        {
            Content = new StringContent("0123456789abcdef"),
        };
        request.Headers.Add("x-tap", "yes");
        using (var tapped = await legate.Http.SendAsync(request))
        {
            Assert.Equal("hello from upstream", await tapped.Content.ReadAsStringAsync());
        }

        var (file, trace) = await WaitForSingleTraceAsync();
        Assert.Matches(new Regex(@"^tap_\d+\.json$"), Path.GetFileName(file));
        var buffered = trace.GetProperty("http_buffered_trace");
        var req = buffered.GetProperty("request");
        Assert.Equal("yes", HeaderValue(req, "x-tap"));
        Assert.Equal("POST", HeaderValue(req, ":method"));
        Assert.Equal("/tapped?q=1", HeaderValue(req, ":path"));
        Assert.NotNull(HeaderValue(req, ":authority"));
        Assert.Equal("01234567", Encoding.UTF8.GetString(req.GetProperty("body").GetProperty("as_bytes").GetBytesFromBase64()));
        Assert.True(req.GetProperty("body").GetProperty("truncated").GetBoolean());
        Assert.Equal(0, req.GetProperty("trailers").GetArrayLength());

        var resp = buffered.GetProperty("response");
        Assert.Equal("200", HeaderValue(resp, ":status"));
        Assert.Equal("seen", HeaderValue(resp, "x-upstream"));
        Assert.Equal("hello", Encoding.UTF8.GetString(resp.GetProperty("body").GetProperty("as_bytes").GetBytesFromBase64()));
        Assert.True(resp.GetProperty("body").GetProperty("truncated").GetBoolean());

        // Only the matching stream was written.
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public async Task LegacyMatchConfigOnTheResponseStatusWithBodyAsString()
    {
        var script = new UpstreamScript(UpstreamResponse.Text("fine")).OnPath("/missing", UpstreamResponse.Text("not here") with { Status = 404 });
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        var tap = $$"""
            static_config:
              match_config:
                http_response_headers_match: { headers: [ { name: ":status", string_match: { exact: "404" } } ] }
              output_config:
                sinks:
                - format: JSON_BODY_AS_STRING
                  file_per_tap: { path_prefix: "{{_dir}}/miss" }
            """;
        await using var legate = await InProcessLegate.StartAsync(
            Config(upstream.Port, tap, tapOptions: "record_headers_received_time: true\nrecord_downstream_connection: true"));

        using (var ok = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/present")))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using (var missing = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/missing")))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        var (file, trace) = await WaitForSingleTraceAsync();
        Assert.StartsWith("miss_", Path.GetFileName(file), StringComparison.Ordinal);
        var buffered = trace.GetProperty("http_buffered_trace");
        Assert.Equal("/missing", HeaderValue(buffered.GetProperty("request"), ":path"));
        Assert.False(buffered.GetProperty("request").TryGetProperty("body", out _));
        var body = buffered.GetProperty("response").GetProperty("body");
        Assert.Equal("not here", body.GetProperty("as_string").GetString());
        Assert.False(body.GetProperty("truncated").GetBoolean());
        Assert.Single(Directory.GetFiles(_dir));

        // record_headers_received_time and record_downstream_connection.
        var requestTime = DateTimeOffset.Parse(buffered.GetProperty("request").GetProperty("headers_received_time").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        var responseTime = DateTimeOffset.Parse(buffered.GetProperty("response").GetProperty("headers_received_time").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(responseTime >= requestTime);
        var connection = buffered.GetProperty("downstream_connection");
        Assert.Equal("127.0.0.1", connection.GetProperty("remote_address").GetProperty("socket_address").GetProperty("address").GetString());
        Assert.Equal(
            legate.ListenerEndpoint("ingress").Port,
            connection.GetProperty("local_address").GetProperty("socket_address").GetProperty("port_value").GetInt32());
    }

    [Fact]
    public async Task TapEnabledFollowsItsRuntimeKey()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var tap = $$"""
            static_config:
              match: { any_match: true }
              tap_enabled: { default_value: { numerator: 0 }, runtime_key: tap_on }
              output_config:
                sinks:
                - file_per_tap: { path_prefix: "{{_dir}}/rt" }
            """;
        var runtime = """
            layered_runtime:
              layers:
              - { name: static, static_layer: { tap_on: 0 } }
              - { name: admin, admin_layer: {} }
            """;
        await using var legate = await InProcessLegate.StartAsync(runtime + "\n" + Config(upstream.Port, tap, admin: true));

        // 0%: not tapped. Then the admin layer turns it to 100%.
        using (var off = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/off")))
        {
            Assert.Equal(HttpStatusCode.OK, off.StatusCode);
        }

        using (var modify = await legate.Http.PostAsync(new Uri(legate.AdminUri, "/runtime_modify?tap_on=100"), null))
        {
            Assert.Equal(HttpStatusCode.OK, modify.StatusCode);
        }

        using (var on = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/on")))
        {
            Assert.Equal(HttpStatusCode.OK, on.StatusCode);
        }

        var (_, trace) = await WaitForSingleTraceAsync();
        Assert.Equal("/on", HeaderValue(trace.GetProperty("http_buffered_trace").GetProperty("request"), ":path"));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public async Task ProtoTextWritesTheTraceInProtobufTextFormat()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var tap = $$"""
            static_config:
              match: { http_request_headers_match: { headers: [ { name: x-tap, string_match: { exact: "yes" } } ] } }
              output_config:
                max_buffered_tx_bytes: 1
                sinks:
                - { format: PROTO_TEXT, file_per_tap: { path_prefix: "{{_dir}}/tap" } }
            """;
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, tap));

        using var request = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("ingress", "/text"))
        {
            Content = new ByteArrayContent([.. "a\n\"q\"\\ "u8, 0xC3, 0xA9, 0x01]),
        };
        request.Headers.Add("x-tap", "yes");
        using (var tapped = await legate.Http.SendAsync(request))
        {
            Assert.Equal("ok", await tapped.Content.ReadAsStringAsync());
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string text;
        while (true)
        {
            // Written on the thread pool: wait until the file is complete (its last line closes the trace).
            var files = Directory.GetFiles(_dir);
            if (files.Length == 1 && (text = await File.ReadAllTextAsync(files[0], timeout.Token)).EndsWith("}\n}\n", StringComparison.Ordinal))
            {
                Assert.Matches(new Regex(@"^tap_\d+\.pb_text$"), Path.GetFileName(files[0]));
                break;
            }

            await Task.Delay(20, timeout.Token);
        }

        Assert.StartsWith("http_buffered_trace {\n  request {\n    headers {\n      key: \":authority\"\n", text, StringComparison.Ordinal);
        Assert.Contains("      key: \":path\"\n      value: \"/text\"\n", text, StringComparison.Ordinal);
        // Bytes C-escaped as protobuf's printer does: quotes, backslash, newline, octal for the rest.
        Assert.Contains("    body {\n      as_bytes: \"a\\n\\\"q\\\"\\\\ \\303\\251\\001\"\n    }\n", text, StringComparison.Ordinal);
        // The response body was cut at one byte: truncated (a bool) is printed only when true.
        Assert.Contains("    body {\n      as_bytes: \"o\"\n      truncated: true\n    }\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("truncated: false", text, StringComparison.Ordinal);
        // Every nested message is closed (the C# runtime has no text-format parser to read it back).
        Assert.Equal(text.Count(c => c == '{'), text.Count(c => c == '}'));
    }

    [Theory]
    [InlineData("match: { any_match: true }\n  output_config: { sinks: [ { streaming_admin: {} } ] }", "Error: Specifying admin streaming output without configuring admin.")]
    [InlineData("match: { any_match: true }\n  output_config: { sinks: [ { buffered_admin: { max_traces: 1 } } ] }", "Output sink type BufferedAdmin requires that the admin output will be configured via admin")]
    [InlineData("match: { http_request_generic_body_match: { patterns: [ { string_match: x } ] } }\n  output_config: { sinks: [ { file_per_tap: { path_prefix: /tmp/x } } ] }", "generic body matching is not supported yet")]
    [InlineData("match: { any_match: true }\n  output_config: { sinks: [ { file_per_tap: { path_prefix: /tmp/x } }, { file_per_tap: { path_prefix: /tmp/y } } ] }", "value must contain exactly 1 item(s)")]
    [InlineData("output_config: { sinks: [ { file_per_tap: { path_prefix: /tmp/x } } ] }", "neither match nor match_config is set")]
    public void BadStaticConfigIsALoadError(string staticConfig, string message)
    {
        var ex = Assert.Throws<ConfigException>(() =>
        {
            var options = Legate.Server.CommandLineParser.Parse(["--config-yaml", Config(1, "static_config:\n  " + staticConfig)]);
            var loaded = BootstrapLoader.Load(options.ConfigPath, options.ConfigYaml);
            using var logs = Legate.Server.Logging.LogManager.Create(options, new CapturingLogSink());
            _ = Legate.Server.LegateServer.Create(options, loaded, logs);
        });

        Assert.Contains(ex.Errors, e => e.Message.Contains(message, StringComparison.Ordinal) && e.Path.Contains("common_config.static_config", StringComparison.Ordinal));
    }

    private async Task<(string File, JsonElement Trace)> WaitForSingleTraceAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            // Files are written on the thread pool: wait until one is there and complete.
            var files = Directory.GetFiles(_dir);
            if (files.Length > 0)
            {
                try
                {
                    using var document = JsonDocument.Parse(await File.ReadAllTextAsync(files[0], timeout.Token));
                    return (files[0], document.RootElement.Clone());
                }
                catch (JsonException)
                {
                }
            }

            await Task.Delay(20, timeout.Token);
        }
    }

    internal static string? HeaderValue(JsonElement message, string name)
    {
        foreach (var header in message.GetProperty("headers").EnumerateArray())
        {
            if (header.GetProperty("key").GetString() == name)
            {
                return header.GetProperty("value").GetString();
            }
        }

        return null;
    }

    internal static string Config(int upstreamPort, string commonConfig, bool admin = false, string tapOptions = "") => $$"""
        {{(admin ? TestConfigs.Admin() : string.Empty)}}
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
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: backend }
                  http_filters:
                  - name: envoy.filters.http.tap
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.tap.v3.Tap
                      common_config:
        {{Indent(commonConfig, 16)}}
        {{Indent(tapOptions, 14)}}
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

    private static string Indent(string text, int spaces)
    {
        var pad = new string(' ', spaces);
        return string.Join('\n', text.Split('\n').Select(line => pad + line));
    }
}
