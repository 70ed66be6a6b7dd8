using System.Globalization;
using System.Net;
using System.Text.Json;
using Legate.Tests.Harness;

namespace Legate.Tests.Tracing;

/// <summary>
/// <c>envoy.tracers.zipkin</c> end to end: a real backend sees the B3 headers, a real fake
/// collector (a scripted upstream answering 202) receives the spans as Zipkin v2 JSON.
/// </summary>
public sealed class ZipkinTracerTests
{
    private const string Node = "node: { id: node-7, cluster: front-proxy, locality: { zone: zone-a } }\n";

    /// <summary>Reports every span at once (tracing.zipkin.min_flush_spans: 1) unless a test wants batching.</summary>
    private static string Runtime(string layer = "tracing.zipkin.min_flush_spans: 1") =>
        "layered_runtime:\n  layers:\n  - name: static\n    static_layer: { " + layer + " }\n";

    private static string Zipkin(string extraZipkin = "", string extraTracing = "") =>
        "tracing:\n" +
        "  provider:\n" +
        "    name: envoy.tracers.zipkin\n" +
        "    typed_config:\n" +
        "      \"@type\": type.googleapis.com/envoy.config.trace.v3.ZipkinConfig\n" +
        "      collector_cluster: zipkin\n" +
        "      collector_endpoint: /api/v2/spans\n" +
        "      collector_endpoint_version: HTTP_JSON\n" +
        (extraZipkin.Length > 0 ? "      " + extraZipkin.Replace("\n", "\n      ", StringComparison.Ordinal) + "\n" : string.Empty) +
        (extraTracing.Length > 0 ? "  " + extraTracing.Replace("\n", "\n  ", StringComparison.Ordinal) + "\n" : string.Empty);

    private static string CollectorCluster(int port) =>
        "- name: zipkin\n" +
        "  connect_timeout: 5s\n" +
        "  load_assignment:\n" +
        "    cluster_name: zipkin\n" +
        "    endpoints:\n" +
        $"    - lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port.ToString(CultureInfo.InvariantCulture)} }} }} }} }}]\n";

    private static string Config(int backendPort, int collectorPort, string extraZipkin = "", string extraTracing = "", string runtime = "", string listener = "", string routes = "", string router = "") =>
        Node + (runtime.Length > 0 ? runtime : Runtime()) + new ProxyConfig(backendPort)
        {
            Hcm = Zipkin(extraZipkin, extraTracing),
            Clusters = CollectorCluster(collectorPort),
            Listener = listener,
            Routes = routes,
            Router = router,
        }.Build();

