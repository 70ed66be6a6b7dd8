using System.Text;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Router.Actions;

namespace Legate.Http;

/// <summary>
/// What one route does when it matches (matching itself is <c>Router/Matching</c>'s): a direct
/// response, or forwarding to a cluster (the router filter's job), with the route's filter configs.
/// </summary>
internal sealed class RouteEntry
{
    /// <summary>Envoy's default route timeout.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    private int _notImplementedLogged;
    private Dictionary<string, object>? _filterConfigs;

    private RouteEntry(string name, string virtualHostName, RouteActionKind action, int status, byte[] body, string actionName)
    {
        Name = name;
        VirtualHostName = virtualHostName;
        Action = action;
        Status = status;
        Body = body;
        ActionName = actionName;
    }

    public string Name { get; }

    public string VirtualHostName { get; }

    /// <summary>The target cluster of a route action.</summary>
    public string ClusterName { get; private set; } = string.Empty;

    /// <summary>The route timeout; <see cref="TimeSpan.Zero"/> disables it.</summary>
    public TimeSpan Timeout { get; private set; } = DefaultTimeout;

    /// <summary>The route timeout in milliseconds as header value bytes (x-envoy-expected-rq-timeout-ms).</summary>
    public byte[] ExpectedTimeoutValue { get; private set; } = "15000"u8.ToArray();

    /// <summary>Status when the cluster does not exist (Envoy's <c>cluster_not_found_response_code</c>, default 503).</summary>
    public int ClusterNotFoundStatus { get; private set; } = 503;

    /// <summary>Route-level upgrade overrides (<c>upgrade_configs</c>): upgrade type (lowercase) → enabled.</summary>
    public IReadOnlyDictionary<string, bool>? UpgradeOverrides { get; private set; }

    /// <summary>
    /// The CONNECT upgrade config has <c>connect_config</c>: the router terminates CONNECT requests
    /// and relays their payload over a raw TCP connection to the cluster (Router/ConnectTunnel).
    /// </summary>
    public bool TerminatesConnect { get; private set; }

    /// <summary>connect_config.allow_post: a POST on this route is terminated like a CONNECT (its body relayed as raw TCP).</summary>
    public bool ConnectAllowsPost { get; private set; }

    /// <summary>connect_config.proxy_protocol_config: a PROXY protocol header first on a terminated CONNECT's upstream bytes.</summary>
    public Legate.Extensions.TransportSockets.ProxyProtocol.UpstreamProxyProtocol? ConnectProxyProtocol { get; private set; }

    /// <summary>Whether some filter is disabled on this route (FilterConfig with disabled: true).</summary>
    public bool HasDisabledFilters { get; private set; }

    /// <summary>The compiled <c>typed_per_filter_config</c> of the filter named <paramref name="filterName"/> (route over virtual host), or null.</summary>
    public object? PerFilterConfig(string filterName) =>
        _filterConfigs is not null && _filterConfigs.TryGetValue(filterName, out var config) ? config : null;

    public RouteActionKind Action { get; }

    /// <summary>The route's <c>decorator</c>: names the request's span (and is propagated unless <c>propagate: false</c>).</summary>
    public Envoy.Config.Route.V3.Decorator? Decorator { get; private set; }

    /// <summary>The route's <c>tracing</c> (sampling overrides and custom tags), or null.</summary>
    public Legate.Tracing.RouteTracing? Tracing { get; private set; }

    /// <summary>The status of a direct response.</summary>
    public int Status { get; }

    /// <summary>The body of a direct response (empty when none).</summary>
    public byte[] Body { get; }

    /// <summary>The action's proto field name (<c>route</c>, <c>redirect</c>, …), for messages.</summary>
    public string ActionName { get; }

    /// <summary>A redirect action's target (Action = Redirect).</summary>
    public RedirectTarget? Redirect { get; private set; }

    /// <summary><c>cluster_header</c>: the (lower-case) request header naming the cluster, or null.</summary>
    public string? ClusterHeader { get; private set; }

    /// <summary><c>weighted_clusters</c>: one entry per cluster (each a copy of this route with the cluster's own settings), or null.</summary>
    public RouteEntry[]? WeightedClusters { get; private set; }

    /// <summary>Cumulative weights of <see cref="WeightedClusters"/>: entry i takes values below <c>_weightEnds[i]</c>.</summary>
    private ulong[] _weightEnds = [];

