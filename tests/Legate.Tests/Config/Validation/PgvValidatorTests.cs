using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using static Legate.Tests.Config.Validation.ValidationAssert;
using Filter = Envoy.Config.Listener.V3.Filter;
using RetryPolicy = Envoy.Config.Route.V3.RetryPolicy;

namespace Legate.Tests.Config.Validation;

/// <summary>
/// The rules as annotated in the real Envoy protos, one test per rule kind that occurs there.
/// Every test states the exact path and message expected.
/// </summary>
public sealed class PgvValidatorTests
{
    private static Duration Seconds(double s) => Duration.FromTimeSpan(TimeSpan.FromSeconds(s));

    private static Envoy.Config.Core.V3.Address Socket(string address, uint port) =>
        new() { SocketAddress = new SocketAddress { Address = address, PortValue = port } };

    // ---- strings -------------------------------------------------------------------------

    [Fact]
    public void EmptyClusterNameViolatesMinLenAtDefaultValue()
    {
        // `name` has implicit presence: PGV checks it even though it was never written.
        Single(new Cluster(), "static_resources.clusters[1].name: value length must be at least 1 characters", "static_resources.clusters[1]");
    }

    [Fact]
    public void MinLenCountsCodePointsNotUtf16Units()
    {
        // 256 emoji are 512 UTF-16 chars but 256 characters: max_len 256 is met exactly.
        var ok = new Envoy.Extensions.Path.Rewrite.UriTemplate.V3.UriTemplateRewriteConfig { PathTemplateRewrite = string.Concat(Enumerable.Repeat("\U0001F600", 256)) };
        Valid(ok);

        var tooLong = new Envoy.Extensions.Path.Rewrite.UriTemplate.V3.UriTemplateRewriteConfig { PathTemplateRewrite = ok.PathTemplateRewrite + "a" };
        Single(tooLong, "path_template_rewrite: value length must be between 1 and 256 characters, inclusive");
    }

    [Fact]
    public void SniLongerThan255BytesViolatesMaxBytes()
    {
        var tls = new Envoy.Extensions.TransportSockets.Tls.V3.UpstreamTlsContext { Sni = new string('a', 254) + "é" };
        Single(tls, "sni: value length must be at most 255 bytes");
    }

    [Fact]
    public void StringInListOnOneofMember()
    {
        var t = new SchemeHeaderTransformation { SchemeToOverwrite = "ftp" };
        Single(t, "scheme_to_overwrite: value must be in list [\"http\", \"https\"]");
        Valid(new SchemeHeaderTransformation { SchemeToOverwrite = "https" });
    }

    [Fact]
    public void PatternUsesRe2EndOfTextSemantics()
    {
        // In .NET, '$' also matches before a final "\n"; in RE2 it does not.
        var entry = new global::Xds.Core.V3.CollectionEntry.Types.InlineEntry { Name = "abc\n" };
        Single(entry, "name: value does not match regex pattern \"^[0-9a-zA-Z_\\\\-\\\\.~:]+$\"");
        Valid(new global::Xds.Core.V3.CollectionEntry.Types.InlineEntry { Name = "abc.def~1" });
    }

    [Fact]
    public void PathSeparatedPrefixMustNotEndWithSlash()
    {
        var match = new RouteMatch { PathSeparatedPrefix = "/api/" };
        Single(match, "routes[0].match.path_separated_prefix: value does not match regex pattern \"^[^?#]+[^?#/]$\"", "routes[0].match");
    }

    [Fact]
    public void HeaderNameWithNewlineFailsLooseHeaderRegex()
    {
        var matcher = new HeaderMatcher { Name = "x-foo\r\nx-evil", PresentMatch = true };
        Single(matcher, "headers[2].name: value does not match regex pattern \"^[^\\x00\\n\\r]*$\"", "headers[2]");
    }

