using System.Collections.Concurrent;
using Google.Protobuf;
using Legate.Config;
using Legate.Http;
using Legate.Network;
using Legate.Upstream;
using RouterConfig = Envoy.Extensions.Filters.Http.Router.V3.Router;

namespace Legate.Router;

/// <summary>The compiled <c>envoy.filters.http.router</c> config: creates a <see cref="RouterFilter"/> per stream.</summary>
internal sealed class RouterFilterFactory : HttpFilterFactory
{
    private static readonly ConcurrentDictionary<int, SocketTransport> s_transports = new();

    private RouterFilterFactory(string name, RouterConfig config, HttpFilterFactoryContext context, AccessLog.AccessLogInstance[] upstreamLogs)
        : base(name)
    {
        UpstreamLogs = upstreamLogs;
        FlushUpstreamLogOnUpstreamStream = upstreamLogs.Length > 0 && config.UpstreamLogOptions?.FlushUpstreamLogOnUpstreamStream == true;
        UpstreamLogFlushInterval = upstreamLogs.Length > 0 && config.UpstreamLogOptions?.UpstreamLogFlushInterval is { } interval ? interval.ToTimeSpan() : TimeSpan.Zero;
        ClusterManager = context.ClusterManager;
        Time = context.Time;
        SuppressEnvoyHeaders = config.SuppressEnvoyHeaders;
        DynamicStats = config.DynamicStats ?? true;
        RespectExpectedRqTimeout = config.RespectExpectedRqTimeout;
        StrictCheckHeaders = [.. config.StrictCheckHeaders];
        SuppressGrpcRequestFailureCodeStats = config.SuppressGrpcRequestFailureCodeStats;
#pragma warning disable CS0612 // start_child_span is deprecated for spawn_upstream_span, yet still honoured by Envoy.
        StartChildSpan = config.StartChildSpan;
#pragma warning restore CS0612
    }

    public override bool IsTerminal => true;

    public ClusterManager ClusterManager { get; }

    public TimeProvider Time { get; }

    /// <summary>Envoy's <c>suppress_envoy_headers</c>: no x-envoy-* headers added upstream or downstream.</summary>
    public bool SuppressEnvoyHeaders { get; }

    /// <summary>
    /// Envoy's <c>dynamic_stats</c> (default true): the cluster's per-response stats, i.e.
    /// <c>upstream_rq_&lt;class&gt;xx</c>, <c>upstream_rq_completed</c> and the <c>upstream_rq_time</c>
    /// histogram. Envoy's benchmarking guidance turns it off; request counts, pools, breakers and
    /// host counters are kept either way.
    /// </summary>
    public bool DynamicStats { get; }

    /// <summary>
    /// Envoy's <c>respect_expected_rq_timeout</c>: a trusted x-envoy-expected-rq-timeout-ms (set by
    /// an Envoy in front) becomes the route timeout, before x-envoy-upstream-rq-timeout-ms.
    /// </summary>
    public bool RespectExpectedRqTimeout { get; }

    /// <summary>
    /// Envoy's <c>strict_check_headers</c>: these x-envoy-* request headers (the validator allows the
    /// two timeouts, max retries and the two retry-on lists), when present, must hold valid values,
    /// or the request is answered 400 (flag IH).
    /// </summary>
    public string[] StrictCheckHeaders { get; }

    /// <summary>Envoy's <c>suppress_grpc_request_failure_code_stats</c>: a gRPC request charges no <c>upstream_rq_&lt;class&gt;xx</c>.</summary>
    public bool SuppressGrpcRequestFailureCodeStats { get; }

    /// <summary>
    /// Whether the stream's upstream response code counts in the cluster's <c>upstream_rq_&lt;class&gt;xx</c>:
    /// with <c>dynamic_stats</c>, unless a gRPC request's are suppressed (its HTTP code says little:
    /// gRPC failures are 200 with a grpc-status).
    /// </summary>
    public bool ChargesResponseCodeStats(HttpStream stream) =>
        DynamicStats && !(SuppressGrpcRequestFailureCodeStats && GrpcStatus.IsGrpcRequest(stream.RequestHeaders.Headers));

    /// <summary>Envoy's <c>start_child_span</c>: an egress span per upstream attempt (as the HCM's <c>spawn_upstream_span</c>).</summary>
    public bool StartChildSpan { get; }

    /// <summary>The router's <c>upstream_log</c>: one entry per upstream attempt (see RouterFilter.UpstreamLog).</summary>
    public AccessLog.AccessLogInstance[] UpstreamLogs { get; }

    /// <summary><c>upstream_log_options.flush_upstream_log_on_upstream_stream</c>: an entry also when an attempt has its connection.</summary>
    public bool FlushUpstreamLogOnUpstreamStream { get; }

    /// <summary><c>upstream_log_options.upstream_log_flush_interval</c>: UpstreamPeriodic entries while an attempt runs; zero: none.</summary>
    public TimeSpan UpstreamLogFlushInterval { get; }

    public static HttpFilterFactory? Create(string name, IMessage config, string path, ConfigErrors errors, HttpFilterFactoryContext context)
    {
        var router = (RouterConfig)config;
        AccessLog.AccessLogInstance[] upstreamLogs = [];
        if (router.UpstreamLog.Count > 0)
        {
            if (context.AccessLogs is not { } manager)
            {
                errors.Add(FieldPath.Field(path, "upstream_log"), "upstream access logs need the server's access log manager");
                return null;
            }

            upstreamLogs = AccessLog.AccessLogFactory.Compile(router.UpstreamLog, FieldPath.Field(path, "upstream_log"), errors, manager, context.Runtime);
        }

        return new RouterFilterFactory(name, router, context, upstreamLogs);
    }

    public override HttpFilter CreateFilter() => new RouterFilter(this);

    public override HttpFilter CreateFilter(HttpFilter? recycled) => recycled as RouterFilter ?? new RouterFilter(this);

    /// <summary>The socket transport for upstream connections with this read-ahead limit (shared by clusters with the same limit).</summary>
    public static SocketTransport TransportFor(int bufferLimitBytes) =>
        s_transports.GetOrAdd(bufferLimitBytes, static limit => new SocketTransport(limit));
}
