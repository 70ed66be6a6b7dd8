using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Stats;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;
using UpstreamHttpOptions = Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions;

namespace Legate.Upstream;

/// <summary>
/// The per-cluster settings and stats the data path reads (Envoy's ClusterInfo): upstream
/// protocol, connection limits and timeouts, buffer limit. Immutable; replaced with the cluster.
/// </summary>
internal sealed class ClusterInfo
{
    /// <summary>The typed_extension_protocol_options key (and type) of the upstream HTTP options.</summary>
    public const string HttpProtocolOptionsName = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

    /// <summary>Envoy's default per-connection buffer limit.</summary>
    public const int DefaultBufferLimitBytes = 1024 * 1024;

    private ClusterInfo(string name, ClusterStats stats, CircuitBreakers circuitBreakers)
    {
        Name = name;
        Stats = stats;
        CircuitBreakers = circuitBreakers;
    }

    /// <summary>The cluster's <c>circuit_breakers</c>, per routing priority.</summary>
    public CircuitBreakers CircuitBreakers { get; }

    public string Name { get; }

    public ClusterStats Stats { get; }

    public UpstreamProtocol Protocol { get; private set; } = UpstreamProtocol.Http1;

    /// <summary>0 = unlimited.</summary>
    public int MaxRequestsPerConnection { get; private set; }

    /// <summary>Idle upstream connections close after this (Envoy default 1 h); zero disables.</summary>
    public TimeSpan IdleTimeout { get; private set; } = TimeSpan.FromHours(1);

    public int BufferLimitBytes { get; private set; } = DefaultBufferLimitBytes;

    /// <summary>HTTP/1.1 trailers are sent upstream only with <c>enable_trailers</c>.</summary>
    public bool Http1EnableTrailers { get; private set; }

    /// <summary>HTTP/2 <c>max_concurrent_streams</c> per upstream connection (Envoy default 2^31-1).</summary>
    public int Http2MaxConcurrentStreams { get; private set; } = int.MaxValue;

    /// <summary>HTTP/2 <c>initial_stream_window_size</c> for upstream streams, clamped to what the client allows; null = the client's default.</summary>
    public int? Http2InitialStreamWindowSize { get; private set; }

    /// <summary>The client's largest per-stream receive window (.NET's default maximum, 16 MiB).</summary>
    internal const int MaxHttp2StreamWindowSize = 16 * 1024 * 1024;

    public static ClusterInfo Create(ClusterConfig config, string path, ConfigErrors errors, StatsStore? stats)
    {
        var store = stats ?? new StatsStore();
        var info = new ClusterInfo(config.Name, new ClusterStats(store, config.Name), new CircuitBreakers(store, config.Name, config.CircuitBreakers));
#pragma warning disable CS0612 // The cluster-level protocol fields are deprecated, but Envoy still honours them.
        if (config.Http2ProtocolOptions is { } legacyHttp2)
        {
            info.Protocol = UpstreamProtocol.Http2;
            info.ApplyHttp2(legacyHttp2, FieldPath.Field(path, "http2_protocol_options"), errors);
        }

        if (config.HttpProtocolOptions is { } legacyHttp1)
        {
            info.Http1EnableTrailers = legacyHttp1.EnableTrailers;
        }

        if (config.CommonHttpProtocolOptions is { } legacyCommon)
        {
            info.ApplyCommon(legacyCommon);
            WarnUpstreamMaxStreamDuration(legacyCommon, FieldPath.Field(path, "common_http_protocol_options"), errors);
        }

        if (config.MaxRequestsPerConnection is { } legacyMax)
        {
            info.MaxRequestsPerConnection = (int)Math.Min(legacyMax, int.MaxValue);
        }

        if (config.ProtocolSelection == ClusterConfig.Types.ClusterProtocolSelection.UseDownstreamProtocol)
        {
            info.Protocol = UpstreamProtocol.UseDownstream;
        }
#pragma warning restore CS0612

        if (config.TransportSocket?.TypedConfig is { } transport && transport.Is(Envoy.Extensions.TransportSockets.Tls.V3.UpstreamTlsContext.Descriptor))
        {
            errors.Add(FieldPath.Field(path, "transport_socket"), "\"envoy.transport_sockets.tls\" (type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext) is not supported yet on clusters");
        }

        if (config.PerConnectionBufferLimitBytes is { } limit)
        {
            info.BufferLimitBytes = (int)Math.Min(limit, int.MaxValue);
        }

        if (config.TypedExtensionProtocolOptions.TryGetValue(HttpProtocolOptionsName, out var any) && any.Is(UpstreamHttpOptions.Descriptor))
        {
            info.ApplyUpstreamHttpOptions(any.Unpack<UpstreamHttpOptions>(), FieldPath.Key(FieldPath.Field(path, "typed_extension_protocol_options"), HttpProtocolOptionsName), errors);
        }

        return info;
    }