    [Fact]
    public void StrictHeaderNameRejectsSpacesButIgnoresEmpty()
    {
        // override_auto_sni_header: {well_known_regex: HTTP_HEADER_NAME, ignore_empty: true}, strict by default.
        Valid(new UpstreamHttpProtocolOptions { OverrideAutoSniHeader = string.Empty });
        Valid(new UpstreamHttpProtocolOptions { OverrideAutoSniHeader = ":authority" });
        Single(
            new UpstreamHttpProtocolOptions { OverrideAutoSniHeader = "x sni" },
            "override_auto_sni_header: value does not match regex pattern \"^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$\"");
    }

    [Fact]
    public void StrictHeaderValueRejectsControlCharacters()
    {
        var check = new HealthCheck.Types.HttpHealthCheck { Path = "/health\u0001" };
        Single(check, "path: value does not match regex pattern \"^[^\\x00-\\x08\\n-\\x1f\\x7f]*$\"");
        Valid(new HealthCheck.Types.HttpHealthCheck { Path = "/health\tok" });
    }

    // ---- numbers ---------------------------------------------------------------------------

    [Fact]
    public void ListenerPortAbove65535InsideSocketAddress()
    {
        var listener = new Listener { Name = "l", Address = Socket("0.0.0.0", 70000) };
        Single(listener, "static_resources.listeners[0].address.socket_address.port_value: value must be less than or equal to 65535", "static_resources.listeners[0]");
    }

    [Fact]
    public void ExclusiveLowerAndUpperBoundAtDefaultValue()
    {
        // port: {lt: 65535, gt: 0}, an implicit-presence uint32 left at 0.
        var entry = new AlternateProtocolsCacheOptions.Types.AlternateProtocolsCacheEntry();
        Single(entry, "port: value must be inside range (0, 65535)");
    }

    [Fact]
    public void CommonLbConfigPanicThresholdOutOfRange()
    {
        var cluster = new Cluster
        {
            Name = "c",
            CommonLbConfig = new Cluster.Types.CommonLbConfig { HealthyPanicThreshold = new Envoy.Type.V3.Percent { Value = 150 } },
        };
        Single(cluster, "clusters[0].common_lb_config.healthy_panic_threshold.value: value must be inside range [0, 100]", "clusters[0]");
    }

    [Fact]
    public void DoubleGreaterThanAndAtMost()
    {
        Single(new Envoy.Data.Accesslog.V3.AccessLogCommon(), "sample_rate: value must be inside range (0, 1]");
        Valid(new Envoy.Data.Accesslog.V3.AccessLogCommon { SampleRate = 1 });
    }

    [Fact]
    public void Int32GreaterThanZero()
    {
        Single(new Envoy.Extensions.Retry.Priority.PreviousPriorities.V3.PreviousPrioritiesConfig(), "update_frequency: value must be greater than 0");
    }

    [Fact]
    public void Int32InsideInclusiveRange()
    {
        var selector = new Envoy.Extensions.Filters.Network.ThriftProxy.Filters.PayloadToMetadata.V3.PayloadToMetadata.Types.FieldSelector { Name = "f", Id = 40000 };
        Single(selector, "id: value must be inside range [-32768, 32767]");
    }

    [Fact]
    public void Int64GreaterThanZero()
    {
        var config = new Envoy.Extensions.ResourceMonitors.DownstreamConnections.V3.DownstreamConnectionsConfig { MaxActiveDownstreamConnections = -1 };
        Single(config, "max_active_downstream_connections: value must be greater than 0");
    }

    [Fact]
    public void Uint32GreaterThanZeroOnTokenBucket()
    {
        var bucket = new Envoy.Type.V3.TokenBucket { FillInterval = Seconds(1) };
        Single(bucket, "max_tokens: value must be greater than 0");
    }

    [Fact]
    public void Uint32HalfOpenRangeOnOneofMember()
    {
        var abort = new Envoy.Extensions.Filters.Http.Fault.V3.FaultAbort { HttpStatus = 600 };
        Single(abort, "http_status: value must be inside range [200, 600)");
        Valid(new Envoy.Extensions.Filters.Http.Fault.V3.FaultAbort { HttpStatus = 503 });
    }

    // ---- wrappers ---------------------------------------------------------------------------