    /// <summary>The weight of this entry inside its route's weighted_clusters (0 otherwise).</summary>
    public uint Weight { get; private set; }

    /// <summary>The sum of the weights (Envoy's total_weight).</summary>
    public ulong TotalWeight { get; private set; }

    /// <summary>
    /// <c>weighted_clusters.header_name</c> (lower-case): a request carrying exactly one such header
    /// whose value is an unsigned 64-bit number picks its cluster with that number instead of the
    /// stream's random value, so proxies in a row pick consistently; else null.
    /// </summary>
    public string? RandomValueHeader { get; private set; }

    /// <summary>
    /// <c>weighted_clusters.runtime_key_prefix</c>: per cluster the runtime key
    /// <c>prefix + "." + name</c> whose integer value replaces the configured weight (which stays
    /// the default); the total is the sum of the weights read. Null when not configured.
    /// </summary>
    public string[]? RuntimeWeightKeys { get; private set; }

    /// <summary><c>prefix_rewrite</c> / <c>regex_rewrite</c> of a forwarding route, or null.</summary>
    public PathRewrite? PathRewrite { get; private set; }

    /// <summary><c>internal_redirect_policy</c>: upstream 3xx answers the router follows itself; null = relay them.</summary>
    public Legate.Router.Redirect.InternalRedirectPolicy? InternalRedirect { get; private set; }

    /// <summary><c>host_rewrite_literal</c> (a weighted cluster's own one wins), or null.</summary>
    public string? HostRewriteLiteral { get; private set; }

    /// <summary><c>auto_host_rewrite</c>: the chosen host's hostname becomes the authority.</summary>
    public bool AutoHostRewrite { get; private set; }

    /// <summary><c>host_rewrite_header</c> (lower-case), or null.</summary>
    public string? HostRewriteHeader { get; private set; }

    /// <summary><c>host_rewrite_path_regex</c>: the authority is the path (no query) with this substitution.</summary>
    public PathRewrite? HostRewritePath { get; private set; }

    /// <summary><c>append_x_forwarded_host</c>: a rewritten authority keeps the original in x-forwarded-host.</summary>
    public bool AppendXForwardedHost { get; private set; }

    /// <summary>
    /// The route's <c>priority</c>, carried to the cluster: Envoy keeps separate circuit-breaker
    /// thresholds per priority (the upstream side reads it through the router's resource hook).
    /// </summary>
    public RoutingPriority Priority { get; private set; }

    /// <summary>The route's <c>idle_timeout</c> (overrides the connection manager's stream_idle_timeout; zero disables), or null.</summary>
    public TimeSpan? IdleTimeout { get; private set; }

    /// <summary>Request header mutations of every level, in Envoy's evaluation order (see <see cref="HeaderMutation.Order"/>), or null.</summary>
    public HeaderMutation[]? RequestHeaderMutations { get; private set; }

    /// <summary>Response header mutations of every level, in Envoy's evaluation order, or null.</summary>
    public HeaderMutation[]? ResponseHeaderMutations { get; private set; }

    /// <summary>The route's retry_policy, else the virtual host's, or null.</summary>
    public Legate.Router.Retry.RetryPolicy? RetryPolicy { get; private set; }

    /// <summary>
    /// hedge_policy.hedge_on_per_try_timeout of the route, else of the virtual host: a per-try
    /// timeout starts a retry without cancelling the attempt (see <see cref="Legate.Router.Retry.HedgedAttempts"/>).
    /// </summary>
    public bool HedgeOnPerTryTimeout { get; private set; }

    /// <summary>The route's metadata_match (<c>envoy.lb</c>) for subset load balancing, or null.</summary>
    public Legate.Upstream.MetadataMatchCriteria? MetadataMatch { get; private set; }

    /// <summary>The route's hash_policy (for consistent-hash load balancers), or null.</summary>
    public Legate.Router.Hashing.HashPolicy? HashPolicy { get; private set; }

    /// <summary>max_stream_duration.max_stream_duration (zero: none), or null when the route does not set it.</summary>
    public TimeSpan? MaxStreamDuration { get; private set; }

    /// <summary>max_stream_duration.grpc_timeout_header_max: honour grpc-timeout, capped by this (zero: no cap), or null.</summary>
    public TimeSpan? GrpcTimeoutHeaderMax { get; private set; }

