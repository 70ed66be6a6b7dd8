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

    /// <summary>HTTP/2's default SETTINGS_HEADER_TABLE_SIZE, and the largest the upstream client's decoder takes.</summary>
    public const uint DefaultHpackTableSize = 4096;

    /// <summary>HTTP/2 <c>hpack_table_size</c> when below <see cref="DefaultHpackTableSize"/> (announced to the upstream), else null.</summary>
    public uint? Http2HpackTableSize { get; private set; }

    /// <summary>HTTP/2 <c>max_concurrent_streams</c> per upstream connection (Envoy default 2^31-1).</summary>
    public int Http2MaxConcurrentStreams { get; private set; } = int.MaxValue;

    /// <summary>HTTP/2 <c>initial_stream_window_size</c> for upstream streams, clamped to what the client allows; null = the client's default.</summary>
    public int? Http2InitialStreamWindowSize { get; private set; }

    /// <summary><c>http2_protocol_options.connection_keepalive</c>: PING delay and timeout, or null for no PINGs.</summary>
    public (TimeSpan Delay, TimeSpan Timeout)? Http2Keepalive { get; private set; }

    /// <summary>The client's largest per-stream receive window (.NET's default maximum, 16 MiB).</summary>
    internal const int MaxHttp2StreamWindowSize = 16 * 1024 * 1024;

    /// <summary>The compiled <c>transport_socket</c> when it is <c>envoy.transport_sockets.tls</c>; null = plaintext.</summary>
    public Legate.Tls.ClientTlsContext? Tls { get; private set; }

    /// <summary>
    /// The <c>envoy.transport_sockets.upstream_proxy_protocol</c> wrapped around the cluster's
    /// <c>transport_socket</c> (whose inner socket is <see cref="Tls"/> or plaintext), or null.
    /// </summary>
    public Legate.Extensions.TransportSockets.ProxyProtocol.UpstreamProxyProtocol? ProxyProtocol { get; private set; }

    /// <summary><c>upstream_http_protocol_options.auto_sni</c>: the SNI comes from the request's host (or <see cref="AutoSniHeader"/>).</summary>
    public bool AutoSni { get; private set; }

    /// <summary><c>upstream_http_protocol_options.auto_san_validation</c>: the server certificate must carry that host name.</summary>
    public bool AutoSanValidation { get; private set; }

    /// <summary><c>override_auto_sni_header</c>, or null for the host/authority.</summary>
    public string? AutoSniHeader { get; private set; }

    /// <summary>True when connections differ per request (auto_sni / auto_san_validation over TLS): pools are kept per server name.</summary>
    public bool PoolsPerServerName => _anyTls && (AutoSni || AutoSanValidation);

    /// <summary><c>transport_socket_matches</c>, in order; empty when there are none.</summary>
    public TransportSocketMatch[] TransportSocketMatches { get; private set; } = [];

    /// <summary>Completes when the SDS secrets of every TLS context of the cluster have arrived (or timed out): the cluster warms on it.</summary>
    public Task SecretsReady =>
        Task.WhenAll(TransportSocketMatches.Select(m => m.Tls).Append(Tls).OfType<Legate.Tls.ClientTlsContext>().Select(t => t.Ready));

    // cluster.<name>.default.total_match_count: hosts that matched no entry of transport_socket_matches.
    private Counter? _defaultMatchCount;
    private bool _anyTls;

    /// <summary>
    /// The TLS context connections to <paramref name="host"/> use: the first
    /// <c>transport_socket_matches</c> entry its metadata matches, else <c>transport_socket</c>
    /// (null = plaintext). Called when a host's pool is created; each call is counted.
    /// </summary>
    public Legate.Tls.ClientTlsContext? TlsFor(Host host)
    {
        if (TransportSocketMatches.Length == 0)
        {
            return Tls;
        }

        foreach (var match in TransportSocketMatches)
        {
            if (match.Matches(host.Metadata))
            {
                match.TotalMatchCount.Inc();
                return match.Tls;
            }
        }

        _defaultMatchCount?.Inc();
        return Tls;
    }

    /// <summary>The cluster is gone: its TLS contexts (the cluster's and each transport_socket_matches entry's) release their SDS secrets.</summary>
    public void ReleaseSecrets()
    {
        Tls?.ReleaseSecrets();
        foreach (var match in TransportSocketMatches)
        {
            match.Tls?.ReleaseSecrets();
        }
    }

    public static ClusterInfo Create(ClusterConfig config, string path, ConfigErrors errors, StatsStore? stats, Legate.Tls.SecretManager? secrets = null)
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

        if (config.PerConnectionBufferLimitBytes is { } limit)
        {
            info.BufferLimitBytes = (int)Math.Min(limit, int.MaxValue);
        }

        if (config.TypedExtensionProtocolOptions.TryGetValue(HttpProtocolOptionsName, out var any) && any.Is(UpstreamHttpOptions.Descriptor))
        {
            info.ApplyUpstreamHttpOptions(any.Unpack<UpstreamHttpOptions>(), FieldPath.Key(FieldPath.Field(path, "typed_extension_protocol_options"), HttpProtocolOptionsName), errors);
        }