    [Fact]
    public void UInt32ValueWrapperCheckedOnlyWhenSet()
    {
        var range = new CidrRange { AddressPrefix = "10.0.0.0" };
        Valid(range);

        range.PrefixLen = 129;
        Single(range, "prefix_len: value must be less than or equal to 128");
    }

    [Fact]
    public void UInt64ValueWrapperSetToZeroIsChecked()
    {
        var ringHash = new Envoy.Extensions.LoadBalancingPolicies.RingHash.V3.RingHash { MinimumRingSize = 0 };
        Single(ringHash, "minimum_ring_size: value must be inside range [1, 8388608]");
    }

    [Fact]
    public void UInt64ValueWrapperExclusiveUpperBound()
    {
        var udp = new UdpSocketConfig { MaxRxDatagramSize = 65536 };
        Single(udp, "max_rx_datagram_size: value must be inside range (0, 65536)");
    }

    [Fact]
    public void FloatValueWrapperGreaterOrEqualZero()
    {
        var wrr = new Envoy.Extensions.LoadBalancingPolicies.ClientSideWeightedRoundRobin.V3.ClientSideWeightedRoundRobin { ErrorUtilizationPenalty = -0.5f };
        Single(wrr, "error_utilization_penalty: value must be greater than or equal to 0");
    }

    [Fact]
    public void RequiredWrapperMissing()
    {
        var check = new HealthCheck
        {
            Timeout = Seconds(1),
            Interval = Seconds(5),
            HealthyThreshold = 1,
            TcpHealthCheck = new HealthCheck.Types.TcpHealthCheck(),
        };
        Single(check, "health_checks[0].unhealthy_threshold: value is required", "health_checks[0]");
    }

    // ---- bool, enum ---------------------------------------------------------------------------

    [Fact]
    public void BoolConstOnOneofMember()
    {
        var policy = new Envoy.Extensions.Filters.Udp.UdpProxy.V3.UdpProxyConfig.Types.HashPolicy { SourceIp = false };
        Single(policy, "source_ip: value must equal true");
    }

    [Fact]
    public void EnumOutOfRangeViaNumericCast()
    {
        var cluster = new Cluster { Name = "c", LbPolicy = (Cluster.Types.LbPolicy)99 };
        Single(cluster, "lb_policy: value must be one of the defined enum values");
    }

    [Fact]
    public void EnumNotInUsesValueNames()
    {
        Single(new Envoy.Type.V3.HttpStatus(), "code: value must not be in list [Empty]");
        Single(new Envoy.Type.V3.HttpStatus { Code = (Envoy.Type.V3.StatusCode)1 }, "code: value must be one of the defined enum values");
        Valid(new Envoy.Type.V3.HttpStatus { Code = Envoy.Type.V3.StatusCode.ServiceUnavailable });
    }

    // ---- bytes ---------------------------------------------------------------------------

    [Fact]
    public void BytesMaxLenWithExplicitZeroMin()
    {
        var header = new HeaderValue { Key = "x-big", RawValue = ByteString.CopyFrom(new byte[16385]) };
        Single(header, "raw_value: value length must be at most 16384 bytes");
    }

    [Fact]
    public void EmptyBytesOneofMemberIsCheckedWhenChosen()
    {
        var match = new Envoy.Config.Tap.V3.HttpGenericBodyMatch.Types.GenericTextMatch { BinaryMatch = ByteString.Empty };
        Single(match, "binary_match: value length must be at least 1 bytes");
    }

    // ---- messages and oneofs ----------------------------------------------------------------

    [Fact]
    public void RouteWithoutActionViolatesRequiredOneof()
    {
        var route = new Route { Match = new RouteMatch { Prefix = "/" } };
        Single(
            route,
            "virtual_hosts[0].routes[3].action: exactly one of \"route\", \"redirect\", \"direct_response\", \"filter_action\", \"non_forwarding_action\" must be set",
            "virtual_hosts[0].routes[3]");
    }