    /// <summary>
    /// The field table honours max_stream_duration and max_connection_duration for the connection
    /// manager (the message type is shared); on a cluster they are not implemented yet.
    /// </summary>
    private static void WarnUpstreamMaxStreamDuration(Envoy.Config.Core.V3.HttpProtocolOptions common, string path, ConfigErrors errors)
    {
        if (common.MaxStreamDuration is not null)
        {
            errors.Warn(FieldPath.Field(path, "max_stream_duration"), "field envoy.config.core.v3.HttpProtocolOptions.max_stream_duration is parsed but not implemented yet for upstream streams; it is ignored");
        }

        if (common.MaxConnectionDuration is not null)
        {
            errors.Warn(FieldPath.Field(path, "max_connection_duration"), "field envoy.config.core.v3.HttpProtocolOptions.max_connection_duration is parsed but not implemented yet for upstream connections; it is ignored");
        }
    }

    private void ApplyUpstreamHttpOptions(UpstreamHttpOptions options, string path, ConfigErrors errors)
    {
        if (options.CommonHttpProtocolOptions is { } common)
        {
            ApplyCommon(common);
            WarnUpstreamMaxStreamDuration(common, FieldPath.Field(path, "common_http_protocol_options"), errors);
        }

        switch (options.UpstreamProtocolOptionsCase)
        {
            case UpstreamHttpOptions.UpstreamProtocolOptionsOneofCase.ExplicitHttpConfig:
                var explicitConfig = options.ExplicitHttpConfig;
                switch (explicitConfig.ProtocolConfigCase)
                {
                    case UpstreamHttpOptions.Types.ExplicitHttpConfig.ProtocolConfigOneofCase.Http2ProtocolOptions:
                        Protocol = UpstreamProtocol.Http2;
                        ApplyHttp2(explicitConfig.Http2ProtocolOptions, FieldPath.Field(FieldPath.Field(path, "explicit_http_config"), "http2_protocol_options"), errors);
                        break;
                    case UpstreamHttpOptions.Types.ExplicitHttpConfig.ProtocolConfigOneofCase.Http3ProtocolOptions:
                        errors.Add(FieldPath.Field(FieldPath.Field(path, "explicit_http_config"), "http3_protocol_options"), "upstream HTTP/3 is not implemented yet");
                        break;
                    default:
                        Protocol = UpstreamProtocol.Http1;
                        Http1EnableTrailers = explicitConfig.HttpProtocolOptions?.EnableTrailers ?? false;
                        break;
                }

                break;
            case UpstreamHttpOptions.UpstreamProtocolOptionsOneofCase.UseDownstreamProtocolConfig:
                Protocol = UpstreamProtocol.UseDownstream;
                Http1EnableTrailers = options.UseDownstreamProtocolConfig.HttpProtocolOptions?.EnableTrailers ?? false;
                if (options.UseDownstreamProtocolConfig.Http2ProtocolOptions is { } downstreamHttp2)
                {
                    ApplyHttp2(downstreamHttp2, FieldPath.Field(FieldPath.Field(path, "use_downstream_protocol_config"), "http2_protocol_options"), errors);
                }
                break;
            case UpstreamHttpOptions.UpstreamProtocolOptionsOneofCase.AutoConfig:
                // Without TLS there is no ALPN to negotiate with; Envoy's auto_config then speaks HTTP/1.1.
                Protocol = UpstreamProtocol.Http1;
                Http1EnableTrailers = options.AutoConfig.HttpProtocolOptions?.EnableTrailers ?? false;
                break;
        }
    }

    /// <summary>
    /// The upstream HTTP/2 settings the client (SocketsHttpHandler) can honour; the others warn,
    /// since the same message's fields are honoured downstream and the field table cannot tell.
    /// </summary>
    private void ApplyHttp2(Envoy.Config.Core.V3.Http2ProtocolOptions options, string path, ConfigErrors errors)
    {
        Http2MaxConcurrentStreams = (int)Math.Min(options.MaxConcurrentStreams ?? int.MaxValue, int.MaxValue);
        if (options.MaxConcurrentStreams is not null)
        {
            errors.Warn(FieldPath.Field(path, "max_concurrent_streams"), "upstream HTTP/2 does not limit streams per connection itself yet; the upstream's SETTINGS_MAX_CONCURRENT_STREAMS is respected (another connection opens when it is reached)");
        }

        if (options.InitialStreamWindowSize is { } window)
        {
            Http2InitialStreamWindowSize = (int)Math.Clamp(window, 65535u, (uint)MaxHttp2StreamWindowSize);
        }

        if (options.InitialConnectionWindowSize is not null)
        {
            errors.Warn(FieldPath.Field(path, "initial_connection_window_size"), "the upstream HTTP/2 client does not configure its connection window; this field is ignored for upstream connections");
        }
    }

    private void ApplyCommon(Envoy.Config.Core.V3.HttpProtocolOptions common)
    {
        if (common.IdleTimeout is { } idle)
        {
            IdleTimeout = idle.ToTimeSpan();
        }

        if (common.MaxRequestsPerConnection is { } max)
        {
            MaxRequestsPerConnection = (int)Math.Min(max, int.MaxValue);
        }
    }
}