    /// <summary>max_stream_duration.grpc_timeout_header_offset, or null.</summary>
    public TimeSpan? GrpcTimeoutHeaderOffset { get; private set; }

    /// <summary>The route's request_mirror_policies, else the virtual host's, or null.</summary>
    public Legate.Router.Mirror.MirrorPolicy[]? MirrorPolicies { get; private set; }

    /// <summary>The virtual host's include_request_attempt_count: x-envoy-attempt-count on upstream requests.</summary>
    public bool IncludeRequestAttemptCount { get; private set; }

    /// <summary>The virtual host's include_attempt_count_in_response: x-envoy-attempt-count on responses.</summary>
    public bool IncludeAttemptCountInResponse { get; private set; }

    /// <summary>For a weighted-cluster entry: its index in the route's list (explain, tests); else -1.</summary>
    public int WeightedIndex { get; private set; } = -1;

    /// <summary>
    /// The weighted cluster for <paramref name="randomValue"/> (Envoy: random_value % total_weight
    /// falls in one cluster's cumulative range), or this entry when the route is not weighted.
    /// </summary>
    public RouteEntry PickWeightedCluster(ulong randomValue)
    {
        if (WeightedClusters is not { } clusters)
        {
            return this;
        }

        if (RuntimeWeightKeys is not null)
        {
            return PickWeightedCluster(randomValue, null, null) ?? clusters[^1];
        }

        var selected = randomValue % TotalWeight;
        var ends = _weightEnds;
        for (var i = 0; i < ends.Length; i++)
        {
            if (selected < ends[i])
            {
                return clusters[i];
            }
        }

        return clusters[^1];
    }

    /// <summary>
    /// The weighted cluster for a request (Envoy's WeightedClusterSpecifierPlugin): the random
    /// value from <see cref="RandomValueHeader"/> when the request has it (once, numeric), the
    /// weights from the runtime under <see cref="RuntimeWeightKeys"/>. Null when the runtime weights
    /// add up to 0 (Envoy finds no route then).
    /// </summary>
    public RouteEntry? PickWeightedCluster(ulong randomValue, Legate.Http.Http1.HttpHeaderMap? headers, Legate.Runtime.RuntimeSnapshot? runtime)
    {
        if (WeightedClusters is not { } clusters)
        {
            return this;
        }

        if (RandomValueHeader is { } header && headers is not null && HeaderRandomValue(headers, header) is { } fromHeader)
        {
            randomValue = fromHeader;
        }

        if (RuntimeWeightKeys is not { } keys)
        {
            return PickWeightedCluster(randomValue);
        }

        // Read each weight once: the runtime may change between the sum and the pick.
        Span<ulong> weights = keys.Length <= 16 ? stackalloc ulong[keys.Length] : new ulong[keys.Length];
        ulong total = 0;
        for (var i = 0; i < keys.Length; i++)
        {
            weights[i] = runtime?.GetInteger(keys[i], clusters[i].Weight) ?? clusters[i].Weight;
            total += weights[i];
        }

        if (total == 0)
        {
            return null;
        }

        var selected = randomValue % total;
        ulong end = 0;
        for (var i = 0; i < keys.Length; i++)
        {
            end += weights[i];
            if (selected < end)
            {
                return clusters[i];
            }
        }

        return clusters[^1];
    }

