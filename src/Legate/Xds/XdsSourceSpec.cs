using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Core.V3;
using Legate.Config;
using Legate.Config.Semantic;
using ApiType = Envoy.Config.Core.V3.ApiConfigSource.Types.ApiType;

namespace Legate.Xds;

/// <summary>Where a <c>ConfigSource</c> takes its resources from.</summary>
internal enum XdsSourceKind
{
    /// <summary>The bootstrap's ADS stream (<c>ads: {}</c>).</summary>
    Ads,

    /// <summary>A stream of its own to <c>api_config_source</c>'s cluster.</summary>
    Grpc,

    /// <summary>A watched file holding a DiscoveryResponse (<c>path_config_source</c> / <c>path</c>).</summary>
    Path,

    /// <summary>REST polling (<c>api_type: REST</c>): a JSON DiscoveryRequest POSTed to the cluster every refresh_delay.</summary>
    Rest,
}

/// <summary>
/// A resolved <c>envoy.config.core.v3.ConfigSource</c>: checked once (transport version V3 only,
/// gRPC through an envoy_grpc cluster that exists statically and speaks HTTP/2), then used as the
/// key of the stream or file that serves it.
/// </summary>
internal sealed class XdsSourceSpec
{
    /// <summary>Envoy's default initial_fetch_timeout.</summary>
    public static readonly TimeSpan DefaultInitialFetchTimeout = TimeSpan.FromSeconds(15);

    public required XdsSourceKind Kind { get; init; }

    /// <summary>Delta xDS (DELTA_GRPC, AGGREGATED_DELTA_GRPC).</summary>
    public bool IsDelta { get; init; }

    /// <summary>envoy_grpc.cluster_name of the gRPC service.</summary>
    public string ClusterName { get; init; } = string.Empty;

    public bool SetNodeOnFirstMessageOnly { get; init; }

    /// <summary>The envoy_grpc cluster's <c>http2_protocol_options.connection_keepalive</c> (null: no PINGs, as Envoy).</summary>
    public (TimeSpan Delay, TimeSpan Timeout)? Keepalive { get; init; }

    /// <summary><c>rate_limit_settings</c> of the gRPC source (null: requests are not rate limited).</summary>
    public RateLimitSettings? RateLimit { get; init; }

    /// <summary>Zero: wait forever.</summary>
    public TimeSpan InitialFetchTimeout { get; init; } = DefaultInitialFetchTimeout;

    public string Path { get; init; } = string.Empty;

    /// <summary>REST: the wait between two fetches (<c>refresh_delay</c>, required).</summary>
    public TimeSpan RefreshDelay { get; init; }

    /// <summary>REST: how long one fetch may take (<c>request_timeout</c>, default 1 s as Envoy).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>watched_directory.path: a rename into this directory triggers the reload.</summary>
    public string? WatchedDirectory { get; init; }

    /// <summary>Streams are shared by equal keys (every ADS user shares one).</summary>
    public string Key => Kind switch
    {
        XdsSourceKind.Ads => "ads",
        XdsSourceKind.Grpc => $"grpc:{(IsDelta ? "delta" : "sotw")}:{ClusterName}",
        XdsSourceKind.Rest => "rest:" + ClusterName,
        _ => "path:" + Path,
    };

