using System.Text;
using Legate.Config;
using Legate.Http.Http1;
using Legate.Server.Logging;
using CoreHttpProtocolOptions = Envoy.Config.Core.V3.HttpProtocolOptions;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Http;

/// <summary>
/// A compiled <c>envoy.filters.network.http_connection_manager</c> config: everything a
/// connection needs to run streams (codec settings, timeouts, header handling, the route table,
/// the HTTP filter factories, stats). Immutable and shared by every connection of its filter chain.
/// </summary>
internal sealed class HttpConnectionManagerConfig
{
    /// <summary>Envoy's default <c>server_name</c>.</summary>
    public const string DefaultServerName = "envoy";

    /// <summary>Envoy's default per-connection buffer limit (listener <c>per_connection_buffer_limit_bytes</c>).</summary>
    public const int DefaultBufferLimitBytes = 1024 * 1024;

    private readonly RouteTable _routes;

    private HttpConnectionManagerConfig(Hcm config, string statPrefix, RouteTable routes, HttpFilterFactory[] filters, HttpConnectionManagerStats stats, Logger log, int bufferLimitBytes)
    {
        Proto = config;
        StatPrefix = statPrefix;
        _routes = routes;
        FilterFactories = filters;
        Stats = stats;
        Log = log;
        BufferLimitBytes = bufferLimitBytes;
        ServerName = Encoding.ASCII.GetBytes(config.ServerName.Length > 0 ? config.ServerName : DefaultServerName);
        ServerHeaderTransformation = config.ServerHeaderTransformation;
        StripAnyHostPort = config.StripPortModeCase == Hcm.StripPortModeOneofCase.StripAnyHostPort && config.StripAnyHostPort;
        StripMatchingHostPort = config.StripMatchingHostPort;
        StripTrailingHostDot = config.StripTrailingHostDot;
        AppendXForwardedPort = config.AppendXForwardedPort;
        KeepIpv4MappedRemoteAddress = config.RepresentIpv4RemoteAddressAsIpv4MappedIpv6;
        CodecType = config.CodecType;
        GenerateRequestId = config.GenerateRequestId ?? true;
        PreserveExternalRequestId = config.PreserveExternalRequestId;
        AlwaysSetRequestIdInResponse = config.AlwaysSetRequestIdInResponse;
        UseRemoteAddress = config.UseRemoteAddress ?? false;
        XffNumTrustedHops = (int)Math.Min(config.XffNumTrustedHops, int.MaxValue);
        SkipXffAppend = config.SkipXffAppend;
        SchemeToOverwrite = config.SchemeHeaderTransformation?.SchemeToOverwrite is { Length: > 0 } scheme ? scheme : null;
        Via = config.Via.Length > 0 ? Encoding.ASCII.GetBytes(config.Via) : null;
        NormalizePath = config.NormalizePath ?? false;
        MergeSlashes = config.MergeSlashes;
        PathWithEscapedSlashesAction = config.PathWithEscapedSlashesAction;

        var common = config.CommonHttpProtocolOptions;
        var http1 = config.HttpProtocolOptions;
        IdleTimeout = common?.IdleTimeout is { } idle ? idle.ToTimeSpan() : TimeSpan.FromHours(1);
        MaxStreamDuration = common?.MaxStreamDuration?.ToTimeSpan() ?? TimeSpan.Zero;
        MaxConnectionDuration = common?.MaxConnectionDuration?.ToTimeSpan() ?? TimeSpan.Zero;
        MaxRequestsPerConnection = (int)Math.Min(common?.MaxRequestsPerConnection ?? 0, int.MaxValue);
        StreamIdleTimeout = config.StreamIdleTimeout is { } streamIdle ? streamIdle.ToTimeSpan() : TimeSpan.FromMinutes(5);
        RequestTimeout = config.RequestTimeout?.ToTimeSpan() ?? TimeSpan.Zero;
        RequestHeadersTimeout = config.RequestHeadersTimeout?.ToTimeSpan() ?? TimeSpan.Zero;
        DrainTimeout = config.DrainTimeout is { } drain ? drain.ToTimeSpan() : TimeSpan.FromSeconds(5);
        DelayedCloseTimeout = config.DelayedCloseTimeout is { } delayedClose ? delayedClose.ToTimeSpan() : TimeSpan.FromSeconds(1);
        Proxy100Continue = config.Proxy100Continue;
        ParserOptions = new Http1ParserOptions
        {
            MaxHeadersKb = (int)(config.MaxRequestHeadersKb ?? Http1ParserOptions.DefaultMaxRequestHeadersKb),
            MaxHeadersCount = (int)Math.Min(common?.MaxHeadersCount ?? Http1ParserOptions.DefaultMaxHeadersCount, int.MaxValue),
            HeadersWithUnderscoresAction = (common?.HeadersWithUnderscoresAction ?? CoreHttpProtocolOptions.Types.HeadersWithUnderscoresAction.Allow) switch
            {
                CoreHttpProtocolOptions.Types.HeadersWithUnderscoresAction.RejectRequest => HeadersWithUnderscoresAction.RejectRequest,
                CoreHttpProtocolOptions.Types.HeadersWithUnderscoresAction.DropHeader => HeadersWithUnderscoresAction.DropHeader,
                _ => HeadersWithUnderscoresAction.Allow,
            },
            AcceptHttp10 = http1?.AcceptHttp10 ?? false,
            DefaultHostForHttp10 = http1 is { DefaultHostForHttp10.Length: > 0 } ? http1.DefaultHostForHttp10 : null,
            AllowChunkedLength = http1?.AllowChunkedLength ?? false,
            EnableTrailers = http1?.EnableTrailers ?? false,
        };

        AddProxyProtocolConnectionState = config.AddProxyProtocolConnectionState ?? true;

        // http_protocol_options' override wins over the connection manager's field (Envoy's order).
        StreamErrorOnInvalidHttpMessage = http1?.OverrideStreamErrorOnInvalidHttpMessage ?? config.StreamErrorOnInvalidHttpMessage ?? false;

        var upgrades = new Dictionary<string, bool>(StringComparer.OrdinalIgnoreCase);
        foreach (var upgrade in config.UpgradeConfigs)
        {
            upgrades[upgrade.UpgradeType] = upgrade.Enabled ?? true;
        }

        Upgrades = upgrades;
    }