    private static async Task<(ScriptedUpstream Backend, ScriptedUpstream Collector)> StartUpstreamsAsync(UpstreamResponse? backend = null) =>
        (await ScriptedUpstream.StartAsync(backend ?? UpstreamResponse.Text("hello")), await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty, 202)));

    /// <summary>Every span the collector received so far, in arrival order.</summary>
    private static List<JsonElement> Spans(ScriptedUpstream collector)
    {
        var spans = new List<JsonElement>();
        foreach (var request in collector.Log.Requests)
        {
            Assert.Equal("POST", request.Method);
            Assert.Equal("/api/v2/spans", request.RawTarget);
            Assert.Equal("application/json", request.Header("content-type"));
            using var json = JsonDocument.Parse(request.Body);
            foreach (var span in json.RootElement.EnumerateArray())
            {
                spans.Add(span.Clone());
            }
        }

        return spans;
    }

    private static async Task<List<JsonElement>> WaitForSpansAsync(ScriptedUpstream collector, int count)
    {
        await InProcessLegate.WaitUntilAsync(() => Spans(collector).Count >= count, $"{count} span(s) at the collector");
        return Spans(collector);
    }

    private static string Tag(JsonElement span, string name) => span.GetProperty("tags").GetProperty(name).GetString()!;

    private static bool HasTag(JsonElement span, string name) => span.TryGetProperty("tags", out var tags) && tags.TryGetProperty(name, out _);

    [Fact]
    public async Task ATrailersOnlyGrpcErrorTagsTheSpanWithItsStatusAndError()
    {
        // gRPC's trailers-only answer (grpc-status in the response head) over HTTP/1.1: Envoy reads the
        // status from the headers when no trailers carry one.
        var (backend, collector) = await StartUpstreamsAsync(UpstreamResponse.Text(string.Empty)
            .WithHeader("content-type", "application/grpc").WithHeader("grpc-status", "5").WithHeader("grpc-message", "no such cart"));
        await using (backend)
        await using (collector)
        {
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port));
            using var request = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("web", "/shop.Cart/Get"))
            {
                Content = new ByteArrayContent([0, 0, 0, 0, 0]) { Headers = { { "content-type", "application/grpc" } } },
            };
            using var response = await legate.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            Assert.Equal("200", Tag(span, "http.status_code"));
            Assert.Equal("5", Tag(span, "grpc.status_code"));
            Assert.Equal("no such cart", Tag(span, "grpc.message"));
            Assert.Equal("true", Tag(span, "error"));
            Assert.Equal("/shop.Cart/Get", Tag(span, "grpc.path"));
            Assert.Equal("application/grpc", Tag(span, "grpc.content_type"));
            Assert.False(HasTag(span, "grpc.timeout"));
        }
    }

    [Fact]
    public async Task APlainRequestGetsNoGrpcTags()
    {
        var (backend, collector) = await StartUpstreamsAsync(UpstreamResponse.Text("fine").WithHeader("grpc-status", "0"));
        await using (backend)
        await using (collector)
        {
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port));
            await legate.Http.GetStringAsync(legate.ListenerUri("web", "/plain"));

            // Not a gRPC request: no request tags; the response's grpc-status is still tagged (Envoy looks
            // at the response alone), and OK is no error.
            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            Assert.False(HasTag(span, "grpc.path"));
            Assert.False(HasTag(span, "grpc.content_type"));
            Assert.Equal("0", Tag(span, "grpc.status_code"));
            Assert.False(HasTag(span, "error"));
        }
    }

    [Fact]
    public async Task ARootSpanIsReportedWithEnvoysTagsAndItsContextGoesUpstream()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port));
            var before = DateTimeOffset.UtcNow;
            using var request = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("web", "/orders/42?x=1")) { Content = new StringContent("12345") };
            request.Headers.UserAgent.ParseAdd("tester/1.0");
            using var response = await legate.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

            var seen = (await backend.Log.WaitForRequestsAsync(1))[0];
            var traceId = seen.Header("x-b3-traceid")!;
            var spanId = seen.Header("x-b3-spanid")!;
            Assert.Matches("^[0-9a-f]{16}$", traceId);
            Assert.Equal(traceId, spanId);
            Assert.Null(seen.Header("x-b3-parentspanid"));
            Assert.Equal("1", seen.Header("x-b3-sampled"));

            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            Assert.Equal(traceId, span.GetProperty("traceId").GetString());
            Assert.Equal(spanId, span.GetProperty("id").GetString());
            Assert.False(span.TryGetProperty("parentId", out _));
            Assert.Equal("SERVER", span.GetProperty("kind").GetString());

            // Zipkin spans are named after the request's host until a decorator renames them.
            var authority = legate.ListenerEndpoint("web").ToString();
            Assert.Equal(authority, span.GetProperty("name").GetString());
            Assert.Equal("front-proxy", span.GetProperty("localEndpoint").GetProperty("serviceName").GetString());
            var timestamp = DateTimeOffset.FromUnixTimeMilliseconds(span.GetProperty("timestamp").GetInt64() / 1000);
            Assert.InRange(timestamp, before.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
            Assert.True(span.GetProperty("duration").GetInt64() > 0);

            Assert.Equal("proxy", Tag(span, "component"));
            Assert.Equal("node-7", Tag(span, "node_id"));
            Assert.Equal("zone-a", Tag(span, "zone"));
            Assert.Equal(seen.Header("x-request-id"), Tag(span, "guid:x-request-id"));
            Assert.Equal($"http://{authority}/orders/42?x=1", Tag(span, "http.url"));
            Assert.Equal("POST", Tag(span, "http.method"));
            Assert.Equal("HTTP/1.1", Tag(span, "http.protocol"));
            Assert.Equal("200", Tag(span, "http.status_code"));
            Assert.Equal("-", Tag(span, "response_flags"));
            Assert.Equal("5", Tag(span, "request_size"));
            Assert.Equal("5", Tag(span, "response_size"));
            Assert.Equal("backend", Tag(span, "upstream_cluster"));
            Assert.Equal($"127.0.0.1:{backend.Port}", Tag(span, "upstream_address"));
            Assert.Equal("127.0.0.1", Tag(span, "peer.address"));
            Assert.Equal("tester/1.0", Tag(span, "user_agent"));
            Assert.Equal("-", Tag(span, "downstream_cluster"));
            Assert.False(HasTag(span, "error"));
            await InProcessLegate.WaitUntilAsync(() => legate.Counter("tracing.zipkin.reports_sent") == 1, "reports_sent");
            Assert.Equal(1, legate.Counter("tracing.zipkin.spans_sent"));
        }
    }

    [Fact]
    public async Task AnIncomingB3ContextIsSharedByTheServerSpan()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, "trace_id_128bit: true"));
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
            request.Headers.Add("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124");
            request.Headers.Add("x-b3-spanid", "a2fb4a1d1a96d312");
            request.Headers.Add("x-b3-parentspanid", "0020000000000001");
            request.Headers.Add("x-b3-sampled", "1");
            using var response = await legate.Http.SendAsync(request);

            var seen = (await backend.Log.WaitForRequestsAsync(1))[0];
            Assert.Equal("463ac35c9f6413ad48485a3953bb6124", seen.Header("x-b3-traceid"));
            Assert.Equal("a2fb4a1d1a96d312", seen.Header("x-b3-spanid"));
            Assert.Equal("0020000000000001", seen.Header("x-b3-parentspanid"));
            Assert.Equal("1", seen.Header("x-b3-sampled"));

            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            Assert.Equal("463ac35c9f6413ad48485a3953bb6124", span.GetProperty("traceId").GetString());
            Assert.Equal("a2fb4a1d1a96d312", span.GetProperty("id").GetString());
            Assert.Equal("0020000000000001", span.GetProperty("parentId").GetString());
            Assert.True(span.GetProperty("shared").GetBoolean());
            Assert.Equal("SERVER", span.GetProperty("kind").GetString());
        }
    }

    [Fact]
    public async Task WithoutSharedSpanContextTheServerSpanIsAChildOfTheCaller()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, "shared_span_context: false"));
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
            request.Headers.Add("b3", "0000000000000abc-00000000000000de-1");
            using var response = await legate.Http.SendAsync(request);

            var seen = (await backend.Log.WaitForRequestsAsync(1))[0];
            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            Assert.Equal("0000000000000abc", span.GetProperty("traceId").GetString());
            Assert.Equal("00000000000000de", span.GetProperty("parentId").GetString());
            var id = span.GetProperty("id").GetString();
            Assert.NotEqual("00000000000000de", id);
            Assert.False(span.TryGetProperty("shared", out _));
            Assert.Equal(id, seen.Header("x-b3-spanid"));
            Assert.Equal("00000000000000de", seen.Header("x-b3-parentspanid"));
            Assert.Equal("0000000000000abc", seen.Header("x-b3-traceid"));
        }
    }

    [Fact]
    public async Task SpawnUpstreamSpanAddsAClientSpanPerAttempt()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, extraTracing: "spawn_upstream_span: true"));
            await legate.Http.GetStringAsync(legate.ListenerUri("web", "/a"));

            var seen = (await backend.Log.WaitForRequestsAsync(1))[0];
            var spans = await WaitForSpansAsync(collector, 2);
            var client = Assert.Single(spans, s => s.GetProperty("kind").GetString() == "CLIENT");
            var server = Assert.Single(spans, s => s.GetProperty("kind").GetString() == "SERVER");
            Assert.Equal("router backend egress", client.GetProperty("name").GetString());
            Assert.Equal(server.GetProperty("id").GetString(), client.GetProperty("parentId").GetString());
            Assert.Equal(server.GetProperty("traceId").GetString(), client.GetProperty("traceId").GetString());

            // The upstream continues from the client span.
            Assert.Equal(client.GetProperty("id").GetString(), seen.Header("x-b3-spanid"));
            Assert.Equal(server.GetProperty("id").GetString(), seen.Header("x-b3-parentspanid"));
            Assert.Equal("proxy", Tag(client, "component"));
            Assert.Equal("backend", Tag(client, "upstream_cluster"));
            Assert.Equal("200", Tag(client, "http.status_code"));
            Assert.Equal("HTTP/1.1", Tag(client, "http.protocol"));
            Assert.Equal($"127.0.0.1:{backend.Port}", Tag(client, "upstream_address"));
        }
    }

    [Fact]
    public async Task EachRetriedAttemptHasItsOwnClientSpan()
    {
        await using var backend = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("hello")).OnPath("/flaky", UpstreamResponse.Text("busy", 503), times: 1));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty, 202));
        var yaml = Node + Runtime() + new ProxyConfig(backend.Port)
        {
            Hcm = Zipkin(extraTracing: "spawn_upstream_span: true"),
            Clusters = CollectorCluster(collector.Port),
            Route = "retry_policy: { retry_on: 5xx, num_retries: 1 }",
        }.Build();
        await using var legate = await InProcessLegate.StartAsync(yaml);
        Assert.Equal("hello", await legate.Http.GetStringAsync(legate.ListenerUri("web", "/flaky")));

        var seen = await backend.Log.WaitForRequestsAsync(2);
        var spans = await WaitForSpansAsync(collector, 3);
        var server = Assert.Single(spans, s => s.GetProperty("kind").GetString() == "SERVER");
        var clients = spans.Where(s => s.GetProperty("kind").GetString() == "CLIENT").ToList();
        Assert.Equal(2, clients.Count);
        Assert.All(clients, c => Assert.Equal(server.GetProperty("id").GetString(), c.GetProperty("parentId").GetString()));
        var first = Assert.Single(clients, c => !HasTag(c, "retry.count"));
        var retry = Assert.Single(clients, c => HasTag(c, "retry.count"));
        Assert.Equal("1", Tag(retry, "retry.count"));
        Assert.Equal("200", Tag(retry, "http.status_code"));
        Assert.Equal("true", Tag(first, "error"));

        // Each attempt carried its own span's context upstream.
        Assert.Equal(first.GetProperty("id").GetString(), seen[0].Header("x-b3-spanid"));
        Assert.Equal(retry.GetProperty("id").GetString(), seen[1].Header("x-b3-spanid"));
        Assert.Equal("200", Tag(server, "http.status_code"));
    }

    [Fact]
    public async Task TheRoutersStartChildSpanSpawnsTheUpstreamSpanToo()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, router: "start_child_span: true"));
            await legate.Http.GetStringAsync(legate.ListenerUri("web", "/a"));
            var spans = await WaitForSpansAsync(collector, 2);
            Assert.Contains(spans, s => s.GetProperty("name").GetString() == "router backend egress" && s.GetProperty("kind").GetString() == "CLIENT");
        }
    }

    [Fact]
    public async Task AnUnsampledRequestPropagatesItsDecisionAndReportsNothing()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            await using (var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, extraTracing: "random_sampling: { value: 0 }")))
            {
                await legate.Http.GetStringAsync(legate.ListenerUri("web", "/a"));
                using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/b"));
                request.Headers.Add("x-b3-traceid", "0000000000000abc");
                request.Headers.Add("x-b3-spanid", "00000000000000de");
                request.Headers.Add("x-b3-sampled", "0");
                await legate.Http.SendAsync(request);
                var seen = await backend.Log.WaitForRequestsAsync(2);
                Assert.All(seen, r => Assert.Equal("0", r.Header("x-b3-sampled")));
                Assert.NotNull(seen[0].Header("x-b3-traceid"));
            }

            // Stopping the server flushes what was buffered: nothing was.
            Assert.Empty(collector.Log.Requests);
        }
    }

    [Fact]
    public async Task APropagatedSampledFlagOverridesTheLocalDecision()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, extraTracing: "random_sampling: { value: 0 }"));
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/b"));
            request.Headers.Add("b3", "1");
            await legate.Http.SendAsync(request);
            Assert.Single(await WaitForSpansAsync(collector, 1));
        }
    }

    [Fact]
    public async Task AFailedRequestIsTaggedAsAnError()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (collector)
        {
            var port = backend.Port;
            await backend.DisposeAsync();
            await using var legate = await InProcessLegate.StartAsync(Config(port, collector.Port));
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/down"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            Assert.Equal("503", Tag(span, "http.status_code"));
            Assert.Equal("UF", Tag(span, "response_flags"));
            Assert.Equal("true", Tag(span, "error"));
        }
    }

    [Fact]
    public async Task CustomTagsAndTheMaxPathTagLength()
    {
        Environment.SetEnvironmentVariable("LEGATE_TEST_TRACE_REGION", "eu-west");
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            var tracing = "max_path_tag_length: 4\n" +
                "custom_tags:\n" +
                "- { tag: team, literal: { value: payments } }\n" +
                "- { tag: region, environment: { name: LEGATE_TEST_TRACE_REGION } }\n" +
                "- { tag: missing_env, environment: { name: LEGATE_TEST_TRACE_UNSET_VARIABLE, default_value: none } }\n" +
                "- { tag: tenant, request_header: { name: X-Tenant } }\n" +
                "- { tag: absent_header, request_header: { name: x-absent, default_value: fallback } }\n" +
                "- { tag: empty_header, request_header: { name: x-also-absent } }";
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, extraTracing: tracing));
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/abcdefgh"));
            request.Headers.Add("x-tenant", "acme");
            await legate.Http.SendAsync(request);
            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            Assert.Equal("payments", Tag(span, "team"));
            Assert.Equal("eu-west", Tag(span, "region"));
            Assert.Equal("none", Tag(span, "missing_env"));
            Assert.Equal("acme", Tag(span, "tenant"));
            Assert.Equal("fallback", Tag(span, "absent_header"));
            Assert.False(HasTag(span, "empty_header"));
            Assert.Equal($"http://{legate.ListenerEndpoint("web")}/abc", Tag(span, "http.url"));
        }
    }

    [Fact]
    public async Task TheRouteDecoratorNamesTheSpanAndGoesBackToTheCaller()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            var routes = "- match: { prefix: \"/decorated\" }\n  route: { cluster: backend }\n  decorator: { operation: checkout }";
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, routes: routes));
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/decorated"));
            Assert.Equal("checkout", response.Headers.GetValues("x-envoy-decorator-operation").Single());

            // An ingress request's x-envoy-decorator-operation renames the span and stops here.
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/other"));
            request.Headers.Add("x-envoy-decorator-operation", "callerOp");
            using var second = await legate.Http.SendAsync(request);
            var seen = await backend.Log.WaitForRequestsAsync(2);
            Assert.All(seen, r => Assert.Null(r.Header("x-envoy-decorator-operation")));
            var spans = await WaitForSpansAsync(collector, 2);
            Assert.Contains(spans, s => s.GetProperty("name").GetString() == "checkout");
            Assert.Contains(spans, s => s.GetProperty("name").GetString() == "callerOp");
        }
    }

    [Fact]
    public async Task AnEgressListenersSpanIsAClientSpanAndPropagatesTheDecorator()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            var routes = "- match: { prefix: \"/decorated\" }\n  route: { cluster: backend }\n  decorator: { operation: callInventory }";
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, listener: "traffic_direction: OUTBOUND", routes: routes));
            await legate.Http.GetStringAsync(legate.ListenerUri("web", "/decorated"));
            var seen = (await backend.Log.WaitForRequestsAsync(1))[0];
            Assert.Equal("callInventory", seen.Header("x-envoy-decorator-operation"));
            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            Assert.Equal("CLIENT", span.GetProperty("kind").GetString());
            Assert.Equal("callInventory", span.GetProperty("name").GetString());
        }
    }

    [Fact]
    public async Task SpansAreBatchedAndFlushedOnTheTimer()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, runtime: Runtime("tracing.zipkin.min_flush_spans: 100, tracing.zipkin.flush_interval_ms: 200")));
            for (var i = 0; i < 3; i++)
            {
                await legate.Http.GetStringAsync(legate.ListenerUri("web", "/r" + i));
            }

            // Three spans in one or more timer-driven reports (the timer may fire between requests).
            var spans = await WaitForSpansAsync(collector, 3);
            Assert.Equal(3, spans.Count);
            Assert.True(legate.Counter("tracing.zipkin.timer_flushed") >= 1);
            Assert.True(collector.Log.Requests.Count <= 3);
        }
    }

    [Fact]
    public async Task BufferedSpansAreSentOnShutdownWithTheCollectorHostname()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            await using (var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, "collector_hostname: zipkin.example", runtime: Runtime("tracing.zipkin.min_flush_spans: 100, tracing.zipkin.flush_interval_ms: 3600000"))))
            {
                await legate.Http.GetStringAsync(legate.ListenerUri("web", "/a"));
                await legate.Http.GetStringAsync(legate.ListenerUri("web", "/b"));
                Assert.Empty(collector.Log.Requests);
            }

            var report = Assert.Single(collector.Log.Requests);
            Assert.Equal("zipkin.example", report.Header("host"));
            Assert.Equal(2, Spans(collector).Count);
        }
    }

    [Fact]
    public async Task ARouteTracingBlockReplacesTheSamplingAndAddsItsCustomTags()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            var routes =
                "- match: { prefix: \"/quiet\" }\n  route: { cluster: backend }\n  tracing: { random_sampling: { numerator: 0 } }\n" +
                "- match: { prefix: \"/tagged\" }\n  route: { cluster: backend }\n" +
                "  tracing: { custom_tags: [{ tag: team, literal: { value: payments } }, { tag: tier, literal: { value: route } }] }";
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port,
                extraTracing: "random_sampling: { value: 0 }\ncustom_tags: [{ tag: tier, literal: { value: hcm } }, { tag: owner, literal: { value: edge } }]",
                routes: routes));

            // The connection manager samples nothing; /tagged's route block (unset percentages are 100%) samples
            // everything, /quiet's samples nothing, the catch-all keeps the connection manager's 0%.
            foreach (var path in new[] { "/quiet", "/other", "/tagged" })
            {
                using var response = await legate.Http.GetAsync(legate.ListenerUri("web", path));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            var seen = await backend.Log.WaitForRequestsAsync(3);
            string Marker(string path) => seen.Single(r => r.RawTarget == path).Header("x-request-id")!.Substring(14, 1);
            Assert.Equal("4", Marker("/quiet"));
            Assert.Equal("4", Marker("/other"));
            Assert.Equal("9", Marker("/tagged"));
            Assert.Equal("0", seen.Single(r => r.RawTarget == "/quiet").Header("x-b3-sampled"));
            Assert.Equal("1", seen.Single(r => r.RawTarget == "/tagged").Header("x-b3-sampled"));

            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            Assert.EndsWith("/tagged", Tag(span, "http.url"), StringComparison.Ordinal);
            Assert.Equal("payments", Tag(span, "team"));
            Assert.Equal("route", Tag(span, "tier")); // the route's tag wins over the connection manager's
            Assert.Equal("edge", Tag(span, "owner"));
            await InProcessLegate.WaitUntilAsync(() => legate.Counter("tracing.zipkin.spans_sent") == 1, "spans_sent");
        }
    }

    [Fact]
    public async Task AShadowRequestIsTracedAsAMirrorChildSpan()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            var routes =
                "- match: { prefix: \"/mirrored\" }\n  route: { cluster: backend, request_mirror_policies: [{ cluster: backend }] }\n" +
                "- match: { prefix: \"/unsampled-mirror\" }\n  route: { cluster: backend, request_mirror_policies: [{ cluster: backend, trace_sampled: false }] }";
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, routes: routes));
            await legate.Http.GetStringAsync(legate.ListenerUri("web", "/mirrored"));

            var seen = await backend.Log.WaitForRequestsAsync(2);
            var shadow = seen.Single(r => r.Header("host")!.Contains("-shadow", StringComparison.Ordinal));
            var main = seen.Single(r => !ReferenceEquals(r, shadow));
            Assert.Equal(main.Header("x-b3-traceid"), shadow.Header("x-b3-traceid"));
            Assert.Equal(main.Header("x-b3-spanid"), shadow.Header("x-b3-parentspanid"));
            Assert.NotEqual(main.Header("x-b3-spanid"), shadow.Header("x-b3-spanid"));
            Assert.Equal("1", shadow.Header("x-b3-sampled"));

            var spans = await WaitForSpansAsync(collector, 2);
            var mirror = spans.Single(s => s.GetProperty("name").GetString() == "mirror");
            Assert.Equal("CLIENT", mirror.GetProperty("kind").GetString());
            Assert.Equal(shadow.Header("x-b3-spanid"), mirror.GetProperty("id").GetString());
            Assert.Equal(main.Header("x-b3-spanid"), mirror.GetProperty("parentId").GetString());
            Assert.Equal("backend", Tag(mirror, "upstream_cluster"));
            Assert.Equal($"127.0.0.1:{backend.Port}", Tag(mirror, "upstream_address"));
            Assert.Equal("200", Tag(mirror, "http.status_code"));
            Assert.Equal("proxy", Tag(mirror, "component"));

            // trace_sampled: false: the shadow carries an unsampled context and its span is not reported.
            await legate.Http.GetStringAsync(legate.ListenerUri("web", "/unsampled-mirror"));
            var all = await backend.Log.WaitForRequestsAsync(4);
            var unsampled = all.Skip(2).Single(r => r.Header("host")!.Contains("-shadow", StringComparison.Ordinal));
            Assert.Equal("0", unsampled.Header("x-b3-sampled"));
            await InProcessLegate.WaitUntilAsync(() => Spans(collector).Count >= 3, "the second request's span");
            await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_rq_completed") >= 4, "the unsampled shadow to complete");
            Assert.Single(Spans(collector), s => s.GetProperty("name").GetString() == "mirror");
        }
    }

    [Fact]
    public async Task HttpProtoSendsAListOfSpansThatDecodesToTheSameSpan()
    {
        var (backend, collector) = await StartUpstreamsAsync();
        await using (backend)
        await using (collector)
        {
            var yaml = Config(backend.Port, collector.Port, "trace_id_128bit: true")
                .Replace("collector_endpoint_version: HTTP_JSON", "collector_endpoint_version: HTTP_PROTO", StringComparison.Ordinal);
            await using var legate = await InProcessLegate.StartAsync(yaml);
            var before = DateTimeOffset.UtcNow;
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/proto?q=1"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var seen = (await backend.Log.WaitForRequestsAsync(1))[0];

            var request = (await collector.Log.WaitForRequestsAsync(1))[0];
            Assert.Equal("POST", request.Method);
            Assert.Equal("/api/v2/spans", request.RawTarget);
            Assert.Equal("application/x-protobuf", request.Header("content-type"));

            // zipkin.proto3.ListOfSpans { repeated Span spans = 1; }, decoded by field number.
            var list = ProtoFields(request.Body);
            var span = ProtoFields((byte[])Assert.Single(list, f => f.Field == 1).Value);
            byte[] Bytes(int field) => (byte[])span.Single(f => f.Field == field).Value;
            string Text(int field) => System.Text.Encoding.UTF8.GetString(Bytes(field));

            Assert.Equal(16, Bytes(1).Length); // trace_id_128bit: 16 big-endian bytes
            Assert.Equal(seen.Header("x-b3-traceid"), Convert.ToHexStringLower(Bytes(1)));
            Assert.Equal(seen.Header("x-b3-spanid"), Convert.ToHexStringLower(Bytes(3)));
            Assert.DoesNotContain(span, f => f.Field == 2); // a root: no parent_id
            Assert.Equal(2UL, (ulong)span.Single(f => f.Field == 4).Value); // kind SERVER
            Assert.Equal(legate.ListenerEndpoint("web").ToString(), Text(5));
            var timestamp = DateTimeOffset.FromUnixTimeMilliseconds((long)((ulong)span.Single(f => f.Field == 6).Value / 1000));
            Assert.InRange(timestamp, before.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
            Assert.True((ulong)span.Single(f => f.Field == 7).Value > 0); // duration
            var localEndpoint = ProtoFields(Bytes(8));
            Assert.Equal("front-proxy", System.Text.Encoding.UTF8.GetString((byte[])localEndpoint.Single(f => f.Field == 1).Value));
            Assert.DoesNotContain(span, f => f.Field == 13); // shared is false for a root span (proto3 leaves false out)

            // map<string, string> tags = 11: one entry message (key 1, value 2) per tag.
            var tags = span.Where(f => f.Field == 11).Select(f => ProtoFields((byte[])f.Value)).ToDictionary(
                e => System.Text.Encoding.UTF8.GetString((byte[])e.Single(x => x.Field == 1).Value),
                e => System.Text.Encoding.UTF8.GetString((byte[])e.Single(x => x.Field == 2).Value));
            Assert.Equal("200", tags["http.status_code"]);
            Assert.Equal("GET", tags["http.method"]);
            Assert.Equal("proxy", tags["component"]);
            Assert.Equal(seen.Header("x-request-id"), tags["guid:x-request-id"]);
            await InProcessLegate.WaitUntilAsync(() => legate.Counter("tracing.zipkin.reports_sent") == 1, "reports_sent");
        }
    }

    /// <summary>A protobuf message's fields in order: varints and fixed64 as ulong, length-delimited as bytes.</summary>
    private static List<(int Field, object Value)> ProtoFields(byte[] message)
    {
        var fields = new List<(int, object)>();
        var input = new Google.Protobuf.CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var field = Google.Protobuf.WireFormat.GetTagFieldNumber(tag);
            fields.Add((field, Google.Protobuf.WireFormat.GetTagWireType(tag) switch
            {
                Google.Protobuf.WireFormat.WireType.Varint => input.ReadUInt64(),
                Google.Protobuf.WireFormat.WireType.Fixed64 => input.ReadFixed64(),
                Google.Protobuf.WireFormat.WireType.LengthDelimited => input.ReadBytes().ToByteArray(),
                var other => throw new InvalidDataException($"unexpected wire type {other} in field {field}"),
            }));
        }

        return fields;
    }

    [Fact]
    public async Task ACollectorThatDoesNotAnswer202IsCountedAsDropped()
    {
        var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("nope", 500));
        await using (backend)
        await using (collector)
        {
            await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port));
            await legate.Http.GetStringAsync(legate.ListenerUri("web", "/a"));
            await InProcessLegate.WaitUntilAsync(() => legate.Counter("tracing.zipkin.reports_dropped") == 1, "reports_dropped");
            Assert.Equal(0, legate.Counter("tracing.zipkin.reports_sent"));
        }
    }

    [Theory]
    [InlineData("collector_cluster: nowhere", "collector_cluster", "unknown cluster 'nowhere'")]
    [InlineData("collector_endpoint_version: GRPC", "collector_endpoint_version", "not implemented yet")]
    public async Task BadZipkinConfigIsAnErrorWithItsPath(string change, string field, string message)
    {
        var yaml = Config(1, 2).Replace(change.StartsWith("collector_cluster", StringComparison.Ordinal) ? "collector_cluster: zipkin" : "collector_endpoint_version: HTTP_JSON", change, StringComparison.Ordinal);
        var error = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(yaml));
        Assert.Contains("tracing.provider.typed_config." + field, error.Message);
        Assert.Contains(message, error.Message);
    }
}
