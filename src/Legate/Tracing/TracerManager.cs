using Google.Protobuf;
using Legate.Config;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Tracing.Zipkin;
using Legate.Upstream;
using TracingHttp = Envoy.Config.Trace.V3.Tracing.Types.Http;

namespace Legate.Tracing;

/// <summary>
/// The server's tracing providers (Envoy's TracerManager): one driver per distinct provider config,
/// shared by every connection manager that names it, so spans of one process go through one
/// reporter. Started with the server; flushed and stopped on shutdown, before the clusters go.
/// </summary>
internal sealed class TracerManager : IAsyncDisposable
{
    private readonly ClusterManager _clusters;
    private readonly StatsStore _stats;
    private readonly Runtime.RuntimeLoader? _runtime;
    private readonly TimeProvider _time;
    private readonly Logger _log;
    private readonly Dictionary<ByteString, Tracer> _tracers = [];
    private readonly List<ISpanReporter> _reporters = [];
    private bool _started;

    public TracerManager(ClusterManager clusters, StatsStore stats, Runtime.RuntimeLoader? runtime, TimeProvider time, LogManager logs)
    {
        _clusters = clusters;
        _stats = stats;
        _runtime = runtime;
        _time = time;
        _log = logs.Get(LogComponents.Tracing);
    }

    /// <summary>The tracer for <paramref name="provider"/>, created on first use; null after an error.</summary>
    public Tracer? GetOrCreate(TracingHttp provider, string path, ConfigErrors errors, Envoy.Config.Core.V3.Node node)
    {
        var configPath = FieldPath.Field(path, "typed_config");
        var any = provider.TypedConfig;
        if (any is null)
        {
            errors.Add(configPath, $"tracer '{provider.Name}' needs a typed_config");
            return null;
        }

        // The node matters too (the service name); one server has one node, so the config is the key.
        var key = any.ToByteString();
        lock (_tracers)
        {
            if (_tracers.TryGetValue(key, out var existing))
            {
                return existing;
            }
        }

        Tracer? tracer = null;
        if (any.Is(Envoy.Config.Trace.V3.ZipkinConfig.Descriptor))
        {
            tracer = CreateZipkin(any.Unpack<Envoy.Config.Trace.V3.ZipkinConfig>(), configPath, errors, node);
        }
        else if (any.Is(Envoy.Config.Trace.V3.OpenTelemetryConfig.Descriptor))
        {
            tracer = CreateOpenTelemetry(any.Unpack<Envoy.Config.Trace.V3.OpenTelemetryConfig>(), configPath, errors);
        }
        else
        {
            // ExtensionChecker already reported an unimplemented tracer; this is the backstop.
            errors.Add(configPath, $"tracer '{provider.Name}' ({any.TypeUrl}) is not supported yet");
        }

        if (tracer is not null)
        {
            lock (_tracers)
            {
                _tracers[key] = tracer;
            }
        }

        return tracer;
    }