    public Hcm Proto { get; }

    public string StatPrefix { get; }

    /// <summary>The route table in force: the inline one, or the RDS provider's latest (read once per stream).</summary>
    public RouteTable Routes => RouteProvider?.Current ?? _routes;

    /// <summary>The RDS provider when the routes come from <c>rds</c>.</summary>
    public Legate.Xds.RdsRouteConfigProvider? RouteProvider { get; init; }

    /// <summary>The HTTP filters in configuration order; the last is terminal (the router).</summary>
    public HttpFilterFactory[] FilterFactories { get; }

    public HttpConnectionManagerStats Stats { get; }

    public Logger Log { get; }

    /// <summary>Drives the stream timeouts.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The server's runtime (weighted_clusters.runtime_key_prefix reads it per request); null in tests without one.</summary>
    public Legate.Runtime.RuntimeLoader? Runtime { get; init; }

    public LocalReplyConfig LocalReplies { get; init; } = LocalReplyConfig.Default;

    /// <summary>The HCM's <c>tracing</c> sampling decision; null when tracing is not configured.</summary>
    public Tracing.TracingDecision? Tracing { get; init; }

    /// <summary>The HCM's tracing provider and span settings; null without a <c>tracing.provider</c>.</summary>
    public Tracing.TracingConfig? TracingConfig { get; init; }

    /// <summary>The HCM's <c>access_log</c> loggers, run when each stream ends.</summary>
    public AccessLog.AccessLogInstance[] AccessLogs { get; init; } = [];

    /// <summary><c>access_log_options.flush_access_log_on_new_request</c>: a DownstreamStart entry when a request's headers are decoded.</summary>
    public bool FlushAccessLogOnNewRequest { get; private init; }

