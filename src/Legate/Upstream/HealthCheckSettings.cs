using System.Collections.Immutable;
using Legate.Config;
using FileSink = Envoy.Extensions.HealthCheck.EventSinks.File.V3.HealthCheckEventFileSink;
using HealthCheckConfig = Envoy.Config.Core.V3.HealthCheck;

namespace Legate.Upstream;

/// <summary>One <c>health_checks</c> entry of a cluster, compiled, with Envoy's defaults.</summary>
internal sealed record HealthCheckSettings
{
    public enum Kind
    {
        Http,
        Tcp,
        Grpc,
    }

    public Kind Type { get; init; }

    public TimeSpan Timeout { get; init; }

    public TimeSpan Interval { get; init; }

    public TimeSpan InitialJitter { get; init; }

    public TimeSpan IntervalJitter { get; init; }

    public uint IntervalJitterPercent { get; init; }

    public int UnhealthyThreshold { get; init; }

    public int HealthyThreshold { get; init; }

    public bool ReuseConnection { get; init; } = true;

    /// <summary>Used until the cluster has had traffic (default 60 s).</summary>
    public TimeSpan NoTrafficInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Defaults to <see cref="NoTrafficInterval"/>.</summary>
    public TimeSpan NoTrafficHealthyInterval { get; init; } = TimeSpan.FromSeconds(60);

    public TimeSpan UnhealthyInterval { get; init; }

    public TimeSpan UnhealthyEdgeInterval { get; init; }

    public TimeSpan HealthyEdgeInterval { get; init; }

    // HTTP and gRPC.
    public string Host { get; init; } = "";

    public string Path { get; init; } = "/";

    public string Method { get; init; } = "GET";

    public bool Http2 { get; init; }

    public ImmutableArray<(long Start, long End)> ExpectedStatuses { get; init; } = [(200, 201)];

    /// <summary><c>retriable_statuses</c>: an unexpected status in these ranges fails only after <c>unhealthy_threshold</c> in a row.</summary>
    public ImmutableArray<(long Start, long End)> RetriableStatuses { get; init; } = [];

    /// <summary>
    /// <c>response_buffer_size</c> (default 1024): how much of an HTTP answer's body the
    /// <c>receive</c> payloads are looked for in; 0 = the whole body.
    /// </summary>
    public long ResponseBufferSize { get; init; } = 1024;

    /// <summary>
    /// <c>service_name_matcher</c>: a passing HTTP answer must carry an
    /// <c>x-envoy-upstream-healthchecked-cluster</c> value it matches (counted in <c>verify_cluster</c>).
    /// </summary>
    public Legate.Router.Matching.CompiledStringMatcher? ServiceNameMatcher { get; init; }

    public ImmutableArray<(string Name, string Value, bool Append)> HeadersToAdd { get; init; } = [];

    public ImmutableArray<string> HeadersToRemove { get; init; } = [];

    public string GrpcServiceName { get; init; } = "";

    // TCP.
    public byte[]? Send { get; init; }

    /// <summary>TCP, and HTTP bodies: each block must appear in the answer, in order (Envoy's fuzzy payload match).</summary>
    public ImmutableArray<byte[]> Receive { get; init; } = [];

    /// <summary><c>event_log_path</c>: where health check events are appended; null = no event log.</summary>
    public string? EventLogPath { get; init; }

    /// <summary><c>always_log_health_check_failures</c>: log every failure, not only a host's first check.</summary>
    public bool AlwaysLogFailures { get; init; }

    /// <summary><c>event_logger</c>: the files of its <c>envoy.health_check.event_sinks.file</c> sinks (each gets every event).</summary>
    public ImmutableArray<string> EventSinkPaths { get; init; } = [];

    /// <summary><c>always_log_health_check_success</c>: log each passing check that does not change the host's health.</summary>
    public bool AlwaysLogSuccess { get; init; }

    /// <summary>Every file events go to: event_log_path, then each file sink.</summary>
    public IEnumerable<string> EventFiles => EventLogPath is { } path ? [path, .. EventSinkPaths] : EventSinkPaths;

    /// <summary>The <c>event_logger</c> file sinks' paths; another sink type is an error (not supported yet).</summary>
    private static ImmutableArray<string> EventSinks(HealthCheckConfig config, string path, ConfigErrors errors)
    {
        var paths = ImmutableArray.CreateBuilder<string>();
        for (var i = 0; i < config.EventLogger.Count; i++)
        {
            var typed = config.EventLogger[i].TypedConfig;
            var at = FieldPath.Field(FieldPath.Index(FieldPath.Field(path, "event_logger"), i), "typed_config");
            if (typed is not null && typed.Is(FileSink.Descriptor))
            {
                var sink = typed.Unpack<FileSink>();
                if (sink.EventLogPath.Length == 0)
                {
                    errors.Add(FieldPath.Field(at, "event_log_path"), "the file sink needs an event_log_path");
                }
                else
                {
                    paths.Add(sink.EventLogPath);
                }
            }
            else
            {
                errors.Add(at, "only the envoy.health_check.event_sinks.file event sink is supported");
            }
        }

        return paths.ToImmutable();
    }

