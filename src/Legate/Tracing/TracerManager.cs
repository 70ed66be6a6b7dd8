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
    private readonly List<ZipkinReporter> _reporters = [];
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
        var reporter = new ZipkinReporter(cluster, config.CollectorEndpoint, hostname, node.Cluster, _stats, _runtime, _time, _log);
        lock (_reporters)
        {
            _reporters.Add(reporter);
            if (_started)
            {
                reporter.Start();
            }
        }

#pragma warning disable CS0612 // split_spans_for_request is deprecated for spawn_upstream_span, yet still honoured by Envoy.
        var splitSpans = config.SplitSpansForRequest;
#pragma warning restore CS0612
        return new ZipkinTracer(reporter, node.Cluster, config.TraceId128Bit, config.SharedSpanContext ?? true, splitSpans);
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
        ZipkinReporter[] reporters;
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