    [Fact]
    public void RouteWithoutMatchViolatesRequiredMessage()
    {
        var route = new Route { DirectResponse = new DirectResponseAction { Status = 200 } };
        Single(route, "match: value is required");
    }

    [Fact]
    public void RouteMatchWithoutPathSpecifier()
    {
        Single(
            new RouteMatch(),
            "match.path_specifier: exactly one of \"prefix\", \"path\", \"safe_regex\", \"connect_matcher\", \"path_separated_prefix\", \"path_match_policy\" must be set",
            "match");
    }

    // ---- durations ---------------------------------------------------------------------------

    [Fact]
    public void HealthCheckZeroTimeoutAndMissingInterval()
    {
        var check = new HealthCheck
        {
            Timeout = new Duration(),
            UnhealthyThreshold = 2,
            HealthyThreshold = 1,
            TcpHealthCheck = new HealthCheck.Types.TcpHealthCheck(),
        };
        Assert.Equal(["hc.timeout: value must be greater than 0s", "hc.interval: value is required"], Errors(check, "hc"));
    }

    [Fact]
    public void MalformedDurationIsReportedAlone()
    {
        var cluster = new Cluster { Name = "c", ConnectTimeout = new Duration { Seconds = 1, Nanos = -5 } };
        Single(cluster, "connect_timeout: value is not a valid duration");
    }

    [Fact]
    public void RetryBackOffRequiresBaseIntervalAndPositiveMax()
    {
        var retry = new RetryPolicy { RetryBackOff = new RetryPolicy.Types.RetryBackOff { MaxInterval = Seconds(-0.5) } };
        Assert.Equal(
            ["retry_policy.retry_back_off.base_interval: value is required", "retry_policy.retry_back_off.max_interval: value must be greater than 0s"],
            Errors(retry, "retry_policy"));
    }

    [Fact]
    public void DurationHalfOpenRangeInEnvoyFormat()
    {
        var tls = new Envoy.Extensions.TransportSockets.Tls.V3.DownstreamTlsContext { SessionTimeout = new Duration { Seconds = 4294967296 } };
        Single(tls, "session_timeout: value must be inside range [0s, 4294967296s)");
    }

    [Fact]
    public void DurationClosedRangeWithFraction()
    {
        var cookie = new Envoy.Type.Http.V3.Cookie { Name = "c", Ttl = Seconds(-1.5) };
        Single(cookie, "ttl: value must be greater than or equal to 0s");

        var extProc = new Envoy.Extensions.Filters.Http.ExtProc.V3.ExternalProcessor { MessageTimeout = Seconds(3600.25) };
        Assert.Equal(
            ["grpc_service: value is required", "message_timeout: value must be inside range [0s, 3600s]"],
            Errors(extProc));
    }

    // ---- repeated ---------------------------------------------------------------------------

    [Fact]
    public void WeightedClustersWithZeroItems()
    {
        var action = new RouteAction { WeightedClusters = new WeightedCluster() };
        Single(action, "route.weighted_clusters.clusters: value must contain at least 1 item(s)", "route");
    }

    [Fact]
    public void RepeatedMaxItems()
    {
        var hash = new Envoy.Type.V3.HashPolicy { SourceIp = new Envoy.Type.V3.HashPolicy.Types.SourceIp() };
        var tcp = new Envoy.Extensions.Filters.Network.TcpProxy.V3.TcpProxy { StatPrefix = "tcp", Cluster = "c", HashPolicy = { hash, hash.Clone() } };
        Single(tcp, "hash_policy: value must contain no more than 1 item(s)");
    }

    [Fact]
    public void RepeatedExactlyOneItem()
    {
        Single(new Envoy.Config.Tap.V3.OutputConfig(), "output.sinks: value must contain exactly 1 item(s)", "output");
    }

    [Fact]
    public void RepeatedUniqueReportsEachDuplicateAtItsIndex()
    {
        var policy = new InternalRedirectPolicy { ResponseHeadersToCopy = { "x-a", "x-b", "x-a", "x-b" } };
        Assert.Equal(
            ["response_headers_to_copy[2]: repeated value must contain unique items", "response_headers_to_copy[3]: repeated value must contain unique items"],
            Errors(policy));
    }