    /// <summary>Resolves <paramref name="source"/>; null with errors added when it cannot be served.</summary>
    public static XdsSourceSpec? Resolve(ConfigSource? source, string path, Bootstrap bootstrap, ConfigErrors errors)
    {
        if (source is null)
        {
            errors.Add(path, "a config_source is required");
            return null;
        }

        var timeout = source.InitialFetchTimeout?.ToTimeSpan() ?? DefaultInitialFetchTimeout;
        if (source.ResourceApiVersion is not (ApiVersion.V3 or ApiVersion.Auto))
        {
            errors.Add(FieldPath.Field(path, "resource_api_version"), $"resource_api_version {source.ResourceApiVersion.ToEnumName()} is not supported; only V3 is");
            return null;
        }

        switch (source.ConfigSourceSpecifierCase)
        {
            case ConfigSource.ConfigSourceSpecifierOneofCase.Ads:
                var ads = bootstrap.DynamicResources?.AdsConfig;
                if (ads is null)
                {
                    errors.Add(FieldPath.Field(path, "ads"), "ads is used, but the bootstrap has no dynamic_resources.ads_config");
                    return null;
                }

                return ResolveApi(ads, "dynamic_resources.ads_config", bootstrap, errors, aggregated: true) is { } adsSpec
                    ? new XdsSourceSpec { Kind = XdsSourceKind.Ads, IsDelta = adsSpec.IsDelta, ClusterName = adsSpec.ClusterName, SetNodeOnFirstMessageOnly = adsSpec.SetNodeOnFirstMessageOnly, RateLimit = adsSpec.RateLimit, Keepalive = adsSpec.Keepalive, InitialFetchTimeout = timeout }
                    : null;
            case ConfigSource.ConfigSourceSpecifierOneofCase.ApiConfigSource:
                var api = source.ApiConfigSource;
                if (api.ApiType is ApiType.AggregatedGrpc or ApiType.AggregatedDeltaGrpc)
                {
                    // Envoy: an api_config_source of an aggregated type outside ads_config means ADS.
                    if (bootstrap.DynamicResources?.AdsConfig is null)
                    {
                        errors.Add(FieldPath.Field(FieldPath.Field(path, "api_config_source"), "api_type"), "AGGREGATED_GRPC needs dynamic_resources.ads_config");
                        return null;
                    }

                    return Resolve(new ConfigSource { Ads = new AggregatedConfigSource(), InitialFetchTimeout = source.InitialFetchTimeout }, path, bootstrap, errors);
                }

                if (api.ApiType == ApiType.Rest)
                {
                    return ResolveRest(api, FieldPath.Field(path, "api_config_source"), bootstrap, errors, timeout);
                }

                return ResolveApi(api, FieldPath.Field(path, "api_config_source"), bootstrap, errors, aggregated: false) is { } spec
                    ? new XdsSourceSpec { Kind = XdsSourceKind.Grpc, IsDelta = spec.IsDelta, ClusterName = spec.ClusterName, SetNodeOnFirstMessageOnly = spec.SetNodeOnFirstMessageOnly, RateLimit = spec.RateLimit, Keepalive = spec.Keepalive, InitialFetchTimeout = timeout }
                    : null;
            case ConfigSource.ConfigSourceSpecifierOneofCase.PathConfigSource:
                var pathSource = source.PathConfigSource;
                return new XdsSourceSpec
                {
                    Kind = XdsSourceKind.Path,
                    Path = pathSource.Path,
                    WatchedDirectory = pathSource.WatchedDirectory?.Path is { Length: > 0 } dir ? dir : null,
                    InitialFetchTimeout = timeout,
                };
#pragma warning disable CS0612 // the legacy `path` string: Envoy still reads it.
            case ConfigSource.ConfigSourceSpecifierOneofCase.Path:
                if (source.Path.Length == 0)
                {
                    errors.Add(FieldPath.Field(path, "path"), "path must not be empty");
                    return null;
                }

                return new XdsSourceSpec { Kind = XdsSourceKind.Path, Path = source.Path, InitialFetchTimeout = timeout };
#pragma warning restore CS0612
            case ConfigSource.ConfigSourceSpecifierOneofCase.Self:
                errors.Add(FieldPath.Field(path, "self"), "self config sources are not supported yet; use ads or api_config_source");
                return null;
            default:
                errors.Add(path, "one of path, path_config_source, api_config_source, ads or self is required");
                return null;
        }
    }