    /// <summary><c>access_log_options.access_log_flush_interval</c>: DownstreamPeriodic entries while a stream runs; zero: none.</summary>
    public TimeSpan AccessLogFlushInterval { get; private init; }

    /// <summary><c>access_log_options.flush_log_on_tunnel_successfully_established</c>: a DownstreamTunnelSuccessfullyEstablished entry when a CONNECT or upgrade tunnel is up.</summary>
    public bool FlushAccessLogOnTunnelEstablished { get; private init; }

    /// <summary>How many body bytes a stream may buffer (Envoy: the listener's per-connection buffer limit).</summary>
    public int BufferLimitBytes { get; }

    /// <summary>The <c>server</c> header value.</summary>
    public byte[] ServerName { get; }

    public Hcm.Types.ServerHeaderTransformation ServerHeaderTransformation { get; }

    public bool StripAnyHostPort { get; }

    public bool StripMatchingHostPort { get; }

    /// <summary><c>strip_trailing_host_dot</c>: <c>example.com.</c> becomes <c>example.com</c> before routing.</summary>
    public bool StripTrailingHostDot { get; }

    /// <summary><c>append_x_forwarded_port</c>: x-forwarded-port carries the port the client connected to.</summary>
    public bool AppendXForwardedPort { get; }

    /// <summary>
    /// <c>represent_ipv4_remote_address_as_ipv4_mapped_ipv6</c>: an IPv4 client of a dual-stack
    /// listener appears in x-forwarded-for and x-envoy-external-address as <c>::ffff:a.b.c.d</c>
    /// instead of <c>a.b.c.d</c>.
    /// </summary>
    public bool KeepIpv4MappedRemoteAddress { get; }

    public Hcm.Types.CodecType CodecType { get; }

    public bool GenerateRequestId { get; }

    public bool PreserveExternalRequestId { get; }

    public bool AlwaysSetRequestIdInResponse { get; }

    public bool UseRemoteAddress { get; }

    public int XffNumTrustedHops { get; }

    /// <summary><c>scheme_header_transformation.scheme_to_overwrite</c> (http or https), or null.</summary>
    public string? SchemeToOverwrite { get; }

    /// <summary>
    /// <c>original_ip_detection_extensions</c>, asked in order when <see cref="UseRemoteAddress"/>
    /// is off; null when none are configured (Envoy's default: x-forwarded-for with
    /// <see cref="XffNumTrustedHops"/>, done inline).
    /// </summary>
    public Extensions.Http.OriginalIpDetection.OriginalIpDetection[]? OriginalIpDetections { get; private init; }

    /// <summary><c>early_header_mutation_extensions</c>, applied before anything else reads the request; null when none.</summary>
    public Extensions.Http.EarlyHeaderMutation.EarlyHeaderMutation? EarlyHeaderMutation { get; private init; }

    public bool SkipXffAppend { get; }

    /// <summary>Where streams that end in a local reply or a reset are remembered for the admin dashboard; null = nowhere.</summary>
    public RecentLocalReplies? RecentLocalReplies { get; init; }

    /// <summary>Which peers are internal (x-envoy-internal, x-request-id trust): <c>internal_address_config</c>.</summary>
    public InternalAddresses InternalAddresses { get; init; } = InternalAddresses.Default;

    /// <summary>
    /// <c>add_user_agent</c>: the service cluster to put in x-envoy-downstream-service-cluster
    /// (and user-agent when absent); null when off.
    /// </summary>
    public string? UserAgent { get; init; }

    /// <summary>The node id, for x-envoy-downstream-service-node with <c>add_user_agent</c>.</summary>
    public string LocalNodeId { get; init; } = string.Empty;

    /// <summary><c>proxy_status_config</c>: the Proxy-Status response header; null without it.</summary>
    public ProxyStatus? ProxyStatus { get; init; }

    /// <summary><c>normalize_path</c> (Envoy's default without runtime override: false).</summary>
    public bool NormalizePath { get; }

    public bool MergeSlashes { get; }

    public Hcm.Types.PathWithEscapedSlashesAction PathWithEscapedSlashesAction { get; }

