using System.Net;
using System.Text;
using System.Text.Json;
using Legate.Tests.Harness;

namespace Legate.Tests.Extensions.Filters.Http.Tap;

/// <summary>
/// <c>POST /tap</c> on the admin: a tap filter with <c>admin_config</c> taps only while an admin
/// client holds a streaming /tap response open, which carries one JSON trace per matching stream.
/// </summary>
public sealed class TapAdminTests
{
    private const string TapRequest = """
        config_id: demo
        tap_config:
          match:
            http_request_headers_match: { headers: [ { name: x-tap, string_match: { exact: "yes" } } ] }
          output_config:
            sinks:
            - streaming_admin: {}
        """;

    [Fact]
    public async Task StreamsOneTracePerMatchingRequestUntilTheAdminClientLeaves()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("upstream says hi"));
        await using var legate = await InProcessLegate.StartAsync(TapFilterTests.Config(upstream.Port, "admin_config: { config_id: demo }", admin: true));
        var tapUri = new Uri(legate.AdminUri, "/tap");

        // Before any session nothing is tapped (and nothing breaks).
        await SendAsync(legate, "/before", tap: true);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var adminClient = TestHttp.CreateClient();
        using var post = new HttpRequestMessage(HttpMethod.Post, tapUri) { Content = new StringContent(TapRequest) };
        var session = await adminClient.SendAsync(post, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal(HttpStatusCode.OK, session.StatusCode);
        var reader = new StreamReader(await session.Content.ReadAsStreamAsync(timeout.Token));

        // A second session is refused while this one is attached.
        using (var second = await legate.Http.PostAsync(tapUri, new StringContent(TapRequest)))
        {
            Assert.Equal(HttpStatusCode.BadRequest, second.StatusCode);
            Assert.Equal("An attached /tap admin stream already exists. Detach it.", await second.Content.ReadAsStringAsync());
        }

        // The non-matching request comes first: the first trace read must be the matching one.
        await SendAsync(legate, "/not-tapped", tap: false);
        await SendAsync(legate, "/first", tap: true);
        await SendAsync(legate, "/second", tap: true, body: "request body");

        var first = await ReadTraceAsync(reader, timeout.Token);
        var second2 = await ReadTraceAsync(reader, timeout.Token);
        Assert.Equal("/first", TapFilterTests.HeaderValue(first.GetProperty("http_buffered_trace").GetProperty("request"), ":path"));
        var secondTrace = second2.GetProperty("http_buffered_trace");
        Assert.Equal("/second", TapFilterTests.HeaderValue(secondTrace.GetProperty("request"), ":path"));
        Assert.Equal("request body", Encoding.UTF8.GetString(secondTrace.GetProperty("request").GetProperty("body").GetProperty("as_bytes").GetBytesFromBase64()));
        Assert.Equal("200", TapFilterTests.HeaderValue(secondTrace.GetProperty("response"), ":status"));
        Assert.Equal(
            "upstream says hi",
            Encoding.UTF8.GetString(secondTrace.GetProperty("response").GetProperty("body").GetProperty("as_bytes").GetBytesFromBase64()));

        // The admin client leaves: the tap is detached and a new session can attach.
        session.Dispose();
        adminClient.Dispose();
        HttpResponseMessage? again = null;
        var againClient = TestHttp.CreateClient();
        while (again is null)
        {
            using var retry = new HttpRequestMessage(HttpMethod.Post, tapUri) { Content = new StringContent(TapRequest) };
            var response = await againClient.SendAsync(retry, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                again = response;
            }
            else
            {
                Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
                response.Dispose();
                await Task.Delay(20, timeout.Token);
            }
        }

        again.Dispose();
        againClient.Dispose();
    }

    [Fact]
    public async Task ServerShutdownEndsAnOpenSession()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var legate = await InProcessLegate.StartAsync(TapFilterTests.Config(upstream.Port, "admin_config: { config_id: demo }", admin: true));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var adminClient = TestHttp.CreateClient();
        using var post = new HttpRequestMessage(HttpMethod.Post, new Uri(legate.AdminUri, "/tap")) { Content = new StringContent(TapRequest) };
        using var session = await adminClient.SendAsync(post, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal(HttpStatusCode.OK, session.StatusCode);
        using var reader = new StreamReader(await session.Content.ReadAsStreamAsync(timeout.Token));

        // The graceful stop ends the streaming response instead of waiting the drain time for it.
        var stop = legate.DisposeAsync().AsTask();
        Assert.Equal(string.Empty, await reader.ReadToEndAsync(timeout.Token));
        await stop.WaitAsync(timeout.Token);
    }

    [Fact]
    public async Task ErrorsAreAnsweredAsEnvoyDoes()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(TapFilterTests.Config(upstream.Port, "admin_config: { config_id: demo }", admin: true));
        var tapUri = new Uri(legate.AdminUri, "/tap");

        using (var get = await legate.Http.GetAsync(tapUri))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
            Assert.Equal("Method GET not allowed, POST required.", await get.Content.ReadAsStringAsync());
        }

        await AssertBadRequestAsync(legate, tapUri, string.Empty, "/tap requires a JSON/YAML body");
        await AssertBadRequestAsync(
            legate, tapUri, TapRequest.Replace("config_id: demo", "config_id: nope", StringComparison.Ordinal), "Unknown config id 'nope'. No extension has registered with this id.");
        await AssertBadRequestAsync(
            legate,
            tapUri,
            "{\"config_id\": \"demo\", \"tap_config\": {\"match\": {\"any_match\": true}, \"output_config\": {\"sinks\": [{\"streaming_grpc\": {\"grpc_service\": {\"envoy_grpc\": {\"cluster_name\": \"x\"}}}}]}}}",
            "tap_config.output_config.sinks[0].streaming_grpc: the streaming_grpc tap sink is not supported yet");
        await AssertBadRequestAsync(
            legate,
            tapUri,
            TapRequest.Replace("- streaming_admin: {}", "- { format: PROTO_BINARY, streaming_admin: {} }", StringComparison.Ordinal),
            "tap_config.output_config.sinks[0].format: streaming_admin output supports only JSON_BODY_AS_BYTES and JSON_BODY_AS_STRING");

        using var bad = await legate.Http.PostAsync(tapUri, new StringContent("config_id: demo\nno_such_field: 1\n"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("no_such_field", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BufferedAdminAnswersMaxTracesThenEndsAndDetaches()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("upstream says hi"));
        await using var legate = await InProcessLegate.StartAsync(TapFilterTests.Config(upstream.Port, "admin_config: { config_id: demo }", admin: true));
        var request = TapRequest.Replace("- streaming_admin: {}", "- { format: PROTO_BINARY_LENGTH_DELIMITED, buffered_admin: { max_traces: 2 } }", StringComparison.Ordinal);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var adminClient = TestHttp.CreateClient();
        using var post = new HttpRequestMessage(HttpMethod.Post, new Uri(legate.AdminUri, "/tap")) { Content = new StringContent(request) };
        using var session = await adminClient.SendAsync(post, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal(HttpStatusCode.OK, session.StatusCode);
        var body = session.Content.ReadAsByteArrayAsync(timeout.Token);

        // Nothing is written until the buffer is full; the third matching stream is not collected.
        await SendAsync(legate, "/one", tap: true);
        await SendAsync(legate, "/two", tap: true);
        var bytes = await body;
        using var stream = new MemoryStream(bytes);
        var paths = new List<string>();
        while (stream.Position < stream.Length)
        {
            var trace = Envoy.Data.Tap.V3.TraceWrapper.Parser.ParseDelimitedFrom(stream);
            paths.Add(trace.HttpBufferedTrace.Request.Headers.Single(h => h.Key == ":path").Value);
        }

        Assert.Equal(["/one", "/two"], paths);

        // The response ended, so the session is detached: a new one attaches.
        await InProcessLegate.WaitUntilAsync(() => !legate.Server.Taps!.IsAttached, "the buffered session detached");
        await SendAsync(legate, "/three", tap: true);
    }

    [Fact]
    public async Task BufferedAdminEndsAtItsTimeoutWithWhatItHas()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(TapFilterTests.Config(upstream.Port, "admin_config: { config_id: demo }", admin: true));
        var request = TapRequest.Replace("- streaming_admin: {}", "- buffered_admin: { max_traces: 5, timeout: 0.2s }", StringComparison.Ordinal);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // No stream matches: at the timeout the response ends empty, as Envoy's flush of an empty buffer.
        using var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "/tap"), new StringContent(request), timeout.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(string.Empty, await response.Content.ReadAsStringAsync(timeout.Token));

        await AssertBadRequestAsync(
            legate,
            new Uri(legate.AdminUri, "/tap"),
            TapRequest.Replace("- streaming_admin: {}", "- { format: PROTO_BINARY, buffered_admin: { max_traces: 1 } }", StringComparison.Ordinal),
            "tap_config.output_config.sinks[0].format: buffered admin output only supports JSON or length delimited proto binary formats");
    }

    [Fact]
    public async Task TapExistsOnlyWhileAnAdminConfiguredTapFilterIsLoaded()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        // A static tap filter does not add /tap; an admin_config one does (Envoy's AdminHandler singleton).
        var staticOnly = TapFilterTests.Config(upstream.Port, "static_config: { match: { any_match: true }, output_config: { sinks: [ { file_per_tap: { path_prefix: /tmp/legate-never } } ] } }", admin: true);
        await using (var legate = await InProcessLegate.StartAsync(staticOnly))
        {
            using var post = await legate.Http.PostAsync(new Uri(legate.AdminUri, "/tap"), new StringContent(TapRequest));
            Assert.Equal(HttpStatusCode.NotFound, post.StatusCode);
            Assert.StartsWith("invalid path. admin commands are:\n", await post.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.DoesNotContain("/tap", await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/help")), StringComparison.Ordinal);
            Assert.DoesNotContain("'tap'", await legate.Http.GetStringAsync(legate.AdminUri), StringComparison.Ordinal);
        }

        await using (var legate = await InProcessLegate.StartAsync(TapFilterTests.Config(upstream.Port, "admin_config: { config_id: demo }", admin: true)))
        {
            Assert.Contains("  /tap (POST): tap filter control\n", await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/help")), StringComparison.Ordinal);
            Assert.Contains("<form action='tap' method='post'>", await legate.Http.GetStringAsync(legate.AdminUri), StringComparison.Ordinal);
        }
    }

    private static async Task AssertBadRequestAsync(InProcessLegate legate, Uri tapUri, string body, string message)
    {
        using var response = await legate.Http.PostAsync(tapUri, new StringContent(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(message, await response.Content.ReadAsStringAsync());
    }

    private static async Task SendAsync(InProcessLegate legate, string path, bool tap, string? body = null)
    {
        using var request = new HttpRequestMessage(body is null ? HttpMethod.Get : HttpMethod.Post, legate.ListenerUri("ingress", path));
        if (body is not null)
        {
            request.Content = new StringContent(body);
        }

        if (tap)
        {
            request.Headers.Add("x-tap", "yes");
        }

        using var response = await legate.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await response.Content.ReadAsStringAsync();
    }

    /// <summary>One pretty-printed trace: its last line is the top-level closing brace.</summary>
    private static async Task<JsonElement> ReadTraceAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        while (true)
        {
            var line = await reader.ReadLineAsync(cancellationToken) ?? throw new InvalidOperationException("the /tap stream ended: " + text);
            text.Append(line).Append('\n');
            if (line == "}")
            {
                using var document = JsonDocument.Parse(text.ToString());
                return document.RootElement.Clone();
            }
        }
    }
}