    private static XdsSourceSpec? ResolveApi(ApiConfigSource api, string path, Bootstrap bootstrap, ConfigErrors errors, bool aggregated)
    {
        var ok = true;
        var apiTypePath = FieldPath.Field(path, "api_type");
        var delta = false;
        switch (api.ApiType)
        {
            case ApiType.Grpc when !aggregated:
            case ApiType.AggregatedGrpc when aggregated:
                break;
            case ApiType.DeltaGrpc when !aggregated:
            case ApiType.AggregatedDeltaGrpc when aggregated:
                delta = true;
                break;
            case ApiType.Grpc or ApiType.DeltaGrpc when aggregated:
                // Envoy accepts GRPC/DELTA_GRPC in ads_config and treats them as aggregated.
                delta = api.ApiType == ApiType.DeltaGrpc;
                break;
            case ApiType.Rest:
                errors.Add(apiTypePath, "REST cannot carry ADS; ads_config takes AGGREGATED_GRPC or AGGREGATED_DELTA_GRPC");
                ok = false;
                break;
            default:
                errors.Add(apiTypePath, $"api_type {api.ApiType.ToEnumName()} is not supported");
                ok = false;
                break;
        }

        // Unset (AUTO) means V3, as current Envoy (and its dynamic-config sandboxes) treat it; V2 is gone.
        if (api.TransportApiVersion is not (ApiVersion.V3 or ApiVersion.Auto))
        {
            errors.Add(FieldPath.Field(path, "transport_api_version"),
                $"transport_api_version {api.TransportApiVersion.ToEnumName()} is not supported: xDS transport protocol versions other than V3 are deprecated; set transport_api_version: V3");
            ok = false;
        }

        if (api.ClusterNames.Count > 0)
        {
            errors.Add(FieldPath.Field(path, "cluster_names"), "cluster_names is for REST config sources; gRPC config sources name their cluster in grpc_services");
            ok = false;
        }

        var servicesPath = FieldPath.Field(path, "grpc_services");
        if (api.GrpcServices.Count != 1)
        {
            errors.Add(servicesPath, $"exactly one grpc_services entry is supported (found {api.GrpcServices.Count})");
            return null;
        }

        var service = api.GrpcServices[0];
        var servicePath = FieldPath.Index(servicesPath, 0);
        if (service.EnvoyGrpc is null)
        {
            errors.Add(FieldPath.Field(servicePath, "google_grpc"), "google_grpc is not supported; use envoy_grpc with a static cluster");
            return null;
        }

        var clusterName = service.EnvoyGrpc.ClusterName;
        var clusterPath = FieldPath.Field(FieldPath.Field(servicePath, "envoy_grpc"), "cluster_name");
        var cluster = bootstrap.StaticResources?.Clusters.FirstOrDefault(c => c.Name == clusterName);
        if (cluster is null)
        {
            errors.Add(clusterPath, $"the gRPC config source's cluster '{clusterName}' must be a static cluster (static_resources.clusters)");
            ok = false;
        }
        else if (!SpeaksHttp2(cluster))
        {
            errors.Add(clusterPath, $"the gRPC config source's cluster '{clusterName}' must use HTTP/2: set typed_extension_protocol_options with explicit_http_config.http2_protocol_options (or http2_protocol_options)");
            ok = false;
        }

        var keepalive = cluster is null ? null : Legate.Http.Http2.Http2KeepAlive.From(Http2OptionsOf(cluster)?.ConnectionKeepalive);
        return ok ? new XdsSourceSpec { Kind = XdsSourceKind.Grpc, IsDelta = delta, ClusterName = clusterName, SetNodeOnFirstMessageOnly = api.SetNodeOnFirstMessageOnly, RateLimit = api.RateLimitSettings, Keepalive = keepalive } : null;
    }

