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

    private ClusterInfo(string name, ClusterStats stats)
    {
        Name = name;
        Stats = stats;
    }

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

    public static ClusterInfo Create(ClusterConfig config, string path, ConfigErrors errors, StatsStore? stats)
    {
        var info = new ClusterInfo(config.Name, new ClusterStats(stats ?? new StatsStore(), config.Name));
#pragma warning disable CS0612 // The cluster-level protocol fields are deprecated, but Envoy still honours them.
        if (config.Http2ProtocolOptions is { } legacyHttp2)
        {
            info.Protocol = UpstreamProtocol.Http2;
            info.Http2MaxConcurrentStreams = (int)Math.Min(legacyHttp2.MaxConcurrentStreams ?? int.MaxValue, int.MaxValue);
        }

        if (config.HttpProtocolOptions is { } legacyHttp1)
        {
            info.Http1EnableTrailers = legacyHttp1.EnableTrailers;
        }

        if (config.CommonHttpProtocolOptions is { } legacyCommon)
        {
            info.ApplyCommon(legacyCommon);
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

        if (config.PerConnectionBufferLimitBytes is { } limit)
        {
            info.BufferLimitBytes = (int)Math.Min(limit, int.MaxValue);
        }

        if (config.TypedExtensionProtocolOptions.TryGetValue(HttpProtocolOptionsName, out var any) && any.Is(UpstreamHttpOptions.Descriptor))
        {
            info.ApplyUpstreamHttpOptions(any.Unpack<UpstreamHttpOptions>(), FieldPath.Key(FieldPath.Field(path, "typed_extension_protocol_options"), HttpProtocolOptionsName), errors);
        }

        if (info.Protocol != UpstreamProtocol.Http1)
        {
            errors.Warn(path, $"cluster '{config.Name}' asks for upstream {(info.Protocol == UpstreamProtocol.Http2 ? "HTTP/2" : "the downstream protocol")}, which is not implemented yet; requests go upstream as HTTP/1.1");
        }

        return info;
    }

    private void ApplyUpstreamHttpOptions(UpstreamHttpOptions options, string path, ConfigErrors errors)
    {
        if (options.CommonHttpProtocolOptions is { } common)
        {
            ApplyCommon(common);
        }

        switch (options.UpstreamProtocolOptionsCase)
        {
            case UpstreamHttpOptions.UpstreamProtocolOptionsOneofCase.ExplicitHttpConfig:
                var explicitConfig = options.ExplicitHttpConfig;
                switch (explicitConfig.ProtocolConfigCase)
                {
                    case UpstreamHttpOptions.Types.ExplicitHttpConfig.ProtocolConfigOneofCase.Http2ProtocolOptions:
                        Protocol = UpstreamProtocol.Http2;
                        Http2MaxConcurrentStreams = (int)Math.Min(explicitConfig.Http2ProtocolOptions.MaxConcurrentStreams ?? int.MaxValue, int.MaxValue);
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
                break;
            case UpstreamHttpOptions.UpstreamProtocolOptionsOneofCase.AutoConfig:
                // Without TLS there is no ALPN to negotiate with; Envoy's auto_config then speaks HTTP/1.1.
                Protocol = UpstreamProtocol.Http1;
                Http1EnableTrailers = options.AutoConfig.HttpProtocolOptions?.EnableTrailers ?? false;
                break;
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