    private ZipkinTracer? CreateZipkin(Envoy.Config.Trace.V3.ZipkinConfig config, string path, ConfigErrors errors, Envoy.Config.Core.V3.Node node)
    {
        var version = config.CollectorEndpointVersion;
        var proto = version == Envoy.Config.Trace.V3.ZipkinConfig.Types.CollectorEndpointVersion.HttpProto;
        if (version != Envoy.Config.Trace.V3.ZipkinConfig.Types.CollectorEndpointVersion.HttpJson && !proto)
        {
            errors.Add(FieldPath.Field(path, "collector_endpoint_version"),
                config.CollectorEndpointVersion == Envoy.Config.Trace.V3.ZipkinConfig.Types.CollectorEndpointVersion.DeprecatedAndUnavailableDoNotUse
                    ? "the v1 JSON collector endpoint is no longer available (Envoy rejects it too); use HTTP_JSON"
                    : $"collector_endpoint_version {config.CollectorEndpointVersion} is not implemented yet (nor in Envoy); use HTTP_JSON or HTTP_PROTO");
            return null;
        }

        if (_clusters.Find(config.CollectorCluster) is not { } cluster)
        {
            errors.Add(FieldPath.Field(path, "collector_cluster"), $"unknown cluster '{config.CollectorCluster}'");
            return null;
        }

        var hostname = config.CollectorHostname.Length > 0 ? config.CollectorHostname : config.CollectorCluster;
        var serviceName = node.Cluster;
        var sent = _stats.Counter("tracing.zipkin.reports_sent");
        var dropped = _stats.Counter("tracing.zipkin.reports_dropped");
        var failed = _stats.Counter("tracing.zipkin.reports_failed");
        var skipped = _stats.Counter("tracing.zipkin.reports_skipped_no_cluster");
        CollectorReporter<ZipkinSpan>? reporter = null;
        reporter = new CollectorReporter<ZipkinSpan>(new CollectorReporter<ZipkinSpan>.Options
        {
            Cluster = cluster,
            Path = config.CollectorEndpoint,
            Host = hostname,
            ContentType = proto ? ZipkinProto.ContentType : "application/json",
            Prefix = "tracing.zipkin",
            Serialize = proto ? spans => ZipkinProto.Serialize(spans, serviceName) : spans => ZipkinJson.Serialize(spans, serviceName),
            Timeout = () => TimeSpan.FromMilliseconds(reporter!.RuntimeInteger("tracing.zipkin.request_timeout", 5000)),

            // As Envoy: only 202 Accepted counts as sent.
            OnAnswer = status => (status == System.Net.HttpStatusCode.Accepted ? sent : dropped).Inc(),
            OnFailure = failed.Inc,
            OnNoHost = skipped.Inc,
        }, _stats, _runtime, _time, _log);
        Register(reporter);

#pragma warning disable CS0612 // split_spans_for_request is deprecated for spawn_upstream_span, yet still honoured by Envoy.
        var splitSpans = config.SplitSpansForRequest;
#pragma warning restore CS0612
        return new ZipkinTracer(reporter, node.Cluster, config.TraceId128Bit, config.SharedSpanContext ?? true, splitSpans);
    }

    /// <summary>
    /// OpenTelemetry with the OTLP/HTTP exporter (<c>http_service</c>): protobuf POSTed to the
    /// <c>http_uri</c>'s path with its authority as Host, to a host of its cluster, within its timeout.
    /// </summary>
    private OpenTelemetry.OtelTracer? CreateOpenTelemetry(Envoy.Config.Trace.V3.OpenTelemetryConfig config, string path, ConfigErrors errors)
    {
        var resource = OpenTelemetry.OtelResource.Create(config, path, Environment.GetEnvironmentVariable, _log, errors);

        // The extension checker admits only implemented samplers, i.e. always_on: every span is
        // sampled, whatever the connection manager or the caller decided (Envoy's AlwaysOnSampler).
        var alwaysOn = config.Sampler?.TypedConfig is { } sampler && sampler.Is(Envoy.Extensions.Tracers.Opentelemetry.Samplers.V3.AlwaysOnSamplerConfig.Descriptor);
        if (config.GrpcService is { } grpc)
        {
            return CreateOtlpGrpc(grpc, FieldPath.Field(path, "grpc_service"), errors, resource, alwaysOn);
        }

        if (config.HttpService?.HttpUri is not { } uri)
        {
            errors.Add(path, "http_service (with http_uri) is required");
            return null;
        }

        var uriPath = FieldPath.Field(FieldPath.Field(path, "http_service"), "http_uri");
        if (!Uri.TryCreate(uri.Uri, UriKind.Absolute, out var parsed) || (parsed.Scheme != Uri.UriSchemeHttp && parsed.Scheme != Uri.UriSchemeHttps))
        {
            errors.Add(FieldPath.Field(uriPath, "uri"), $"'{uri.Uri}' is not an http:// or https:// URI");
            return null;
        }

        if (_clusters.Find(uri.Cluster) is not { } cluster)
        {
            errors.Add(FieldPath.Field(uriPath, "cluster"), $"unknown cluster '{uri.Cluster}'");
            return null;
        }

        var headers = new List<(string, string)>();
        foreach (var option in config.HttpService.RequestHeadersToAdd)
        {
            headers.Add((option.Header.Key, option.Header.Value));
        }

        var timeout = uri.Timeout?.ToTimeSpan() ?? TimeSpan.FromSeconds(1);
        var reporter = new CollectorReporter<OpenTelemetry.OtelSpan>(new CollectorReporter<OpenTelemetry.OtelSpan>.Options
        {
            Cluster = cluster,
            Path = parsed.PathAndQuery,
            Host = parsed.Authority,
            ContentType = "application/x-protobuf",
            Prefix = "tracing.opentelemetry",
            Serialize = spans => OpenTelemetry.OtlpEncoder.ExportTraceServiceRequest(spans, resource),
            Timeout = () => timeout,
            Headers = [.. headers],
        }, _stats, _runtime, _time, _log);
        Register(reporter);
        return new OpenTelemetry.OtelTracer(reporter) { AlwaysOn = alwaysOn };
    }

