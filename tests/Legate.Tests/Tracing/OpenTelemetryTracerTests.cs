using System.Globalization;
using System.Net;
using Google.Protobuf;
using Legate.Tests.Harness;

namespace Legate.Tests.Tracing;

/// <summary>
/// <c>envoy.tracers.opentelemetry</c> with the OTLP/HTTP exporter end to end: a real backend sees
/// the W3C headers, a scripted collector receives ExportTraceServiceRequest protobufs, decoded
/// here by field number.
/// </summary>
public sealed class OpenTelemetryTracerTests
{
    private static string Config(int backendPort, int collectorPort, string extraOtel = "service_name: checkout-proxy", string extraTracing = "", string listener = "", string cluster = "", string codec = "AUTO") =>
        "node: { id: node-9, cluster: edge }\n" +
        "layered_runtime:\n  layers:\n  - name: static\n    static_layer: { tracing.opentelemetry.min_flush_spans: 1 }\n" +
        new ProxyConfig(backendPort)
        {
            Hcm = "tracing:\n" +
                  "  provider:\n" +
                  "    name: envoy.tracers.opentelemetry\n" +
                  "    typed_config:\n" +
                  "      \"@type\": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig\n" +
                  "      http_service:\n" +
                  "        http_uri: { uri: \"http://otel.example:4318/v1/traces\", cluster: otel, timeout: 5s }\n" +
                  "        request_headers_to_add: [{ header: { key: x-api-key, value: secret } }]\n" +
                  (extraOtel.Length > 0 ? "      " + extraOtel + "\n" : string.Empty) +
                  (extraTracing.Length > 0 ? "  " + extraTracing + "\n" : string.Empty),
            Clusters = "- name: otel\n  connect_timeout: 5s\n  load_assignment:\n    cluster_name: otel\n    endpoints:\n" +
                       $"    - lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {collectorPort.ToString(CultureInfo.InvariantCulture)} }} }} }} }}]\n",
            Listener = listener,
            Cluster = cluster,
            Codec = codec,
        }.Build();

    /// <summary>A decoded OTLP span.</summary>
    private sealed record OtlpSpan(string TraceId, string SpanId, string ParentSpanId, string TraceState, string Name, int Kind, ulong Start, ulong End, Dictionary<string, string> Attributes, string ServiceName)
    {
        /// <summary>Span.status (15) → Status.code (3); 0 when absent (UNSET).</summary>
        public int StatusCode { get; init; }

        /// <summary>Span.status (15) → Status.message (2).</summary>
        public string StatusMessage { get; init; } = string.Empty;

        /// <summary>Every attribute of the span's resource.</summary>
        public Dictionary<string, string> Resource { get; init; } = [];
    }

    private static List<(int Field, object Value)> Fields(ByteString bytes)
    {
        var fields = new List<(int, object)>();
        var input = new CodedInputStream(bytes.ToByteArray());
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var field = WireFormat.GetTagFieldNumber(tag);
            switch (WireFormat.GetTagWireType(tag))
            {
                case WireFormat.WireType.Varint: fields.Add((field, input.ReadUInt64())); break;
                case WireFormat.WireType.Fixed64: fields.Add((field, input.ReadFixed64())); break;
                case WireFormat.WireType.LengthDelimited: fields.Add((field, input.ReadBytes())); break;
                default: throw new InvalidDataException($"unexpected wire type in field {field}");
            }
        }