    public static HealthCheckSettings? From(HealthCheckConfig config, string path, ConfigErrors errors)
    {
        var interval = config.Interval.ToTimeSpan();
        var unhealthyInterval = config.UnhealthyInterval?.ToTimeSpan() ?? interval;
        var noTraffic = config.NoTrafficInterval?.ToTimeSpan() ?? TimeSpan.FromSeconds(60);
        var settings = new HealthCheckSettings
        {
            Timeout = config.Timeout.ToTimeSpan(),
            Interval = interval,
            InitialJitter = config.InitialJitter?.ToTimeSpan() ?? TimeSpan.Zero,
            IntervalJitter = config.IntervalJitter?.ToTimeSpan() ?? TimeSpan.Zero,
            IntervalJitterPercent = config.IntervalJitterPercent,
            UnhealthyThreshold = (int)Math.Max(1, config.UnhealthyThreshold ?? 1),
            HealthyThreshold = (int)Math.Max(1, config.HealthyThreshold ?? 1),
            ReuseConnection = config.ReuseConnection ?? true,
#pragma warning disable CS0612 // event_log_path is deprecated in favour of event_logger; Envoy still honours it.
            EventLogPath = config.EventLogPath.Length > 0 ? config.EventLogPath : null,
#pragma warning restore CS0612
            AlwaysLogFailures = config.AlwaysLogHealthCheckFailures,
            AlwaysLogSuccess = config.AlwaysLogHealthCheckSuccess,
            EventSinkPaths = EventSinks(config, path, errors),
            NoTrafficInterval = noTraffic,
            NoTrafficHealthyInterval = config.NoTrafficHealthyInterval?.ToTimeSpan() ?? noTraffic,
            UnhealthyInterval = unhealthyInterval,
            UnhealthyEdgeInterval = config.UnhealthyEdgeInterval?.ToTimeSpan() ?? unhealthyInterval,
            HealthyEdgeInterval = config.HealthyEdgeInterval?.ToTimeSpan() ?? interval,
        };

        switch (config.HealthCheckerCase)
        {
            case HealthCheckConfig.HealthCheckerOneofCase.HttpHealthCheck:
                var http = config.HttpHealthCheck;
                var httpPath = FieldPath.Field(path, "http_health_check");
                if (http.CodecClientType == Envoy.Type.V3.CodecClientType.Http3)
                {
                    errors.Add(FieldPath.Field(httpPath, "codec_client_type"), "HTTP/3 health checks are not supported yet");
                    return null;
                }

                var expected = ImmutableArray.CreateBuilder<(long, long)>();
                foreach (var range in http.ExpectedStatuses)
                {
                    expected.Add((range.Start, range.End));
                }

                var retriable = ImmutableArray.CreateBuilder<(long, long)>();
                foreach (var range in http.RetriableStatuses)
                {
                    retriable.Add((range.Start, range.End));
                }

                var add = ImmutableArray.CreateBuilder<(string, string, bool)>();
                foreach (var option in http.RequestHeadersToAdd)
                {
                    add.Add((option.Header.Key, option.Header.Value, option.AppendAction == Envoy.Config.Core.V3.HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd));
                }

                return settings with
                {
                    Type = Kind.Http,
                    Host = http.Host,
                    Path = http.Path,
                    Method = http.Method == Envoy.Config.Core.V3.RequestMethod.MethodUnspecified ? "GET" : http.Method.ToString().ToUpperInvariant(),
                    Http2 = http.CodecClientType == Envoy.Type.V3.CodecClientType.Http2,
                    ExpectedStatuses = expected.Count == 0 ? [(200, 201)] : expected.ToImmutable(),
                    HeadersToAdd = add.ToImmutable(),
                    HeadersToRemove = [.. http.RequestHeadersToRemove],
                    RetriableStatuses = retriable.ToImmutable(),
                    Receive = Payloads(http.Receive, FieldPath.Field(httpPath, "receive"), errors),
                    ResponseBufferSize = (long)(http.ResponseBufferSize ?? 1024),
                    ServiceNameMatcher = http.ServiceNameMatcher is { } matcher
                        ? Legate.Router.Matching.CompiledStringMatcher.Create(matcher, errors, FieldPath.Field(httpPath, "service_name_matcher"))
                        : null,
                };
            case HealthCheckConfig.HealthCheckerOneofCase.TcpHealthCheck:
                var tcp = config.TcpHealthCheck;
                var tcpPath = FieldPath.Field(path, "tcp_health_check");
                var send = tcp.Send is null ? null : Payload(tcp.Send, FieldPath.Field(tcpPath, "send"), errors);
                return settings with { Type = Kind.Tcp, Send = send, Receive = Payloads(tcp.Receive, FieldPath.Field(tcpPath, "receive"), errors) };
            case HealthCheckConfig.HealthCheckerOneofCase.GrpcHealthCheck:
                var grpc = config.GrpcHealthCheck;
                return settings with { Type = Kind.Grpc, GrpcServiceName = grpc.ServiceName, Host = grpc.Authority, Http2 = true };
            default:
                errors.Add(FieldPath.Field(path, "custom_health_check"), "custom health checkers are not supported yet");
                return null;
        }
    }

    private static ImmutableArray<byte[]> Payloads(IList<HealthCheckConfig.Types.Payload> payloads, string path, ConfigErrors errors)
    {
        var blocks = ImmutableArray.CreateBuilder<byte[]>();
        for (var i = 0; i < payloads.Count; i++)
        {
            if (Payload(payloads[i], FieldPath.Index(path, i), errors) is { } bytes)
            {
                blocks.Add(bytes);
            }
        }

        return blocks.ToImmutable();
    }

    private static byte[]? Payload(HealthCheckConfig.Types.Payload payload, string path, ConfigErrors errors)
    {
        if (payload.PayloadCase == HealthCheckConfig.Types.Payload.PayloadOneofCase.Binary)
        {
            return payload.Binary.ToByteArray();
        }

        try
        {
            return Convert.FromHexString(payload.Text);
        }
        catch (FormatException)
        {
            errors.Add(FieldPath.Field(path, "text"), $"\"{payload.Text}\" is not a hex string");
            return null;
        }
    }
}