#pragma warning disable CS0612 // deprecated cluster-level field, still honoured by Envoy
        if (config.UpstreamHttpProtocolOptions is { } legacyUpstream)
        {
            info.ApplyAutoSni(legacyUpstream);
        }
#pragma warning restore CS0612

        var tlsStats = new Lazy<Legate.Tls.TlsStats>(() => new Legate.Tls.TlsStats(store, "cluster." + config.Name + "."));
        info.Tls = CompileTransportSocket(config.TransportSocket, FieldPath.Field(path, "transport_socket"), errors, secrets, tlsStats, info);
        info._anyTls = info.Tls is not null;
        if (config.TransportSocketMatches.Count > 0)
        {
            var matches = new TransportSocketMatch[config.TransportSocketMatches.Count];
            for (var i = 0; i < matches.Length; i++)
            {
                var match = config.TransportSocketMatches[i];
                var matchPath = FieldPath.Index(FieldPath.Field(path, "transport_socket_matches"), i);
                var tls = CompileTransportSocket(match.TransportSocket, FieldPath.Field(matchPath, "transport_socket"), errors, secrets, tlsStats, proxyProtocolOwner: null);
                info._anyTls |= tls is not null;
                matches[i] = new TransportSocketMatch(match.Name, match.Match ?? new Struct(), tls, store.Counter("cluster." + config.Name + "." + match.Name + ".total_match_count"));
            }

            info.TransportSocketMatches = matches;
            info._defaultMatchCount = store.Counter("cluster." + config.Name + ".default.total_match_count");
        }

        return info;
    }

    /// <summary>
    /// A transport socket: <c>envoy.transport_sockets.tls</c> compiled, raw_buffer (or none) = null.
    /// <c>envoy.transport_sockets.upstream_proxy_protocol</c> (the cluster's own socket only) is set
    /// on <paramref name="proxyProtocolOwner"/> and its inner socket compiled in its place.
    /// </summary>
    private static Legate.Tls.ClientTlsContext? CompileTransportSocket(
        Envoy.Config.Core.V3.TransportSocket? socket, string path, ConfigErrors errors, Legate.Tls.SecretManager? secrets, Lazy<Legate.Tls.TlsStats> stats, ClusterInfo? proxyProtocolOwner)
    {
        if (socket?.TypedConfig is { } wrapper && wrapper.Is(Envoy.Extensions.TransportSockets.ProxyProtocol.V3.ProxyProtocolUpstreamTransport.Descriptor))
        {
            var typedPath = FieldPath.Field(path, "typed_config");
            if (proxyProtocolOwner is null || proxyProtocolOwner.ProxyProtocol is not null)
            {
                errors.Add(typedPath, "envoy.transport_sockets.upstream_proxy_protocol is supported as a cluster's transport_socket only (not nested, not in transport_socket_matches) yet");
                return null;
            }

            if (proxyProtocolOwner.Protocol != UpstreamProtocol.Http1)
            {
                errors.Add(typedPath, "envoy.transport_sockets.upstream_proxy_protocol is supported on TCP (tcp_proxy) and HTTP/1.1 clusters only, not on HTTP/2 or downstream-protocol clusters yet");
                return null;
            }

            var upstream = wrapper.Unpack<Envoy.Extensions.TransportSockets.ProxyProtocol.V3.ProxyProtocolUpstreamTransport>();
            proxyProtocolOwner.ProxyProtocol = Legate.Extensions.TransportSockets.ProxyProtocol.UpstreamProxyProtocol.Compile(upstream.Config);
            return CompileTransportSocket(upstream.TransportSocket, FieldPath.Field(typedPath, "transport_socket"), errors, secrets, stats, proxyProtocolOwner);
        }

        if (socket?.TypedConfig is { } downstream && downstream.Is(Envoy.Extensions.TransportSockets.Tls.V3.DownstreamTlsContext.Descriptor))
        {
            errors.Add(FieldPath.Field(path, "typed_config"), "a cluster's envoy.transport_sockets.tls takes an UpstreamTlsContext, not a DownstreamTlsContext");
            return null;
        }

        if (socket?.TypedConfig is not { } transport || !transport.Is(Envoy.Extensions.TransportSockets.Tls.V3.UpstreamTlsContext.Descriptor))
        {
            return null;
        }

        return Legate.Tls.ClientTlsContext.Compile(
            transport.Unpack<Envoy.Extensions.TransportSockets.Tls.V3.UpstreamTlsContext>(), FieldPath.Field(path, "typed_config"), errors,
            secrets ?? Legate.Tls.SecretManager.Empty, stats.Value);
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

        if (options.UpstreamHttpProtocolOptions is { } upstream)
        {
            ApplyAutoSni(upstream);
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
        // At most this many streams per connection (the pool opens more connections beyond), or the
        // upstream's own SETTINGS_MAX_CONCURRENT_STREAMS when that is lower.
        Http2MaxConcurrentStreams = (int)Math.Min(options.MaxConcurrentStreams ?? int.MaxValue, int.MaxValue);

        if (options.InitialStreamWindowSize is { } window)
        {
            Http2InitialStreamWindowSize = (int)Math.Clamp(window, 65535u, (uint)MaxHttp2StreamWindowSize);
        }

        Http2Keepalive = Legate.Http.Http2.Http2KeepAlive.From(options.ConnectionKeepalive);
        if (options.InitialConnectionWindowSize is not null)
        {
            errors.Warn(FieldPath.Field(path, "initial_connection_window_size"), "the upstream HTTP/2 client does not configure its connection window; this field is ignored for upstream connections");
        }

        // The client's decoder table is HTTP/2's default 4096 bytes (also Envoy's default): a smaller
        // value is announced to the upstream in the client's SETTINGS; a larger one cannot be.
        if (options.HpackTableSize is { } tableSize)
        {
            if (tableSize < DefaultHpackTableSize)
            {
                Http2HpackTableSize = tableSize;
            }
            else if (tableSize > DefaultHpackTableSize)
            {
                errors.Warn(FieldPath.Field(path, "hpack_table_size"), "the upstream HTTP/2 client's HPACK table is at most 4096 bytes; a larger value acts as 4096 on upstream connections");
            }
        }
    }

    private void ApplyAutoSni(Envoy.Config.Core.V3.UpstreamHttpProtocolOptions options)
    {
        AutoSni = options.AutoSni;
        AutoSanValidation = options.AutoSanValidation;
        AutoSniHeader = options.OverrideAutoSniHeader.Length > 0 ? options.OverrideAutoSniHeader.ToLowerInvariant() : null;
    }

    /// <summary>
    /// The host name auto_sni / auto_san_validation take from a request: the override header's
    /// value, else the host/authority without its port; null when there is none.
    /// </summary>
    public string? AutoServerName(Legate.Http.Http1.HttpRequestHead head)
    {
        var value = AutoSniHeader is { } header ? head.Headers.GetValue(header) : (head.Authority.IsEmpty ? null : System.Text.Encoding.Latin1.GetString(head.Authority));
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        // host:port, [v6]:port → the host part.
        if (value[0] == '[')
        {
            var end = value.IndexOf(']', StringComparison.Ordinal);
            return end > 0 ? value[1..end] : value;
        }

        var colon = value.LastIndexOf(':');
        return colon > 0 && value.IndexOf(':', StringComparison.Ordinal) == colon ? value[..colon] : value;
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