        return fields;
    }

    private static IEnumerable<ByteString> Messages(ByteString bytes, int field) => Fields(bytes).Where(f => f.Field == field).Select(f => (ByteString)f.Value);

    private static string Hex(object value) => Convert.ToHexStringLower(((ByteString)value).ToByteArray());

    private static KeyValuePair<string, string> KeyValue(ByteString kv)
    {
        var fields = Fields(kv);
        var value = Fields((ByteString)fields.Single(f => f.Field == 2).Value).Single(f => f.Field == 1).Value;
        return new(((ByteString)fields.Single(f => f.Field == 1).Value).ToStringUtf8(), ((ByteString)value).ToStringUtf8());
    }

    private static List<OtlpSpan> Decode(byte[] body)
    {
        var spans = new List<OtlpSpan>();
        foreach (var resourceSpans in Messages(ByteString.CopyFrom(body), 1))
        {
            var resource = Messages(resourceSpans, 1).Single();
            var resourceAttributes = Messages(resource, 1).Select(KeyValue).ToDictionary();
            var service = resourceAttributes["service.name"];
            foreach (var scopeSpans in Messages(resourceSpans, 2))
            {
                foreach (var span in Messages(scopeSpans, 2))
                {
                    var f = Fields(span);
                    string Text(int n) => f.Where(x => x.Field == n).Select(x => ((ByteString)x.Value).ToStringUtf8()).SingleOrDefault() ?? string.Empty;
                    spans.Add(new OtlpSpan(
                        Hex(f.Single(x => x.Field == 1).Value),
                        Hex(f.Single(x => x.Field == 2).Value),
                        f.Where(x => x.Field == 4).Select(x => Hex(x.Value)).SingleOrDefault() ?? string.Empty,
                        Text(3),
                        Text(5),
                        (int)(ulong)f.Single(x => x.Field == 6).Value,
                        (ulong)f.Single(x => x.Field == 7).Value,
                        (ulong)f.Single(x => x.Field == 8).Value,
                        f.Where(x => x.Field == 9).Select(x => KeyValue((ByteString)x.Value)).ToDictionary(),
                        service)
                    {
                        StatusCode = f.Where(x => x.Field == 15).Select(x => (int)Fields((ByteString)x.Value).Where(s => s.Field == 3).Select(s => (ulong)s.Value).SingleOrDefault()).SingleOrDefault(),
                        StatusMessage = f.Where(x => x.Field == 15).Select(x => Fields((ByteString)x.Value).Where(s => s.Field == 2).Select(s => ((ByteString)s.Value).ToStringUtf8()).SingleOrDefault()).SingleOrDefault() ?? string.Empty,
                        Resource = resourceAttributes,
                    });
                }
            }
        }

        return spans;
    }

    private static List<OtlpSpan> Spans(ScriptedUpstream collector) => collector.Log.Requests.SelectMany(r => Decode(r.Body)).ToList();

    private static async Task<List<OtlpSpan>> WaitForSpansAsync(ScriptedUpstream collector, int count)
    {
        await InProcessLegate.WaitUntilAsync(() => Spans(collector).Count >= count, $"{count} span(s) at the collector");
        return Spans(collector);
    }

    [Fact]
    public async Task ARootSpanIsExportedAsOtlpProtobufAndTraceParentGoesUpstream()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port));
        var before = DateTimeOffset.UtcNow;
        await legate.Http.GetStringAsync(legate.ListenerUri("web", "/cart"));

        var seen = (await backend.Log.WaitForRequestsAsync(1))[0];
        var traceParent = seen.Header("traceparent")!;
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", traceParent);
        Assert.Null(seen.Header("tracestate"));

        var span = Assert.Single(await WaitForSpansAsync(collector, 1));
        var report = collector.Log.Requests[0];
        Assert.Equal("POST", report.Method);
        Assert.Equal("/v1/traces", report.RawTarget);
        Assert.Equal("otel.example:4318", report.Header("host"));
        Assert.Equal("application/x-protobuf", report.Header("content-type"));
        Assert.Equal("secret", report.Header("x-api-key"));

        Assert.Equal(traceParent[3..35], span.TraceId);
        Assert.Equal(traceParent[36..52], span.SpanId);
        Assert.Equal(string.Empty, span.ParentSpanId);
        Assert.Equal("ingress", span.Name);
        Assert.Equal(2, span.Kind); // SERVER
        Assert.Equal("checkout-proxy", span.ServiceName);
        var start = DateTimeOffset.UnixEpoch.AddTicks((long)(span.Start / 100));
        Assert.InRange(start, before.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.True(span.End > span.Start);
        Assert.Equal("proxy", span.Attributes["component"]);
        Assert.Equal("node-9", span.Attributes["node_id"]);
        Assert.Equal("GET", span.Attributes["http.method"]);
        Assert.Equal("200", span.Attributes["http.status_code"]);
        Assert.Equal("backend", span.Attributes["upstream_cluster"]);
        Assert.Equal(seen.Header("x-request-id"), span.Attributes["guid:x-request-id"]);
        Assert.Equal($"http://{legate.ListenerEndpoint("web")}/cart", span.Attributes["http.url"]);
        Assert.Equal(1, legate.Counter("tracing.opentelemetry.spans_sent"));
    }

    [Fact]
    public async Task SpanStatusIsErrorFor5xxAndFor4xxOnlyOnClientSpans()
    {
        await using var backend = await ScriptedUpstream.StartAsync(
            new UpstreamScript(UpstreamResponse.Text("ok"))
                .When(r => r.Path.StartsWithSegments("/broken"), UpstreamResponse.Text("down", 503))
                .When(r => r.Path.StartsWithSegments("/missing"), UpstreamResponse.Text("nope", 404)));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, extraTracing: "spawn_upstream_span: true"));
        foreach (var path in new[] { "/fine", "/broken", "/missing" })
        {
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", path));
        }

        // Each request: its SERVER span and the upstream attempt's CLIENT span.
        var spans = await WaitForSpansAsync(collector, 6);
        int Status(string path, int kind) => spans.Single(s => s.Kind == kind && s.TraceId == spans.Single(p => p.Kind == 2 && p.Attributes["http.url"].EndsWith(path, StringComparison.Ordinal)).TraceId).StatusCode;
        Assert.Equal(0, Status("/fine", 2));
        Assert.Equal(0, Status("/fine", 3));
        Assert.Equal(2, Status("/broken", 2)); // STATUS_CODE_ERROR
        Assert.Equal(2, Status("/broken", 3));
        Assert.Equal(0, Status("/missing", 2)); // a 4xx is the caller's error, not the server's
        Assert.Equal(2, Status("/missing", 3)); // but the client span failed
    }

    private const string Http2Cluster = """
        typed_extension_protocol_options:
          envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
            "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
            explicit_http_config: { http2_protocol_options: {} }
        """;

    private static UpstreamResponse GrpcAnswer(string status, string? message = null)
    {
        var answer = UpstreamResponse.Bytes([0, 0, 0, 0, 0]).WithHeader("content-type", "application/grpc").WithTrailer("grpc-status", status);
        return message is null ? answer : answer.WithTrailer("grpc-message", message);
    }

    private static HttpRequestMessage GrpcCall(InProcessLegate legate, string method) =>
        new(HttpMethod.Post, legate.ListenerUri("web", method))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent([0, 0, 0, 0, 0]) { Headers = { { "content-type", "application/grpc+proto" } } },
            Headers = { { "grpc-timeout", "5S" }, { "te", "trailers" } },
        };

    [Fact]
    public async Task AGrpcCallsStatusFromTheTrailersTagsTheSpansAndANonOkStatusIsAnError()
    {
        await using var backend = await ScriptedUpstream.StartAsync(
            new UpstreamScript(GrpcAnswer("0"))
                .OnPath("/shop.Cart/Pay", GrpcAnswer("14", "payments down")),
            UpstreamProtocols.Http2);
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, extraTracing: "spawn_upstream_span: true", cluster: Http2Cluster));
        using var client = TestHttp.CreateClient(HttpVersion.Version20);
        foreach (var method in new[] { "/shop.Cart/Add", "/shop.Cart/Pay" })
        {
            using var request = GrpcCall(legate, method);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await response.Content.ReadAsByteArrayAsync();
        }

        var spans = await WaitForSpansAsync(collector, 4);
        var ok = spans.Single(s => s.Kind == 2 && s.Attributes["http.url"].EndsWith("/shop.Cart/Add", StringComparison.Ordinal));
        var failed = spans.Single(s => s.Kind == 2 && s.Attributes["http.url"].EndsWith("/shop.Cart/Pay", StringComparison.Ordinal));

        // Envoy's gRPC request tags on the connection manager's span.
        Assert.Equal("/shop.Cart/Add", ok.Attributes["grpc.path"]);
        Assert.Equal(legate.ListenerEndpoint("web").ToString(), ok.Attributes["grpc.authority"]);
        Assert.Equal("application/grpc+proto", ok.Attributes["grpc.content_type"]);
        Assert.Equal("5S", ok.Attributes["grpc.timeout"]);

        // OK: tagged, no error, status unset.
        Assert.Equal("200", ok.Attributes["http.status_code"]);
        Assert.Equal("0", ok.Attributes["grpc.status_code"]);
        Assert.False(ok.Attributes.ContainsKey("grpc.message"));
        Assert.False(ok.Attributes.ContainsKey("error"));
        Assert.Equal(0, ok.StatusCode);

        // UNAVAILABLE behind an HTTP 200: error=true and an ERROR status carrying grpc.message, on both spans.
        var failedClient = spans.Single(s => s.Kind == 3 && s.TraceId == failed.TraceId);
        foreach (var span in new[] { failed, failedClient })
        {
            Assert.Equal("200", span.Attributes["http.status_code"]);
            Assert.Equal("14", span.Attributes["grpc.status_code"]);
            Assert.Equal("payments down", span.Attributes["grpc.message"]);
            Assert.Equal("true", span.Attributes["error"]);
            Assert.Equal(2, span.StatusCode);
            Assert.Equal("payments down", span.StatusMessage);
        }

        // The request tags belong to the connection manager's span only.
        Assert.False(failedClient.Attributes.ContainsKey("grpc.path"));
    }

    [Fact]
    public async Task TheStaticConfigResourceDetectorAddsAttributesAndCanReplaceTheServiceName()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        var detectors = "service_name: checkout-proxy\n      resource_detectors:\n" +
                        "      - name: envoy.tracers.opentelemetry.resource_detectors.static_config\n" +
                        "        typed_config:\n" +
                        "          \"@type\": type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.StaticConfigResourceDetectorConfig\n" +
                        "          attributes: { deployment.environment: staging, host.name: edge-1, empty.one: \"\" }\n" +
                        "      - name: envoy.tracers.opentelemetry.resource_detectors.static_config\n" +
                        "        typed_config:\n" +
                        "          \"@type\": type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.StaticConfigResourceDetectorConfig\n" +
                        "          attributes: { service.name: checkout, host.name: edge-2 }";
        await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, detectors));
        await legate.Http.GetStringAsync(legate.ListenerUri("web", "/r"));

        var span = Assert.Single(await WaitForSpansAsync(collector, 1));

        // Detectors merge in order: a later one replaces an earlier key, service.name included; empty values are skipped.
        Assert.Equal("checkout", span.ServiceName);
        Assert.Equal("staging", span.Resource["deployment.environment"]);
        Assert.Equal("edge-2", span.Resource["host.name"]);
        Assert.False(span.Resource.ContainsKey("empty.one"));
        Assert.Contains(legate.Logs.Lines, line => line.Contains("Attribute empty.one cannot be empty.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheEnvironmentResourceDetectorReadsOtelResourceAttributes()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        var detectors = "service_name: checkout-proxy\n      resource_detectors:\n" +
                        "      - name: envoy.tracers.opentelemetry.resource_detectors.environment\n" +
                        "        typed_config: { \"@type\": type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.EnvironmentResourceDetectorConfig }";
        var environment = new Dictionary<string, string> { ["OTEL_RESOURCE_ATTRIBUTES"] = "service.version=1.4.2,,k8s.pod.name=web-7,broken,a=b=c" };
        await using var legate = LegateProcess.StartWithConfig(Config(backend.Port, collector.Port, detectors), environment);
        await legate.WaitForReadyAsync();
        var listener = await legate.WaitForListenerAsync("web");
        await legate.Http.GetStringAsync(new Uri($"http://{listener}/env"));

        var span = Assert.Single(await WaitForSpansAsync(collector, 1));
        Assert.Equal("checkout-proxy", span.ServiceName);
        Assert.Equal("1.4.2", span.Resource["service.version"]);
        Assert.Equal("web-7", span.Resource["k8s.pod.name"]);
        Assert.Equal(3, span.Resource.Count);
        await legate.Stderr.WaitForAsync("Invalid resource format from the environment, invalid text: broken\\.", LegateProcess.DefaultTimeout);
        await legate.Stderr.WaitForAsync("Invalid resource format from the environment, invalid text: a=b=c\\.", LegateProcess.DefaultTimeout);
    }

    [Fact]
    public async Task TheDynatraceResourceDetectorReadsTheEnrichmentFiles()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        var directory = Directory.CreateTempSubdirectory("legate-dynatrace-").FullName;
        try
        {
            // OneAgent's indirection file, in the working directory, names the real file (no newline:
            // Envoy takes the content as the path as it is).
            var metadata = Path.Combine(directory, "dt_metadata_real.properties");
            File.WriteAllText(metadata, "dt.entity.process_group_instance=PROCESS_GROUP_INSTANCE-ABC\n\n  dt.entity.host=HOST-1  \nbroken\na=b=c\nservice.name=from-dynatrace\n");
            File.WriteAllText(Path.Combine(directory, "dt_metadata_e617c525669e072eebe3d0f08212e8f2.properties"), metadata);
            var detectors = "service_name: checkout-proxy\n      resource_detectors:\n" +
                            "      - name: envoy.tracers.opentelemetry.resource_detectors.dynatrace\n" +
                            "        typed_config: { \"@type\": type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.DynatraceResourceDetectorConfig }";
            await using var legate = LegateProcess.StartWithConfigIn(directory, Config(backend.Port, collector.Port, detectors));
            await legate.WaitForReadyAsync();
            var listener = await legate.WaitForListenerAsync("web");
            await legate.Http.GetStringAsync(new Uri($"http://{listener}/dt"));

            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            // A later detector's attribute replaces service_name's, as OpenTelemetry's resource merge.
            Assert.Equal("from-dynatrace", span.ServiceName);
            Assert.Equal("PROCESS_GROUP_INSTANCE-ABC", span.Resource["dt.entity.process_group_instance"]);
            Assert.Equal("HOST-1", span.Resource["dt.entity.host"]);
            Assert.Equal(3, span.Resource.Count);
            // The operator's files do not exist here: each is reported, but not the "not deployed" warning.
            await legate.Stderr.WaitForAsync(
                "Failed to detect resource attributes from the Dynatrace enrichment file: /var/lib/dynatrace/enrichment/dt_metadata\\.properties, error: Unable to read Dynatrace enrichment file: /var/lib/dynatrace/enrichment/dt_metadata\\.properties\\.",
                LegateProcess.DefaultTimeout);
            Assert.DoesNotContain("could not detect attributes", legate.Stderr.Text, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task WithoutDynatraceTheDetectorWarnsAndAddsNothing()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        var directory = Directory.CreateTempSubdirectory("legate-dynatrace-").FullName;
        try
        {
            var detectors = "service_name: checkout-proxy\n      resource_detectors:\n" +
                            "      - name: envoy.tracers.opentelemetry.resource_detectors.dynatrace\n" +
                            "        typed_config: { \"@type\": type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.DynatraceResourceDetectorConfig }";
            await using var legate = LegateProcess.StartWithConfigIn(directory, Config(backend.Port, collector.Port, detectors));
            await legate.WaitForReadyAsync();
            await legate.Stderr.WaitForAsync(
                "Dynatrace OpenTelemetry resource detector is configured but could not detect attributes\\. Check the Dynatrace deployment status to ensure it is correctly deployed\\.",
                LegateProcess.DefaultTimeout);
            var listener = await legate.WaitForListenerAsync("web");
            await legate.Http.GetStringAsync(new Uri($"http://{listener}/none"));

            var span = Assert.Single(await WaitForSpansAsync(collector, 1));
            Assert.Equal("checkout-proxy", span.ServiceName);
            Assert.Single(span.Resource);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task AConfigThatIsNoResourceDetectorIsAConfigError()
    {
        var detectors = "resource_detectors:\n" +
                        "      - name: not.a.detector\n" +
                        "        typed_config: { \"@type\": type.googleapis.com/envoy.extensions.tracers.opentelemetry.samplers.v3.AlwaysOnSamplerConfig }";
        var error = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(Config(1, 1, detectors)));
        var message = Assert.Single(error.Errors).ToString();
        Assert.Contains(".tracing.provider.typed_config.resource_detectors[0].typed_config", message, StringComparison.Ordinal);
        Assert.Contains("\"not.a.detector\"", message, StringComparison.Ordinal);
        Assert.EndsWith("is not supported yet", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheAlwaysOnSamplerSamplesWhatTheConnectionManagerWouldNot()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        var sampler = "service_name: checkout-proxy\n      sampler:\n        name: envoy.tracers.opentelemetry.samplers.always_on\n" +
                      "        typed_config: { \"@type\": type.googleapis.com/envoy.extensions.tracers.opentelemetry.samplers.v3.AlwaysOnSamplerConfig }";
        await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, sampler, "random_sampling: { value: 0 }"));

        // The caller says "not sampled" and the connection manager samples nothing; the sampler wins.
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/always"));
        request.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
        await legate.Http.SendAsync(request);
        await legate.Http.GetStringAsync(legate.ListenerUri("web", "/also"));

        var seen = await backend.Log.WaitForRequestsAsync(2);
        Assert.All(seen, r => Assert.EndsWith("-01", r.Header("traceparent"), StringComparison.Ordinal));
        var spans = await WaitForSpansAsync(collector, 2);
        Assert.Contains(spans, s => s.TraceId == "0af7651916cd43dd8448eb211c80319c" && s.ParentSpanId == "b7ad6b7169203331");
    }

    [Fact]
    public async Task AnIncomingTraceParentIsContinuedWithItsTraceState()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port));
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        request.Headers.Add("tracestate", "rojo=00f067aa0ba902b7");
        await legate.Http.SendAsync(request);

        var seen = (await backend.Log.WaitForRequestsAsync(1))[0];
        var span = Assert.Single(await WaitForSpansAsync(collector, 1));
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", span.TraceId);
        Assert.Equal("b7ad6b7169203331", span.ParentSpanId);
        Assert.NotEqual("b7ad6b7169203331", span.SpanId);
        Assert.Equal("rojo=00f067aa0ba902b7", span.TraceState);
        Assert.Equal($"00-0af7651916cd43dd8448eb211c80319c-{span.SpanId}-01", seen.Header("traceparent"));
        Assert.Equal("rojo=00f067aa0ba902b7", seen.Header("tracestate"));
    }

    [Fact]
    public async Task AnUnsampledTraceParentIsPropagatedAndNotExported()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        await using (var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port)))
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
            request.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
            await legate.Http.SendAsync(request);
            var seen = (await backend.Log.WaitForRequestsAsync(1))[0];
            Assert.EndsWith("-00", seen.Header("traceparent"));
            Assert.StartsWith("00-0af7651916cd43dd8448eb211c80319c-", seen.Header("traceparent"));
        }

        Assert.Empty(collector.Log.Requests);
    }

    [Fact]
    public async Task AMalformedTraceParentMeansNoSpanAndIsPassedOnUntouched()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        await using (var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port)))
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
            request.Headers.TryAddWithoutValidation("traceparent", "garbage");
            await legate.Http.SendAsync(request);
            Assert.Equal("garbage", (await backend.Log.WaitForRequestsAsync(1))[0].Header("traceparent"));
        }

        Assert.Empty(collector.Log.Requests);
    }

    [Fact]
    public async Task SpawnedUpstreamSpansAreClientChildren()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, extraTracing: "spawn_upstream_span: true"));
        await legate.Http.GetStringAsync(legate.ListenerUri("web", "/"));
        var seen = (await backend.Log.WaitForRequestsAsync(1))[0];
        var spans = await WaitForSpansAsync(collector, 2);
        var server = Assert.Single(spans, s => s.Kind == 2);
        var client = Assert.Single(spans, s => s.Kind == 3);
        Assert.Equal("router backend egress", client.Name);
        Assert.Equal(server.SpanId, client.ParentSpanId);
        Assert.Equal($"00-{server.TraceId}-{client.SpanId}-01", seen.Header("traceparent"));
    }

    [Fact]
    public async Task AnEgressSpanIsAClientSpanNamedAfterTheHost()
    {
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        await using var collector = await ScriptedUpstream.StartAsync(UpstreamResponse.Text(string.Empty));
        await using var legate = await InProcessLegate.StartAsync(Config(backend.Port, collector.Port, extraOtel: "", listener: "traffic_direction: OUTBOUND"));
        await legate.Http.GetStringAsync(legate.ListenerUri("web", "/"));
        var span = Assert.Single(await WaitForSpansAsync(collector, 1));
        Assert.Equal(3, span.Kind);
        Assert.Equal("egress " + legate.ListenerEndpoint("web"), span.Name);
        Assert.Equal("unknown_service:envoy", span.ServiceName);
    }

    [Fact]
    public async Task SpansGoToAGrpcCollectorThroughTraceServiceExport()
    {
        var logs = Legate.Server.Logging.LogManager.Create(Legate.Server.CommandLineParser.Parse([]), new CapturingLogSink());
        var received = new TaskCompletionSource<(byte[] Body, string Metadata, string Authority)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var collector = new Legate.Grpc.GrpcServer(new IPEndPoint(IPAddress.Loopback, 0), logs.Get("misc"))
            .Map("/opentelemetry.proto.collector.trace.v1.TraceService/Export", async call =>
            {
                // Read as raw bytes: an ExportTraceServiceRequest is field 1 repeated, so a BytesValue sees the first ResourceSpans.
                var request = await call.ReadAsync(Google.Protobuf.WellKnownTypes.BytesValue.Parser);
                received.TrySetResult((request!.ToByteArray(), call.RequestHeaders["x-tenant"].ToString(), call.RequestHeaders.Host.ToString()));
                await call.WriteAsync(new Google.Protobuf.WellKnownTypes.Empty());
            });
        await collector.StartAsync(CancellationToken.None);
        await using var backend = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("hello"));
        var yaml = Config(backend.Port, collector.BoundEndpoint.Port, extraOtel: "service_name: grpc-proxy\n      grpc_service: { envoy_grpc: { cluster_name: otel }, timeout: 5s, initial_metadata: [{ key: x-tenant, value: acme }] }");
        yaml = RemoveHttpService(yaml);
        await using var legate = await InProcessLegate.StartAsync(yaml);
        await legate.Http.GetStringAsync(legate.ListenerUri("web", "/grpc"));
        var seen = (await backend.Log.WaitForRequestsAsync(1))[0];

        var (body, metadata, authority) = await received.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("acme", metadata);
        Assert.Equal("otel", authority);
        var span = Assert.Single(Decode(body));
        Assert.Equal("grpc-proxy", span.ServiceName);
        Assert.Equal($"00-{span.TraceId}-{span.SpanId}-01", seen.Header("traceparent"));
        Assert.Equal("/grpc", new Uri(span.Attributes["http.url"]).AbsolutePath);
    }

    /// <summary>Drops the http_service block of <see cref="Config"/> (a gRPC exporter test).</summary>
    private static string RemoveHttpService(string yaml)
    {
        var lines = yaml.Split('\n').ToList();
        var start = lines.FindIndex(l => l.TrimStart().StartsWith("http_service:", StringComparison.Ordinal));
        if (start >= 0)
        {
            lines.RemoveRange(start, 3);
        }

        return string.Join('\n', lines);
    }

    [Fact]
    public async Task AnUnknownGrpcClusterIsAnErrorWithItsPath()
    {
        var yaml = Config(1, 2, extraOtel: "grpc_service: { envoy_grpc: { cluster_name: nowhere } }");
        var error = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(yaml));
        Assert.Contains("tracing.provider.typed_config.grpc_service.envoy_grpc.cluster_name", error.Message);
        Assert.Contains("unknown cluster 'nowhere'", error.Message);
    }
}