    [Fact]
    public void RepeatedItemsStringIn()
    {
        var router = new Envoy.Extensions.Filters.Http.Router.V3.Router { StrictCheckHeaders = { "x-envoy-max-retries", "x-envoy-nope" } };
        Single(
            router,
            "strict_check_headers[1]: value must be in list [\"x-envoy-upstream-rq-timeout-ms\", \"x-envoy-upstream-rq-per-try-timeout-ms\", \"x-envoy-max-retries\", \"x-envoy-retry-grpc-on\", \"x-envoy-retry-on\"]");
    }

    [Fact]
    public void RepeatedItemsUint32Range()
    {
        var match = new FilterChainMatch { SourcePorts = { 80, 0, 70000 } };
        Assert.Equal(
            ["filter_chain_match.source_ports[1]: value must be inside range [1, 65535]", "filter_chain_match.source_ports[2]: value must be inside range [1, 65535]"],
            Errors(match, "filter_chain_match"));
    }

    [Fact]
    public void RepeatedItemsEnumDefinedOnly()
    {
        var lightstep = new Envoy.Config.Trace.V3.LightstepConfig
        {
            CollectorCluster = "ls",
            PropagationModes = { Envoy.Config.Trace.V3.LightstepConfig.Types.PropagationMode.B3, (Envoy.Config.Trace.V3.LightstepConfig.Types.PropagationMode)42 },
        };
        Single(lightstep, "propagation_modes[1]: value must be one of the defined enum values");
    }

    [Fact]
    public void RepeatedItemsDoubleGreaterThanZero()
    {
        var buckets = new Envoy.Config.Metrics.V3.HistogramBucketSettings { Match = new Envoy.Type.Matcher.V3.StringMatcher { Exact = "x" }, Buckets = { 0.5, 0, 10 } };
        Single(buckets, "buckets[1]: value must be greater than 0");
    }

    [Fact]
    public void RepeatedMessagesAreWalkedWithIndexedPaths()
    {
        var vh = new VirtualHost { Name = "vh", Domains = { "*" } };
        vh.Routes.Add(new Route { Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { Cluster = "a" } });
        vh.Routes.Add(new Route { Match = new RouteMatch { Prefix = "/b" }, Route_ = new RouteAction { Cluster = string.Empty } });
        Single(vh, "virtual_hosts[0].routes[1].route.cluster: value length must be at least 1 characters", "virtual_hosts[0]");
    }

    // ---- maps ---------------------------------------------------------------------------

    [Fact]
    public void MapMinPairs()
    {
        var map = new Envoy.Config.Common.Matcher.V3.Matcher.Types.MatcherTree.Types.MatchMap();
        Single(map, "exact_match_map.map: value must contain at least 1 pair(s)", "exact_match_map");
    }

    [Fact]
    public void MapKeysAndValuesArePathedByKey()
    {
        var bucket = new Envoy.Service.RateLimitQuota.V3.BucketId { Bucket = { [string.Empty] = "v", ["name"] = string.Empty } };
        Assert.Equal(
            ["bucket[\"\"]: key length must be at least 1 characters", "bucket[\"name\"]: value length must be at least 1 characters"],
            Errors(bucket));
    }

    [Fact]
    public void MapMessageValuesAreWalked()
    {
        const string Key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
        var cluster = new Cluster { Name = "c" };
        cluster.TypedExtensionProtocolOptions[Key] = Any.Pack(new Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions
        {
            CommonHttpProtocolOptions = new HttpProtocolOptions { MaxHeadersCount = 0 },
        });
        Assert.Equal(
            [
                $"typed_extension_protocol_options[\"{Key}\"].upstream_protocol_options: exactly one of \"explicit_http_config\", \"use_downstream_protocol_config\", \"auto_config\" must be set",
                $"typed_extension_protocol_options[\"{Key}\"].common_http_protocol_options.max_headers_count: value must be greater than or equal to 1",
            ],
            Errors(cluster));
    }