    /// <summary>Whether any path step runs (so the common case skips the path string).</summary>
    public bool TransformsPath => NormalizePath || MergeSlashes
        || PathWithEscapedSlashesAction is not (Hcm.Types.PathWithEscapedSlashesAction.ImplementationSpecificDefault or Hcm.Types.PathWithEscapedSlashesAction.KeepUnchanged);

    /// <summary>The <c>via</c> value to append, or null.</summary>
    public byte[]? Via { get; }

    /// <summary>Connection idle timeout (no active streams); zero disables.</summary>
    public TimeSpan IdleTimeout { get; }

    public TimeSpan MaxStreamDuration { get; }

    /// <summary>Connections drain after this long (common_http_protocol_options.max_connection_duration); zero = never.</summary>
    public TimeSpan MaxConnectionDuration { get; }

    /// <summary>0 = unlimited.</summary>
    public int MaxRequestsPerConnection { get; }

    /// <summary>No activity on a stream for this long resets it (408 before the response, else a reset); zero disables.</summary>
    public TimeSpan StreamIdleTimeout { get; }

    /// <summary>The whole request must arrive within this; zero disables.</summary>
    public TimeSpan RequestTimeout { get; }

    /// <summary>The request headers must arrive within this of the first byte; zero disables.</summary>
    public TimeSpan RequestHeadersTimeout { get; }

    /// <summary>HTTP/2: the grace period between a drain starting and the GOAWAY that refuses new streams (default 5 s).</summary>
    public TimeSpan DrainTimeout { get; }

    /// <summary>How long a closing HTTP/1.1 connection with unread input waits for the peer's FIN; zero disables.</summary>
    public TimeSpan DelayedCloseTimeout { get; }

    public Http1ParserOptions ParserOptions { get; }

    /// <summary>
    /// HTTP/1.x: <c>stream_error_on_invalid_http_message</c> (or <c>http_protocol_options</c>'
    /// <c>override_stream_error_on_invalid_http_message</c>). False (Envoy's default): a 400 the
    /// proxy answers itself closes the connection after the response; true: the connection stays
    /// open where it can. A request the codec cannot parse closes it either way.
    /// </summary>
    public bool StreamErrorOnInvalidHttpMessage { get; }

    /// <summary>
    /// <c>add_proxy_protocol_connection_state</c> (default true): the downstream connection's
    /// addresses (and kept TLVs) are what a cluster's upstream PROXY protocol header announces.
    /// False: the header names the upstream connection's own addresses (v1) or is LOCAL (v2), for
    /// a proxy whose view of the client is not the client's (another proxy in front).
    /// </summary>
    public bool AddProxyProtocolConnectionState { get; }

    /// <summary><c>proxy_100_continue</c>: Expect goes upstream and the upstream's 100 comes back, instead of Legate answering it.</summary>
    public bool Proxy100Continue { get; }

    /// <summary>Upgrade types enabled on the HCM (<c>upgrade_configs</c>), e.g. websocket.</summary>
    public IReadOnlyDictionary<string, bool> Upgrades { get; }

    /// <summary>Whether <paramref name="upgradeType"/> is allowed on <paramref name="route"/> (a route override wins).</summary>
    public bool IsUpgradeAllowed(string upgradeType, RouteEntry route)
    {
        if (route.UpgradeOverrides is { } overrides && overrides.TryGetValue(upgradeType, out var routeEnabled))
        {
            // A route may disable an HCM upgrade; enabling one the HCM lacks is allowed too (Envoy: route wins).
            return routeEnabled;
        }

        return Upgrades.TryGetValue(upgradeType, out var enabled) && enabled;
    }