    private const string OtlpExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

    /// <summary>
    /// OTLP over gRPC (<c>grpc_service.envoy_grpc</c>): unary TraceService/Export calls on the shared
    /// gRPC client to a host of the cluster, with the service's <c>timeout</c> as deadline and its
    /// <c>initial_metadata</c>.
    /// </summary>
    private OpenTelemetry.OtelTracer? CreateOtlpGrpc(Envoy.Config.Core.V3.GrpcService grpc, string path, ConfigErrors errors, OpenTelemetry.OtelResource resource, bool alwaysOn)
    {
        if (grpc.EnvoyGrpc is not { } envoyGrpc)
        {
            errors.Add(FieldPath.Field(path, "google_grpc"), "google_grpc is not supported; use envoy_grpc");
            return null;
        }

        if (_clusters.Find(envoyGrpc.ClusterName) is not { } cluster)
        {
            errors.Add(FieldPath.Field(FieldPath.Field(path, "envoy_grpc"), "cluster_name"), $"unknown cluster '{envoyGrpc.ClusterName}'");
            return null;
        }

        var channel = new Grpc.GrpcChannel(new Grpc.GrpcChannelOptions
        {
            ResolveEndpoint = _ => cluster.LoadBalancer.ChooseHost(null) is { } host
                ? ValueTask.FromResult<System.Net.EndPoint>(host.Address)
                : ValueTask.FromException<System.Net.EndPoint>(new HttpRequestException($"no host in cluster '{cluster.Info.Name}'")),
            Authority = envoyGrpc.ClusterName,
        });
        var metadata = new List<KeyValuePair<string, string>>();
        foreach (var header in grpc.InitialMetadata)
        {
            metadata.Add(new(header.Key, header.Value));
        }

        var callOptions = new Grpc.GrpcCallOptions { Deadline = grpc.Timeout?.ToTimeSpan() is { } t && t > TimeSpan.Zero ? t : null, Metadata = metadata };
        var reporter = new CollectorReporter<OpenTelemetry.OtelSpan>(new CollectorReporter<OpenTelemetry.OtelSpan>.Options
        {
            Cluster = cluster,
            Path = OtlpExportMethod,
            Host = envoyGrpc.ClusterName,
            ContentType = "application/grpc",
            Prefix = "tracing.opentelemetry",
            Serialize = spans => OpenTelemetry.OtlpEncoder.ExportTraceServiceRequest(spans, resource),
            Timeout = () => callOptions.Deadline ?? Timeout.InfiniteTimeSpan,

            // ExportTraceServiceRequest is one repeated field 1 and Legate sends one ResourceSpans, so the
            // request is byte for byte a BytesValue holding it; the response's field 1 (partial_success)
            // reads the same way. No generated OTLP types needed.
            Send = spans => channel.UnaryAsync<Google.Protobuf.WellKnownTypes.BytesValue, Google.Protobuf.WellKnownTypes.BytesValue>(
                OtlpExportMethod,
                new Google.Protobuf.WellKnownTypes.BytesValue { Value = Google.Protobuf.ByteString.CopyFrom(OpenTelemetry.OtlpEncoder.ResourceSpans(spans, resource)) },
                Google.Protobuf.WellKnownTypes.BytesValue.Parser,
                callOptions),
            OnDispose = channel.Dispose,
        }, _stats, _runtime, _time, _log);
        Register(reporter);
        return new OpenTelemetry.OtelTracer(reporter) { AlwaysOn = alwaysOn };
    }

    private void Register(ISpanReporter reporter)
    {
        lock (_reporters)
        {
            _reporters.Add(reporter);
            if (_started)
            {
                reporter.Start();
            }
        }
    }

    /// <summary>Starts the reporters' flush timers.</summary>
    public void Start()
    {
        lock (_reporters)
        {
            _started = true;
            foreach (var reporter in _reporters)
            {
                reporter.Start();
            }
        }
    }

    /// <summary>Sends every buffered span and stops the timers.</summary>
    public async ValueTask DisposeAsync()
    {
        ISpanReporter[] reporters;
        lock (_reporters)
        {
            reporters = [.. _reporters];
            _reporters.Clear();
        }

        foreach (var reporter in reporters)
        {
            try
            {
                await reporter.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _log.Warn($"tracer flush on shutdown failed: {ex.Message}");
            }
        }
    }
}