    // ---- Any ---------------------------------------------------------------------------

    [Fact]
    public void AnyTypedConfigContentsAreValidatedAtContinuedPath()
    {
        var hcm = new HttpConnectionManager { RouteConfig = new RouteConfiguration() };
        var listener = new Listener { Name = "l", Address = Socket("0.0.0.0", 8080) };
        listener.FilterChains.Add(new FilterChain { Filters = { new Filter { Name = "envoy.filters.network.http_connection_manager", TypedConfig = Any.Pack(hcm) } } });
        Single(listener, "listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix: value length must be at least 1 characters", "listeners[0]");
    }

    [Fact]
    public void AnyRequired()
    {
        Single(new TypedExtensionConfig { Name = "ext" }, "typed_config: value is required");
    }

    [Fact]
    public void AnyOfUnknownTypeIsLeftToTheExtensionChecks()
    {
        var filter = new Filter { Name = "x", TypedConfig = new Any { TypeUrl = "type.googleapis.com/acme.Unknown", Value = ByteString.CopyFromUtf8("junk") } };
        Valid(filter);
    }

    [Fact]
    public void AnyWithUndecodableBytesIsAnError()
    {
        var filter = new Filter
        {
            Name = "x",
            TypedConfig = new Any { TypeUrl = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", Value = ByteString.CopyFrom(0x0a, 0xff) },
        };
        var error = Assert.Single(Errors(filter));
        Assert.StartsWith("typed_config: value of type \"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\" cannot be decoded: ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TopLevelAnyIsUnpacked()
    {
        Single(Any.Pack(new Cluster()), "resources[0].name: value length must be at least 1 characters", "resources[0]");
    }

    [Fact]
    public void AnyNestedBeyondTheDepthLimitStopsWithOneError()
    {
        // Each Any is parsed with a fresh recursion budget, so only the walk itself can stop this.
        IMessage inner = new Filter { Name = string.Empty };
        for (var i = 0; i < 150; i++)
        {
            inner = new Filter { Name = "f" + i, TypedConfig = Any.Pack(inner) };
        }

        var error = Assert.Single(Errors(inner));
        var levels = Legate.Config.Validation.PgvValidator.MaxDepth / 2;
        Assert.Equal(
            string.Join(".", Enumerable.Repeat("typed_config", levels + 1)) + ": message is nested more than 200 levels deep; not validated further",
            error);
    }

    // ---- whole documents ----------------------------------------------------------------

    [Fact]
    public void ManyErrorsAreAllReportedInFieldOrder()
    {
        var cluster = new Cluster
        {
            LbPolicy = (Cluster.Types.LbPolicy)12,
            ConnectTimeout = new Duration(),
            LoadAssignment = new Envoy.Config.Endpoint.V3.ClusterLoadAssignment(),
        };
        Assert.Equal(
            [
                "c.name: value length must be at least 1 characters",
                "c.connect_timeout: value must be greater than 0s",
                "c.lb_policy: value must be one of the defined enum values",
                "c.load_assignment.cluster_name: value length must be at least 1 characters",
            ],
            Errors(cluster, "c"));
    }

    [Fact]
    public void ErrorsCarryThePositionOfTheirNearestWrittenAncestor()
    {
        var errors = new Legate.Config.ConfigErrors();
        errors.SourceMap.Record("static_resources.clusters[0]", new Legate.Config.SourcePosition(12, 5));
        Legate.Config.Validation.PgvValidator.Validate(new Cluster(), "static_resources.clusters[0]", errors);
        var error = Assert.Single(errors.Errors);
        Assert.Equal("static_resources.clusters[0].name", error.Path);
        Assert.Equal(new Legate.Config.SourcePosition(12, 5), error.Position);
    }

    [Fact]
    public void DeepBootstrapOfAThousandClustersAndRoutesIsValid()
    {
        var bootstrap = BigBootstrap(1000);
        Valid(bootstrap);
        Assert.Equal(1000, bootstrap.StaticResources.Clusters.Count);
    }

    [Fact]
    public void DeepBootstrapReportsTheOneBadRoute()
    {
        var bootstrap = BigBootstrap(1000);
        var hcm = bootstrap.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig.Unpack<HttpConnectionManager>();
        hcm.RouteConfig.VirtualHosts[0].Routes[777].Match = new RouteMatch();
        bootstrap.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig = Any.Pack(hcm);
        Single(
            bootstrap,
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[777].match.path_specifier: "
            + "exactly one of \"prefix\", \"path\", \"safe_regex\", \"connect_matcher\", \"path_separated_prefix\", \"path_match_policy\" must be set");
    }

    internal static Envoy.Config.Bootstrap.V3.Bootstrap BigBootstrap(int count)
    {
        var bootstrap = new Envoy.Config.Bootstrap.V3.Bootstrap
        {
            Node = new Node { Id = "n", Cluster = "legate" },
            Admin = new Envoy.Config.Bootstrap.V3.Admin { Address = Socket("127.0.0.1", 9901) },
            StaticResources = new Envoy.Config.Bootstrap.V3.Bootstrap.Types.StaticResources(),
        };
        var routes = new VirtualHost { Name = "all", Domains = { "*" } };
        for (var i = 0; i < count; i++)
        {
            var name = "cluster_" + i;
            var endpoints = new Envoy.Config.Endpoint.V3.LocalityLbEndpoints { Priority = 0 };
            endpoints.LbEndpoints.Add(new Envoy.Config.Endpoint.V3.LbEndpoint { Endpoint = new Envoy.Config.Endpoint.V3.Endpoint { Address = Socket("10.0." + (i / 250) + "." + (i % 250), 8080) } });
            var cluster = new Cluster
            {
                Name = name,
                Type = Cluster.Types.DiscoveryType.Static,
                ConnectTimeout = Seconds(0.25),
                LbPolicy = Cluster.Types.LbPolicy.LeastRequest,
                LoadAssignment = new Envoy.Config.Endpoint.V3.ClusterLoadAssignment { ClusterName = name, Endpoints = { endpoints } },
                HealthChecks =
                {
                    new HealthCheck
                    {
                        Timeout = Seconds(1),
                        Interval = Seconds(5),
                        UnhealthyThreshold = 3,
                        HealthyThreshold = 2,
                        HttpHealthCheck = new HealthCheck.Types.HttpHealthCheck { Path = "/healthz" },
                    },
                },
                CommonLbConfig = new Cluster.Types.CommonLbConfig { HealthyPanicThreshold = new Envoy.Type.V3.Percent { Value = 50 } },
            };
            bootstrap.StaticResources.Clusters.Add(cluster);
            routes.Routes.Add(new Route
            {
                Match = new RouteMatch { Prefix = "/svc/" + i, Headers = { new HeaderMatcher { Name = "x-tenant", StringMatch = new Envoy.Type.Matcher.V3.StringMatcher { Exact = "t" + i } } } },
                Route_ = new RouteAction
                {
                    Cluster = name,
                    Timeout = Seconds(15),
                    RetryPolicy = new RetryPolicy { RetryOn = "5xx", NumRetries = 2, RetryBackOff = new RetryPolicy.Types.RetryBackOff { BaseInterval = Seconds(0.025) } },
                },
            });
        }

        var hcm = new HttpConnectionManager
        {
            StatPrefix = "ingress_http",
            CodecType = HttpConnectionManager.Types.CodecType.Auto,
            RouteConfig = new RouteConfiguration { Name = "local", VirtualHosts = { routes } },
            HttpFilters = { new HttpFilter { Name = "envoy.filters.http.router", TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Http.Router.V3.Router()) } },
        };
        var listener = new Listener { Name = "http", Address = Socket("0.0.0.0", 10000) };
        listener.FilterChains.Add(new FilterChain { Filters = { new Filter { Name = "envoy.filters.network.http_connection_manager", TypedConfig = Any.Pack(hcm) } } });
        bootstrap.StaticResources.Listeners.Add(listener);
        return bootstrap;
    }
}