    public static HttpConnectionManagerConfig? Compile(Hcm config, string path, ConfigErrors errors, HttpFilterFactoryContext context, int bufferLimitBytes)
    {
        var errorCount = errors.Errors.Count;
        if (config.CodecType == Hcm.Types.CodecType.Http3)
        {
            errors.Add(FieldPath.Field(path, "codec_type"), "HTTP3 is not implemented yet");
        }

        if (config.StreamErrorOnInvalidHttpMessage is not null && config.CodecType != Hcm.Types.CodecType.Http1)
        {
            errors.Warn(FieldPath.Field(path, "stream_error_on_invalid_http_message"),
                "applies to HTTP/1.x connections only in Legate; on HTTP/2 the codec applies its own rules to invalid messages whatever its value");
        }

        RouteTable routes;
        Legate.Xds.RdsRouteConfigProvider? routeProvider = null;
        switch (config.RouteSpecifierCase)
        {
            case Hcm.RouteSpecifierOneofCase.RouteConfig:
                routes = RouteTable.Compile(config.RouteConfig, FieldPath.Field(path, "route_config"), errors);
                break;
            case Hcm.RouteSpecifierOneofCase.Rds when context.Rds is not null:
                routeProvider = context.Rds.GetProvider(config.Rds, config.StatPrefix, FieldPath.Field(path, "rds"), errors);
                routes = RouteTable.Empty;
                break;
            case Hcm.RouteSpecifierOneofCase.Rds:
                errors.Warn(FieldPath.Field(path, "rds"), "RDS is not implemented yet; every request is answered 404 (NR)");
                routes = RouteTable.Empty;
                break;
            case Hcm.RouteSpecifierOneofCase.ScopedRoutes:
                errors.Warn(FieldPath.Field(path, "scoped_routes"), "scoped routes are not implemented yet; every request is answered 404 (NR)");
                routes = RouteTable.Empty;
                break;
            default:
                errors.Add(path, "one of route_config, rds or scoped_routes is required");
                routes = RouteTable.Empty;
                break;
        }

        var filterContext = new HttpFilterFactoryContext
        {
            ClusterManager = context.ClusterManager,
            Stats = context.Stats,
            Logs = context.Logs,
            Time = context.Time,
            StatPrefix = config.StatPrefix,
            LocalNode = context.LocalNode,
            RecentLocalReplies = context.RecentLocalReplies,
            AccessLogs = context.AccessLogs,
            Runtime = context.Runtime,
            Taps = context.Taps,
            Ecds = context.Ecds,
        };
        var factories = new List<HttpFilterFactory>();
        var filtersPath = FieldPath.Field(path, "http_filters");
        for (var i = 0; i < config.HttpFilters.Count; i++)
        {
            var filterPath = FieldPath.Index(filtersPath, i);
            if (HttpFilterRegistry.Compile(config.HttpFilters[i], filterPath, errors, filterContext) is not { } factory)
            {
                continue;
            }

            if (factory.IsTerminal != (i == config.HttpFilters.Count - 1))
            {
                errors.Add(filterPath, factory.IsTerminal
                    ? $"terminal filter '{factory.Name}' must be the last HTTP filter"
                    : $"the last HTTP filter must be a terminal filter such as envoy.filters.http.router, not '{factory.Name}'");
            }

            factories.Add(factory);
        }

        if (config.HttpFilters.Count == 0)
        {
            // Envoy adds the router when http_filters is empty.
            factories.Add(Legate.Router.RouterFilterFactory.Create("envoy.filters.http.router", new Envoy.Extensions.Filters.Http.Router.V3.Router(), filtersPath, errors, filterContext)!);
        }

        if (errors.Errors.Count > errorCount)
        {
            return null;
        }

        var localReplies = config.LocalReplyConfig is { } localReplyConfig
            ? LocalReplyConfig.Compile(localReplyConfig, FieldPath.Field(path, "local_reply_config"), errors)
            : LocalReplyConfig.Default;
        if (errors.Errors.Count > errorCount)
        {
            return null;
        }

        var internalAddresses = InternalAddresses.Compile(config.InternalAddressConfig, FieldPath.Field(path, "internal_address_config"), errors);
        var accessLogs = config.AccessLog.Count == 0 ? []
            : AccessLog.AccessLogFactory.Compile(config.AccessLog, FieldPath.Field(path, "access_log"), errors,
                context.AccessLogs ?? throw new InvalidOperationException("access logs need the server's access log manager"), context.Runtime);
        if (errors.Errors.Count > errorCount)
        {
            return null;
        }

        var tracingConfig = config.Tracing is { } tracingBlock
            ? Legate.Tracing.TracingConfig.Compile(tracingBlock, FieldPath.Field(path, "tracing"), errors, context.Tracers, context.TrafficDirection == Envoy.Config.Core.V3.TrafficDirection.Outbound ? Legate.Tracing.OperationName.Egress : Legate.Tracing.OperationName.Ingress, context.LocalNode)
            : null;
        if (errors.Errors.Count > errorCount)
        {
            return null;
        }

        var earlyHeaderMutation = Extensions.Http.EarlyHeaderMutation.EarlyHeaderMutation.Compile(config, path, errors);
        Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig? requestIdConfig = null;
        if (config.RequestIdExtension?.TypedConfig is { } requestIdAny)
        {
            if (requestIdAny.Is(Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig.Descriptor))
            {
                requestIdConfig = requestIdAny.Unpack<Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig>();
            }
            else
            {
                errors.Add(FieldPath.Field(FieldPath.Field(path, "request_id_extension"), "typed_config"),
                    $"{requestIdAny.TypeUrl} is not a request ID extension Legate implements (envoy.request_id.uuid)");
            }
        }


        // access_log_options replaces the two deprecated top-level fields; Envoy rejects both together.
#pragma warning disable CS0612 // the deprecated fields are still honoured, as Envoy does
        var flushOnNewRequest = config.FlushAccessLogOnNewRequest;
        var flushInterval = config.AccessLogFlushInterval?.ToTimeSpan() ?? TimeSpan.Zero;
        var flushOnTunnel = false;
        if (config.AccessLogOptions is { } logOptions)
        {
            if (config.FlushAccessLogOnNewRequest || config.AccessLogFlushInterval is not null)
#pragma warning restore CS0612
            {
                errors.Add(FieldPath.Field(path, "access_log_options"), "access_log_options cannot be set together with the deprecated flush_access_log_on_new_request / access_log_flush_interval");
            }

            flushOnNewRequest = logOptions.FlushAccessLogOnNewRequest;
            flushInterval = logOptions.AccessLogFlushInterval?.ToTimeSpan() ?? TimeSpan.Zero;
            flushOnTunnel = logOptions.FlushLogOnTunnelSuccessfullyEstablished;
        }

        var originalIpDetections = config.OriginalIpDetectionExtensions.Count > 0
            ? Extensions.Http.OriginalIpDetection.OriginalIpDetectionFactory.Compile(config, path, errors)
            : null;
        if (errors.Errors.Count > errorCount)
        {
            return null;
        }

        var stats = new HttpConnectionManagerStats(context.Stats, config.StatPrefix);
        return new HttpConnectionManagerConfig(config, config.StatPrefix, routes, factories.ToArray(), stats, context.Logs.Get(LogComponents.Http), bufferLimitBytes)
        {
            LocalReplies = localReplies,
            RouteProvider = routeProvider,
            Time = context.Time,
            InternalAddresses = internalAddresses,
            UserAgent = config.AddUserAgent == true ? context.LocalNode.Cluster : null,
            LocalNodeId = context.LocalNode.Id,
            ProxyStatus = ProxyStatus.Create(config.ProxyStatusConfig, config.ServerName.Length > 0 ? config.ServerName : DefaultServerName, context.LocalNode.Id),
            RecentLocalReplies = context.RecentLocalReplies,
            AccessLogs = accessLogs,
            Tracing = config.Tracing is { } tracing ? new Tracing.TracingDecision(tracing, context.Runtime, requestIdConfig) : null,
            TracingConfig = tracingConfig,
            Runtime = context.Runtime,
            OriginalIpDetections = originalIpDetections,
            EarlyHeaderMutation = earlyHeaderMutation,
            FlushAccessLogOnNewRequest = flushOnNewRequest && accessLogs.Length > 0,
            AccessLogFlushInterval = accessLogs.Length > 0 ? flushInterval : TimeSpan.Zero,
            FlushAccessLogOnTunnelEstablished = flushOnTunnel && accessLogs.Length > 0,
        };
    }
}