    /// <summary>The header's value as Envoy's SimpleAtoi reads it, when the header is there exactly once.</summary>
    public static ulong? HeaderRandomValue(Legate.Http.Http1.HttpHeaderMap headers, string name)
    {
        var index = headers.IndexOf(name.AsSpan());
        if (index < 0 || headers.IndexOf(name.AsSpan(), index + 1) >= 0)
        {
            return null;
        }

        var value = System.Text.Encoding.Latin1.GetString(headers.GetValueBytes(index)).Trim();
        if (value.StartsWith('+'))
        {
            value = value[1..];
        }

        return ulong.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number) ? number : null;
    }

    /// <summary>True the first time it is called: lets the connection manager log an unimplemented action once.</summary>
    public bool FirstNotImplementedHit() => Interlocked.Exchange(ref _notImplementedLogged, 1) == 0;

    public static RouteEntry Compile(Route route, string path, uint maxBodyBytes, VirtualHost virtualHost, Dictionary<string, object>? virtualHostFilterConfigs, ConfigErrors errors, RouteLevels? levels = null)
    {
        levels ??= RouteLevels.None;
        var action = RouteActionKind.NotImplemented;
        var status = 0;
        var body = Array.Empty<byte>();
        RouteAction? forward = null;
        RedirectTarget? redirect = null;
        if (route.ActionCase == Route.ActionOneofCase.Route_)
        {
            forward = route.Route_;
            if (forward.ClusterSpecifierCase is RouteAction.ClusterSpecifierOneofCase.Cluster
                or RouteAction.ClusterSpecifierOneofCase.ClusterHeader or RouteAction.ClusterSpecifierOneofCase.WeightedClusters)
            {
                action = RouteActionKind.Forward;
            }
        }
        else if (route.ActionCase == Route.ActionOneofCase.Redirect)
        {
            action = RouteActionKind.Redirect;
            redirect = RedirectTarget.Compile(route.Redirect, route.Match ?? new RouteMatch(), FieldPath.Field(path, "redirect"), errors);
        }
        else if (route.ActionCase == Route.ActionOneofCase.DirectResponse)
        {
            action = RouteActionKind.DirectResponse;
            status = (int)route.DirectResponse.Status;
            var bodyPath = FieldPath.Field(FieldPath.Field(path, "direct_response"), "body");
            body = route.DirectResponse.Body is { } source ? ReadBody(source, bodyPath, maxBodyBytes, errors) : [];
        }
        else if (route.ActionCase == Route.ActionOneofCase.None)
        {
            errors.Add(path, "an action (route, redirect, direct_response, …) is required");
        }

        var entry = new RouteEntry(route.Name, virtualHost.Name, action, status, body, ActionFieldName(route.ActionCase)) { Redirect = redirect };
        entry.Decorator = route.Decorator;
        if (route.Tracing is { } tracing)
        {
            entry.Tracing = Legate.Tracing.RouteTracing.Compile(tracing, FieldPath.Field(path, "tracing"), errors);
        }
        if (forward is not null)
        {
            var forwardPath = FieldPath.Field(path, "route");
            entry.ClusterName = forward.Cluster;
            if (forward.ClusterSpecifierCase == RouteAction.ClusterSpecifierOneofCase.ClusterHeader)
            {
                entry.ClusterHeader = forward.ClusterHeader.ToLowerInvariant();
            }

            CompileRewrites(entry, forward, route.Match ?? new RouteMatch(), forwardPath, errors);
            entry.Priority = forward.Priority;
            entry.InternalRedirect = Legate.Router.Redirect.InternalRedirectPolicy.Compile(forward.InternalRedirectPolicy, FieldPath.Field(forwardPath, "internal_redirect_policy"), errors);
            entry.RetryPolicy = Legate.Router.Retry.RetryPolicy.Compile(forward.RetryPolicy, FieldPath.Field(forwardPath, "retry_policy"), errors) ?? levels.VirtualHostRetryPolicy;
            entry.HedgeOnPerTryTimeout = forward.HedgePolicy is { } hedgePolicy ? hedgePolicy.HedgeOnPerTryTimeout : levels.VirtualHostHedgeOnPerTryTimeout;
            entry.HashPolicy = Legate.Router.Hashing.HashPolicy.Compile(forward.HashPolicy, FieldPath.Field(forwardPath, "hash_policy"), errors);
            entry.MetadataMatch = Legate.Upstream.MetadataMatchCriteria.From(forward.MetadataMatch);
            if (forward.MaxStreamDuration is { } duration)
            {
                entry.MaxStreamDuration = duration.MaxStreamDuration_?.ToTimeSpan();
                entry.GrpcTimeoutHeaderMax = duration.GrpcTimeoutHeaderMax?.ToTimeSpan();
                entry.GrpcTimeoutHeaderOffset = duration.GrpcTimeoutHeaderOffset?.ToTimeSpan();
            }

            entry.MirrorPolicies = Legate.Router.Mirror.MirrorPolicy.Compile(forward.RequestMirrorPolicies, FieldPath.Field(forwardPath, "request_mirror_policies"), errors) ?? levels.VirtualHostMirrorPolicies;
            entry.IncludeRequestAttemptCount = levels.IncludeRequestAttemptCount;
            entry.IncludeAttemptCountInResponse = levels.IncludeAttemptCountInResponse;
            if (forward.IdleTimeout is { } idle)
            {
                entry.IdleTimeout = idle.ToTimeSpan();
            }
            if (forward.Timeout is { } timeout)
            {
                entry.Timeout = timeout.ToTimeSpan();
                entry.ExpectedTimeoutValue = Encoding.ASCII.GetBytes(((long)entry.Timeout.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            entry.ClusterNotFoundStatus = forward.ClusterNotFoundResponseCode switch
            {
                RouteAction.Types.ClusterNotFoundResponseCode.NotFound => 404,
                RouteAction.Types.ClusterNotFoundResponseCode.InternalServerError => 500,
                _ => 503,
            };
            if (forward.UpgradeConfigs.Count > 0)
            {
                var upgrades = new Dictionary<string, bool>(StringComparer.OrdinalIgnoreCase);
                for (var i = 0; i < forward.UpgradeConfigs.Count; i++)
                {
                    var upgrade = forward.UpgradeConfigs[i];
                    upgrades[upgrade.UpgradeType] = upgrade.Enabled ?? true;
                    if (upgrade.ConnectConfig is not null)
                    {
                        if (string.Equals(upgrade.UpgradeType, "CONNECT", StringComparison.OrdinalIgnoreCase))
                        {
                            entry.TerminatesConnect = true;
                            entry.ConnectAllowsPost = upgrade.ConnectConfig.AllowPost;
                            if (upgrade.ConnectConfig.ProxyProtocolConfig is { } proxyProtocol)
                            {
                                entry.ConnectProxyProtocol = Legate.Extensions.TransportSockets.ProxyProtocol.UpstreamProxyProtocol.Compile(proxyProtocol);
                            }
                        }
                        else
                        {
                            // As Envoy: only a CONNECT upgrade can be terminated.
                            errors.Add(FieldPath.Field(FieldPath.Index(FieldPath.Field(FieldPath.Field(path, "route"), "upgrade_configs"), i), "connect_config"),
                                "non-CONNECT upgrade type '" + upgrade.UpgradeType + "' has connect_config");
                        }
                    }
                }

                entry.UpgradeOverrides = upgrades;
            }
        }

        entry._filterConfigs = CompileFilterConfigs(route.TypedPerFilterConfig, FieldPath.Field(path, "typed_per_filter_config"), virtualHostFilterConfigs, errors);
        entry.HasDisabledFilters = entry._filterConfigs?.Values.Any(c => c is DisabledFilterConfig) ?? false;
        var requestMutation = HeaderMutation.Compile(route.RequestHeadersToAdd, route.RequestHeadersToRemove, FieldPath.Field(path, "request_headers_to_add"), FieldPath.Field(path, "request_headers_to_remove"), errors);
        var responseMutation = HeaderMutation.Compile(route.ResponseHeadersToAdd, route.ResponseHeadersToRemove, FieldPath.Field(path, "response_headers_to_add"), FieldPath.Field(path, "response_headers_to_remove"), errors);
        entry.RequestHeaderMutations = HeaderMutation.Order(levels.MostSpecificWins, levels.RouteConfigRequest, levels.VirtualHostRequest, requestMutation);
        entry.ResponseHeaderMutations = HeaderMutation.Order(levels.MostSpecificWins, levels.RouteConfigResponse, levels.VirtualHostResponse, responseMutation);
        if (forward is { ClusterSpecifierCase: RouteAction.ClusterSpecifierOneofCase.WeightedClusters })
        {
            CompileWeightedClusters(entry, forward.WeightedClusters, FieldPath.Field(FieldPath.Field(path, "route"), "weighted_clusters"), errors);
            for (var i = 0; i < entry.WeightedClusters!.Length; i++)
            {
                var cluster = forward.WeightedClusters.Clusters[i];
                var clusterPath = FieldPath.Index(FieldPath.Field(FieldPath.Field(FieldPath.Field(path, "route"), "weighted_clusters"), "clusters"), i);
                var clusterRequest = HeaderMutation.Compile(cluster.RequestHeadersToAdd, cluster.RequestHeadersToRemove, FieldPath.Field(clusterPath, "request_headers_to_add"), FieldPath.Field(clusterPath, "request_headers_to_remove"), errors);
                var clusterResponse = HeaderMutation.Compile(cluster.ResponseHeadersToAdd, cluster.ResponseHeadersToRemove, FieldPath.Field(clusterPath, "response_headers_to_add"), FieldPath.Field(clusterPath, "response_headers_to_remove"), errors);
                entry.WeightedClusters[i].RequestHeaderMutations = HeaderMutation.Order(levels.MostSpecificWins, levels.RouteConfigRequest, levels.VirtualHostRequest, requestMutation, clusterRequest);
                entry.WeightedClusters[i].ResponseHeaderMutations = HeaderMutation.Order(levels.MostSpecificWins, levels.RouteConfigResponse, levels.VirtualHostResponse, responseMutation, clusterResponse);
            }
        }

        return entry;
    }

    private static void CompileRewrites(RouteEntry entry, RouteAction forward, RouteMatch match, string path, ConfigErrors errors)
    {
        if (forward.PathRewritePolicy is { } rewritePolicy)
        {
            var policyPath = FieldPath.Field(path, "path_rewrite_policy");
            if (forward.PrefixRewrite.Length > 0 || forward.RegexRewrite is not null)
            {
                errors.Add(policyPath, "only one of prefix_rewrite, regex_rewrite and path_rewrite_policy may be set");
            }
            else
            {
                entry.PathRewrite = Legate.Router.Actions.PathRewrite.ForTemplate(rewritePolicy, match, policyPath, errors);
            }
        }
        else if (forward.PrefixRewrite.Length > 0)
        {
            entry.PathRewrite = Legate.Router.Actions.PathRewrite.ForPrefix(forward.PrefixRewrite, match);
        }
        else if (forward.RegexRewrite is { } regexRewrite)
        {
            entry.PathRewrite = Legate.Router.Actions.PathRewrite.ForRegex(regexRewrite, FieldPath.Field(path, "regex_rewrite"), errors);
        }

        switch (forward.HostRewriteSpecifierCase)
        {
            case RouteAction.HostRewriteSpecifierOneofCase.HostRewriteLiteral:
                entry.HostRewriteLiteral = forward.HostRewriteLiteral;
                break;
            case RouteAction.HostRewriteSpecifierOneofCase.AutoHostRewrite:
                entry.AutoHostRewrite = forward.AutoHostRewrite ?? false;
                break;
            case RouteAction.HostRewriteSpecifierOneofCase.HostRewriteHeader:
                entry.HostRewriteHeader = forward.HostRewriteHeader.ToLowerInvariant();
                break;
            case RouteAction.HostRewriteSpecifierOneofCase.HostRewritePathRegex:
                entry.HostRewritePath = Legate.Router.Actions.PathRewrite.ForRegex(forward.HostRewritePathRegex, FieldPath.Field(path, "host_rewrite_path_regex"), errors);
                break;
        }

        entry.AppendXForwardedHost = forward.AppendXForwardedHost;
    }

    private static void CompileWeightedClusters(RouteEntry entry, WeightedCluster config, string path, ConfigErrors errors)
    {
        var clusters = new RouteEntry[config.Clusters.Count];
        var ends = new ulong[clusters.Length];
        ulong total = 0;
        for (var i = 0; i < clusters.Length; i++)
        {
            var cluster = config.Clusters[i];
            var clusterPath = FieldPath.Index(FieldPath.Field(path, "clusters"), i);
            var child = (RouteEntry)entry.MemberwiseClone();
            child.WeightedClusters = null;
            child.WeightedIndex = i;
            child.ClusterName = cluster.Name;
            child.ClusterHeader = cluster.ClusterHeader.Length > 0 ? cluster.ClusterHeader.ToLowerInvariant() : null;
            child.Weight = cluster.Weight ?? 0;
            // The cluster's metadata_match is merged over the route's (its values win), as Envoy's.
            child.MetadataMatch = Legate.Upstream.MetadataMatchCriteria.Merge(entry.MetadataMatch, cluster.MetadataMatch);
            if (cluster.HostRewriteLiteral.Length > 0)
            {
                child.HostRewriteLiteral = cluster.HostRewriteLiteral;
            }

            // The cluster's typed_per_filter_config is the most specific level (over route and virtual host).
            child._filterConfigs = CompileFilterConfigs(cluster.TypedPerFilterConfig, FieldPath.Field(clusterPath, "typed_per_filter_config"), entry._filterConfigs, errors);
            child.HasDisabledFilters = child._filterConfigs?.Values.Any(c => c is DisabledFilterConfig) ?? false;
            total += child.Weight;
            ends[i] = total;
            clusters[i] = child;
        }

#pragma warning disable CS0612 // total_weight is deprecated but still honoured by Envoy.
        if (config.TotalWeight is { } declared && declared != total)
        {
            errors.Add(FieldPath.Field(path, "total_weight"), $"the weights of weighted_clusters add up to {total}, not total_weight {declared}");
        }
#pragma warning restore CS0612

        if (total == 0 && clusters.Length > 0)
        {
            errors.Add(FieldPath.Field(path, "clusters"), "the sum of weighted_clusters weights must be greater than 0");
            total = 1;
        }

        if (config.RandomValueSpecifierCase == WeightedCluster.RandomValueSpecifierOneofCase.HeaderName)
        {
            entry.RandomValueHeader = config.HeaderName.ToLowerInvariant();
        }

        if (config.RuntimeKeyPrefix.Length > 0)
        {
            var keys = new string[clusters.Length];
            for (var i = 0; i < keys.Length; i++)
            {
                keys[i] = config.RuntimeKeyPrefix + "." + config.Clusters[i].Name;
            }

            entry.RuntimeWeightKeys = keys;
        }

        entry.WeightedClusters = clusters;
        entry._weightEnds = ends;
        entry.TotalWeight = total;
        foreach (var child in clusters)
        {
            child.TotalWeight = total;
        }
    }

    /// <summary>Compiles a <c>typed_per_filter_config</c> map over the configs inherited from the enclosing level.</summary>
    public static Dictionary<string, object>? CompileFilterConfigs(
        Google.Protobuf.Collections.MapField<string, Google.Protobuf.WellKnownTypes.Any> configs,
        string path,
        Dictionary<string, object>? inherited,
        ConfigErrors errors)
    {
        if (configs.Count == 0)
        {
            return inherited;
        }

        var merged = inherited is null ? new Dictionary<string, object>(StringComparer.Ordinal) : new Dictionary<string, object>(inherited, StringComparer.Ordinal);
        foreach (var (name, any) in configs)
        {
            if (HttpFilterRegistry.CompilePerRoute(name, any, FieldPath.Key(path, name), errors) is { } compiled)
            {
                merged[name] = compiled;
            }
        }

        return merged;
    }

    private static byte[] ReadBody(DataSource source, string path, uint maxBytes, ConfigErrors errors)
    {
        byte[] body;
        switch (source.SpecifierCase)
        {
            case DataSource.SpecifierOneofCase.InlineString:
                body = Encoding.UTF8.GetBytes(source.InlineString);
                break;
            case DataSource.SpecifierOneofCase.InlineBytes:
                body = source.InlineBytes.ToByteArray();
                break;
            case DataSource.SpecifierOneofCase.Filename:
                try
                {
                    // Envoy reads the file once, when the config is loaded.
                    body = File.ReadAllBytes(source.Filename);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    errors.Add(FieldPath.Field(path, "filename"), $"cannot read \"{source.Filename}\": {ex.Message}");
                    return [];
                }

                break;
            case DataSource.SpecifierOneofCase.EnvironmentVariable:
                var value = Environment.GetEnvironmentVariable(source.EnvironmentVariable);
                if (value is null)
                {
                    errors.Add(FieldPath.Field(path, "environment_variable"), $"environment variable \"{source.EnvironmentVariable}\" is not set");
                    return [];
                }

                body = Encoding.UTF8.GetBytes(value);
                break;
            default:
                return [];
        }

        if (body.Length > maxBytes)
        {
            errors.Add(path, $"direct response body is {body.Length} bytes, more than max_direct_response_body_size_bytes ({maxBytes})");
        }

        return body;
    }

    private static string ActionFieldName(Route.ActionOneofCase action) => action switch
    {
        Route.ActionOneofCase.Route_ => "route",
        Route.ActionOneofCase.Redirect => "redirect",
        Route.ActionOneofCase.DirectResponse => "direct_response",
        Route.ActionOneofCase.FilterAction => "filter_action",
        Route.ActionOneofCase.NonForwardingAction => "non_forwarding_action",
        _ => "none",
    };
}