    /// <summary>
    /// <c>api_type: REST</c>: exactly one <c>cluster_names</c> entry naming a static cluster (any HTTP
    /// version), no <c>grpc_services</c>, <c>refresh_delay</c> required and <c>request_timeout</c>
    /// (default 1 s), as Envoy checks them.
    /// </summary>
    private static XdsSourceSpec? ResolveRest(ApiConfigSource api, string path, Bootstrap bootstrap, ConfigErrors errors, TimeSpan initialFetchTimeout)
    {
        var ok = true;
        if (api.TransportApiVersion is not (ApiVersion.V3 or ApiVersion.Auto))
        {
            errors.Add(FieldPath.Field(path, "transport_api_version"),
                $"transport_api_version {api.TransportApiVersion.ToEnumName()} is not supported: xDS transport protocol versions other than V3 are deprecated; set transport_api_version: V3");
            ok = false;
        }

        if (api.GrpcServices.Count > 0)
        {
            errors.Add(FieldPath.Field(path, "grpc_services"), "grpc_services is for gRPC config sources; a REST config source names its cluster in cluster_names");
            ok = false;
        }

        var clusterName = string.Empty;
        if (api.ClusterNames.Count != 1)
        {
            errors.Add(FieldPath.Field(path, "cluster_names"), $"a REST config source needs exactly one cluster name (found {api.ClusterNames.Count})");
            ok = false;
        }
        else
        {
            clusterName = api.ClusterNames[0];
            if (bootstrap.StaticResources?.Clusters.Any(c => c.Name == clusterName) != true)
            {
                errors.Add(FieldPath.Index(FieldPath.Field(path, "cluster_names"), 0), $"the REST config source's cluster '{clusterName}' must be a static cluster (static_resources.clusters)");
                ok = false;
            }
        }

        var refreshDelay = api.RefreshDelay?.ToTimeSpan() ?? TimeSpan.Zero;
        if (refreshDelay <= TimeSpan.Zero)
        {
            errors.Add(FieldPath.Field(path, "refresh_delay"), "refresh_delay is required for REST API configuration sources");
            ok = false;
        }

        var requestTimeout = api.RequestTimeout?.ToTimeSpan() is { } t && t > TimeSpan.Zero ? t : TimeSpan.FromSeconds(1);
        return ok
            ? new XdsSourceSpec { Kind = XdsSourceKind.Rest, ClusterName = clusterName, RefreshDelay = refreshDelay, RequestTimeout = requestTimeout, InitialFetchTimeout = initialFetchTimeout }
            : null;
    }

    /// <summary>The cluster's HTTP/2 options (explicit, downstream-following or auto config, or the legacy field).</summary>
    private static Http2ProtocolOptions? Http2OptionsOf(Envoy.Config.Cluster.V3.Cluster cluster)
    {
#pragma warning disable CS0612 // the deprecated cluster-level field is still honoured by Envoy.
        if (cluster.Http2ProtocolOptions is { } legacy)
        {
            return legacy;
        }
#pragma warning restore CS0612

        const string key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
        return cluster.TypedExtensionProtocolOptions.TryGetValue(key, out var any)
            && any.TryUnpack<Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions>(out var options)
            ? options.ExplicitHttpConfig?.Http2ProtocolOptions ?? options.UseDownstreamProtocolConfig?.Http2ProtocolOptions ?? options.AutoConfig?.Http2ProtocolOptions
            : null;
    }

    private static bool SpeaksHttp2(Envoy.Config.Cluster.V3.Cluster cluster)
    {
#pragma warning disable CS0612 // the deprecated cluster-level field is still honoured by Envoy.
        if (cluster.Http2ProtocolOptions is not null)
        {
            return true;
        }
#pragma warning restore CS0612

        const string key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
        if (cluster.TypedExtensionProtocolOptions.TryGetValue(key, out var any)
            && any.TryUnpack<Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions>(out var options))
        {
            return options.ExplicitHttpConfig?.Http2ProtocolOptions is not null
                || options.UseDownstreamProtocolConfig?.Http2ProtocolOptions is not null
                || options.AutoConfig is not null;
        }

        return false;
    }
}
