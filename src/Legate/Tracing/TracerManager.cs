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
        if (config.CollectorEndpointVersion != Envoy.Config.Trace.V3.ZipkinConfig.Types.CollectorEndpointVersion.HttpJson)
        {
            errors.Add(FieldPath.Field(path, "collector_endpoint_version"),
                config.CollectorEndpointVersion == Envoy.Config.Trace.V3.ZipkinConfig.Types.CollectorEndpointVersion.DeprecatedAndUnavailableDoNotUse
                    ? "the v1 JSON collector endpoint is no longer available (Envoy rejects it too); use HTTP_JSON"
                    : $"collector_endpoint_version {config.CollectorEndpointVersion} is not implemented yet; use HTTP_JSON");
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
            ContentType = "application/json",
            Prefix = "tracing.zipkin",
            Serialize = spans => ZipkinJson.Serialize(spans, serviceName),
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
        if (config.GrpcService is not null)
        {
            // Worded like an unimplemented extension so that tools (scripts/compat.sh) class it with them.
            errors.Add(FieldPath.Field(path, "grpc_service"),
                "\"envoy.tracers.opentelemetry\" (type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig) is not supported yet with the OTLP gRPC exporter; use http_service");
            return null;
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

        var serviceName = config.ServiceName.Length > 0 ? config.ServiceName : "unknown_service:envoy";
        var timeout = uri.Timeout?.ToTimeSpan() ?? TimeSpan.FromSeconds(1);
        var reporter = new CollectorReporter<OpenTelemetry.OtelSpan>(new CollectorReporter<OpenTelemetry.OtelSpan>.Options
        {
            Cluster = cluster,
            Path = parsed.PathAndQuery,
            Host = parsed.Authority,
            ContentType = "application/x-protobuf",
            Prefix = "tracing.opentelemetry",
            Serialize = spans => OpenTelemetry.OtlpEncoder.ExportTraceServiceRequest(spans, serviceName),
            Timeout = () => timeout,
            Headers = [.. headers],
        }, _stats, _runtime, _time, _log);
        Register(reporter);
        return new OpenTelemetry.OtelTracer(reporter);
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
