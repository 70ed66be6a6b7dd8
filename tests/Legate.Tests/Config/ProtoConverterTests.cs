using System.Text;
using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Http.Router.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.ResourceMonitors.FixedHeap.V3;
using Envoy.Type.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using DubboMethodMatch = Envoy.Extensions.Filters.Network.DubboProxy.V3.MethodMatch;
using Filter = Envoy.Config.Listener.V3.Filter;
using UpstreamHttpProtocolOptions = Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions;

namespace Legate.Tests.Config;

public sealed class ProtoConverterTests
{
    private const string HcmUrl = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

    [Fact]
    public void Bootstrap_ListenersClustersAndTypedConfig()
    {
        const string yaml = """
            node:
              id: edge-1
              cluster: edge
            admin:
              address:
                socket_address: {address: 127.0.0.1, port_value: 9901}
            static_resources:
              listeners:
              - name: http
                address:
                  socket_address:
                    address: 0.0.0.0
                    port_value: 8080
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: ingress_http
                      codec_type: AUTO
                      route_config:
                        name: local
                        virtual_hosts:
                        - name: all
                          domains: ["*"]
                          routes:
                          - match: {prefix: "/"}
                            route: {cluster: backend, timeout: 2.5s}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
              clusters:
              - name: backend
                type: STRICT_DNS
                connect_timeout: 0.25s
                lb_policy: LEAST_REQUEST
                load_assignment:
                  cluster_name: backend
                  endpoints:
                  - lb_endpoints:
                    - endpoint:
                        address:
                          socket_address: {address: backend.local, port_value: 80}
            """;

        var (bootstrap, errors) = Read<Bootstrap>(yaml);

        Assert.Empty(errors.Errors);
        Assert.Equal(("edge-1", "edge"), (bootstrap.Node.Id, bootstrap.Node.Cluster));
        Assert.Equal(9901u, bootstrap.Admin.Address.SocketAddress.PortValue);
        var listener = Assert.Single(bootstrap.StaticResources.Listeners);
        Assert.Equal(("0.0.0.0", 8080u), (listener.Address.SocketAddress.Address, listener.Address.SocketAddress.PortValue));
        var filter = Assert.Single(Assert.Single(listener.FilterChains).Filters);
        Assert.Equal(HcmUrl, filter.TypedConfig.TypeUrl);
        var hcm = filter.TypedConfig.Unpack<HttpConnectionManager>();
        Assert.Equal("ingress_http", hcm.StatPrefix);
        Assert.Equal(HttpConnectionManager.Types.CodecType.Auto, hcm.CodecType);
        var vhost = Assert.Single(hcm.RouteConfig.VirtualHosts);
        Assert.Equal(["*"], vhost.Domains);
        var route = Assert.Single(vhost.Routes);
        Assert.Equal(("/", "backend"), (route.Match.Prefix, route.Route_.Cluster));
        Assert.Equal(new Duration { Seconds = 2, Nanos = 500_000_000 }, route.Route_.Timeout);
        Assert.Equal("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", Assert.Single(hcm.HttpFilters).TypedConfig.TypeUrl);
        var cluster = Assert.Single(bootstrap.StaticResources.Clusters);
        Assert.Equal(Cluster.Types.DiscoveryType.StrictDns, cluster.Type);
        Assert.Equal(Cluster.Types.LbPolicy.LeastRequest, cluster.LbPolicy);
        Assert.Equal(new Duration { Nanos = 250_000_000 }, cluster.ConnectTimeout);
        var endpoint = Assert.Single(Assert.Single(cluster.LoadAssignment.Endpoints).LbEndpoints).Endpoint;
        Assert.Equal(("backend.local", 80u), (endpoint.Address.SocketAddress.Address, endpoint.Address.SocketAddress.PortValue));
    }

    [Fact]
    public void SourceMap_RecordsEveryFieldIncludingThoseInsideAny()
    {
        const string yaml = """
            static_resources:
              listeners:
              - name: http
                filter_chains:
                - filters:
                  - name: hcm
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: ingress
                      http_filters:
                      - name: router
            """;

        var (_, errors) = Read<Bootstrap>(yaml);
        var map = errors.SourceMap;

        Assert.Empty(errors.Errors);
        var filter = "static_resources.listeners[0].filter_chains[0].filters[0]";
        Assert.Equal(new SourcePosition(9, 24), map.Find(filter + ".typed_config.stat_prefix"));
        Assert.Equal(new SourcePosition(10, 11), map.Find(filter + ".typed_config.http_filters"));
        Assert.Equal(new SourcePosition(11, 13), map.Find(filter + ".typed_config.http_filters[0]"));
        Assert.Equal(new SourcePosition(7, 9), map.Find(filter + ".typed_config"));
        Assert.Equal(new SourcePosition(3, 11), map.Find("static_resources.listeners[0].name"));
    }

    [Fact]
    public void FieldNames_AcceptLowerCamelAndReportSnakeCasePaths()
    {
        var (cluster, errors) = Read<Cluster>("name: a\nconnectTimeout: 2s\nlbPolicy: RANDOM\nperConnectionBufferLimitBytes: 1024\n");

        Assert.Empty(errors.Errors);
        Assert.Equal(2, cluster.ConnectTimeout.Seconds);
        Assert.Equal(Cluster.Types.LbPolicy.Random, cluster.LbPolicy);
        Assert.Equal(1024u, cluster.PerConnectionBufferLimitBytes);
        Assert.Equal(new SourcePosition(2, 17), errors.SourceMap.Find("connect_timeout"));
    }

    [Theory]
    [InlineData("strict_dns")]
    [InlineData("Strict_Dns")]
    [InlineData("STRICT_DNS")]
    [InlineData("1")]
    [InlineData("'1'")]
    public void Enums_AcceptNamesInAnyCaseAndNumbers(string written)
    {
        var (cluster, errors) = Read<Cluster>($"type: {written}\nlb_policy: round_robin\n");

        Assert.Empty(errors.Errors);
        Assert.Equal(Cluster.Types.DiscoveryType.StrictDns, cluster.Type);
        Assert.Equal(Cluster.Types.LbPolicy.RoundRobin, cluster.LbPolicy);
    }

    [Fact]
    public void RepeatedEnum_IsFilledWithTheEnumType()
    {
        var (set, errors) = Read<HealthStatusSet>("statuses: [healthy, Degraded, 3, 42]\n");

        Assert.Empty(errors.Errors);
        Assert.Equal([HealthStatus.Healthy, HealthStatus.Degraded, HealthStatus.Draining, (HealthStatus)42], set.Statuses);
    }

    [Fact]
    public void SingleValue_IsAcceptedWhereAListIsExpected()
    {
        const string yaml = """
            static_resources:
              clusters:
                name: only
              listeners:
              - name: l
                filter_chains:
                  filter_chain_match:
                    server_names: example.com
            """;

        var (bootstrap, errors) = Read<Bootstrap>(yaml);

        Assert.Empty(errors.Errors);
        Assert.Equal("only", Assert.Single(bootstrap.StaticResources.Clusters).Name);
        var chain = Assert.Single(Assert.Single(bootstrap.StaticResources.Listeners).FilterChains);
        Assert.Equal(["example.com"], chain.FilterChainMatch.ServerNames);
        Assert.Equal(new SourcePosition(3, 5), errors.SourceMap.Find("static_resources.clusters[0]"));
    }

    [Theory]
    [InlineData("5s", 5, 0)]
    [InlineData("0.25s", 0, 250_000_000)]
    [InlineData("1.5s", 1, 500_000_000)]
    [InlineData("\"-1.000000001s\"", -1, -1)]
    [InlineData("{seconds: 3, nanos: 7}", 3, 7)]
    public void Duration_AcceptsSecondsStringsAndTheObjectForm(string written, long seconds, int nanos)
    {
        var (cluster, errors) = Read<Cluster>($"connect_timeout: {written}\n");

        Assert.Empty(errors.Errors);
        Assert.Equal(new Duration { Seconds = seconds, Nanos = nanos }, cluster.ConnectTimeout);
    }

    [Fact]
    public void Duration_ErrorsNameThePathLineAndColumnAndConversionContinues()
    {
        const string yaml = """
            static_resources:
              clusters:
                - name: a
                  connect_timeout: 1s
                - name: b
                  connect_timeout: 5
                - name: c
                  connect_timeout: 5ms
                - name: d
                  connect_timeout: {seconds: 1, nanos: -5}
            """;

        var (bootstrap, errors) = Read<Bootstrap>(yaml);

        Assert.Equal(
            [
                "static_resources.clusters[1].connect_timeout (line 6, col 24): invalid duration \"5\"",
                "static_resources.clusters[2].connect_timeout (line 8, col 24): invalid duration \"5ms\"",
                "static_resources.clusters[3].connect_timeout (line 10, col 7): invalid duration: seconds and nanos out of range or of different signs",
            ],
            Messages(errors));
        Assert.Equal(["a", "b", "c", "d"], bootstrap.StaticResources.Clusters.Select(c => c.Name));
        Assert.Equal(1, bootstrap.StaticResources.Clusters[0].ConnectTimeout.Seconds);
        Assert.Null(bootstrap.StaticResources.Clusters[1].ConnectTimeout);
    }

    [Fact]
    public void UnknownField_IsAnErrorWithASuggestion()
    {
        const string yaml = """
            static_resources:
              clusters:
              - name: a
                conect_timeout: 1s
                bogus: 1
            """;

        var (_, errors) = Read<Bootstrap>(yaml);

        Assert.Equal(
            [
                "static_resources.clusters[0].conect_timeout (line 4, col 5): unknown field \"conect_timeout\" in envoy.config.cluster.v3.Cluster (did you mean \"connect_timeout\"?)",
                "static_resources.clusters[0].bogus (line 5, col 5): unknown field \"bogus\" in envoy.config.cluster.v3.Cluster",
            ],
            Messages(errors));
    }

    [Fact]
    public void UnknownField_InIgnoreModeIsReportedAndSkipped()
    {
        var ignored = new List<string>();
        var options = new ConverterOptions { IgnoreUnknownFields = true, OnUnknownField = ignored.Add };
        const string yaml = "name: a\nfuture_field: 1\nload_assignment:\n  cluster_name: a\n  new_thing: {x: 1}\n";

        var (cluster, errors) = Read<Cluster>(yaml, options);

        Assert.Empty(errors.Errors);
        Assert.Equal(["future_field", "load_assignment.new_thing"], ignored);
        Assert.Equal(("a", "a"), (cluster.Name, cluster.LoadAssignment.ClusterName));
    }

    [Fact]
    public void UnknownTypeUrl_AndMissingType_AreErrors()
    {
        const string yaml = """
            filters:
            - name: a
              typed_config:
                "@type": type.googleapis.com/foo.Bar
                x: 1
            - name: b
              typed_config:
                stat_prefix: x
            - name: c
              typed_config: just-a-string
            """;

        var (chain, errors) = Read<FilterChain>(yaml);

        Assert.Equal(
            [
                "filters[0].typed_config (line 4, col 14): unknown type URL \"type.googleapis.com/foo.Bar\" in @type",
                "filters[1].typed_config (line 7, col 3): missing \"@type\" in google.protobuf.Any",
                "filters[2].typed_config (line 10, col 17): expected a mapping for google.protobuf.Any, got a scalar",
            ],
            Messages(errors));
        Assert.Equal(["a", "b", "c"], chain.Filters.Select(f => f.Name));
    }

    [Fact]
    public void Any_ErrorsInsideThePackedMessageContinueThePath()
    {
        const string yaml = """
            name: hcm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
              stat_prefix: x
              codec_type: HTTP9
              stream_idle_timeout: 10
            """;

        var (filter, errors) = Read<Filter>(yaml);

        Assert.Equal(
            [
                "typed_config.codec_type (line 5, col 15): invalid value \"HTTP9\" for enum envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.CodecType (expected one of AUTO, HTTP1, HTTP2, HTTP3)",
                "typed_config.stream_idle_timeout (line 6, col 24): invalid duration \"10\"",
            ],
            Messages(errors));
        Assert.Equal("x", filter.TypedConfig.Unpack<HttpConnectionManager>().StatPrefix);
    }

    [Fact]
    public void Any_HoldingAWellKnownTypeUsesValueAndKeepsACustomPrefix()
    {
        var errors = new ConfigErrors();
        var converter = new ProtoConverter(errors);

        var duration = (Any)converter.Convert(Parse("\"@type\": type.googleapis.com/google.protobuf.Duration\nvalue: 2s\n"), Any.Descriptor, "d");
        var wrapped = (Any)converter.Convert(Parse("\"@type\": type.googleapis.com/google.protobuf.UInt32Value\nvalue: 7\n"), Any.Descriptor, "w");
        var custom = (Any)converter.Convert(Parse("\"@type\": example.com/envoy.extensions.filters.http.router.v3.Router\nsuppress_envoy_headers: true\n"), Any.Descriptor, "c");
        converter.Convert(Parse("\"@type\": type.googleapis.com/google.protobuf.Duration\nseconds: 2\n"), Any.Descriptor, "m");
        var empty = (Any)converter.Convert(Parse("\"@type\": type.googleapis.com/google.protobuf.Empty\nvalue: {}\n"), Any.Descriptor, "e");

        Assert.Equal(2, duration.Unpack<Duration>().Seconds);
        Assert.Equal(7u, wrapped.Unpack<UInt32Value>().Value);
        Assert.Equal("example.com/envoy.extensions.filters.http.router.v3.Router", custom.TypeUrl);
        Assert.True(Envoy.Extensions.Filters.Http.Router.V3.Router.Parser.ParseFrom(custom.Value).SuppressEnvoyHeaders);
        Assert.Equal(("type.googleapis.com/google.protobuf.Empty", 0), (empty.TypeUrl, empty.Value.Length));
        Assert.Equal(
            [
                "m.seconds (line 2, col 1): unknown field \"seconds\" in google.protobuf.Any holding google.protobuf.Duration (its content goes under \"value\")",
                "m (line 1, col 1): missing \"value\" for google.protobuf.Duration in google.protobuf.Any",
            ],
            Messages(errors));
    }

    [Theory]
    [InlineData("udpa.type.v1.TypedStruct")]
    [InlineData("xds.type.v3.TypedStruct")]
    public void TypedStruct_IsConvertedToTheNamedTypeAndPackedAsIt(string typedStruct)
    {
        var yaml = $"""
            name: hcm
            typed_config:
              "@type": type.googleapis.com/{typedStruct}
              type_url: {HcmUrl}
              value:
                stat_prefix: ts
                codec_type: http2
                bogus: 1
            """;

        var (filter, errors) = Read<Filter>(yaml);

        Assert.Equal(HcmUrl, filter.TypedConfig.TypeUrl);
        var hcm = filter.TypedConfig.Unpack<HttpConnectionManager>();
        Assert.Equal(("ts", HttpConnectionManager.Types.CodecType.Http2), (hcm.StatPrefix, hcm.CodecType));
        Assert.Equal(
            ["typed_config.value.bogus (line 8, col 5): unknown field \"bogus\" in envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"],
            Messages(errors));
    }

    [Fact]
    public void TypedStruct_WithAnUnknownTypeUrlIsAnError()
    {
        const string yaml = """
            typed_config:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/acme.NoSuchFilter
              value: {a: 1}
            """;

        var (_, errors) = Read<Filter>(yaml);

        Assert.Equal(["typed_config.type_url (line 3, col 13): unknown type URL \"type.googleapis.com/acme.NoSuchFilter\" in type_url"], Messages(errors));
    }

    [Fact]
    public void Struct_TypesPlainScalarsAsYamlDoesAndKeepsQuotedOnesAsStrings()
    {
        const string yaml = """
            id: n
            metadata:
              region: eu-west
              weight: 3
              ratio: 0.5
              mask: 0x1F
              canary: true
              build: "42"
              flag: 'true'
              nothing: ~
              tags: [a, 1, null]
              nested: {deep: {er: yes}}
            """;

        var (node, errors) = Read<Node>(yaml);
        var fields = node.Metadata.Fields;

        Assert.Empty(errors.Errors);
        Assert.Equal("eu-west", fields["region"].StringValue);
        Assert.Equal(3, fields["weight"].NumberValue);
        Assert.Equal(0.5, fields["ratio"].NumberValue);
        Assert.Equal(31, fields["mask"].NumberValue);
        Assert.True(fields["canary"].BoolValue);
        Assert.Equal("42", fields["build"].StringValue);
        Assert.Equal("true", fields["flag"].StringValue);
        Assert.Equal(Value.KindOneofCase.NullValue, fields["nothing"].KindCase);
        Assert.Equal(
            [Value.KindOneofCase.StringValue, Value.KindOneofCase.NumberValue, Value.KindOneofCase.NullValue],
            fields["tags"].ListValue.Values.Select(v => v.KindCase));
        Assert.Equal("yes", fields["nested"].StructValue.Fields["deep"].StructValue.Fields["er"].StringValue);
        Assert.Equal(new SourcePosition(12, 23), errors.SourceMap.Find("metadata.nested.deep.er"));
    }

    [Fact]
    public void Map_KeysAreConvertedToTheKeyTypeWithKeyedPaths()
    {
        const string yaml = """
            params_match:
              1: {exact_match: a}
              "2": {range_match: {start: "-5", end: 10}}
              two: {exact_match: b}
              3: {exact_match: c, range_match: {start: 1}}
            """;

        var (match, errors) = Read<DubboMethodMatch>(yaml);

        Assert.Equal(
            [
                "params_match[\"two\"] (line 4, col 3): invalid uint32 \"two\"",
                "params_match[\"3\"].range_match (line 5, col 23): only one of \"exact_match\" and \"range_match\" may be set (oneof parameter_match_specifier)",
            ],
            Messages(errors));
        Assert.Equal([1u, 2u, 3u], match.ParamsMatch.Keys.Order());
        Assert.Equal("a", match.ParamsMatch[1].ExactMatch);
        Assert.Equal((-5L, 10L), (match.ParamsMatch[2].RangeMatch.Start, match.ParamsMatch[2].RangeMatch.End));
    }

    [Fact]
    public void Map_OfAnyHasKeyedPathsInErrors()
    {
        const string yaml = """
            name: a
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                common_http_protocol_options: {idle_timeout: 1h}
                explicit_http_config: {http2_protocol_options: {}}
            """;

        var (cluster, errors) = Read<Cluster>(yaml);

        Assert.Equal(
            ["typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\"].common_http_protocol_options.idle_timeout (line 5, col 50): invalid duration \"1h\""],
            Messages(errors));
        var options = cluster.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Unpack<UpstreamHttpProtocolOptions>();
        Assert.NotNull(options.ExplicitHttpConfig.Http2ProtocolOptions);
    }

    [Fact]
    public void Oneof_SettingTwoMembersNamesBoth()
    {
        var (cluster, errors) = Read<Cluster>("name: a\ntype: STATIC\ncluster_type: {name: envoy.clusters.aggregate}\n");

        Assert.Equal(["cluster_type (line 3, col 1): only one of \"type\" and \"cluster_type\" may be set (oneof cluster_discovery_type)"], Messages(errors));
        Assert.Equal(Cluster.ClusterDiscoveryTypeOneofCase.Type, cluster.ClusterDiscoveryTypeCase);
    }

    [Fact]
    public void Oneof_NullMemberDoesNotConflict()
    {
        var (cluster, errors) = Read<Cluster>("type: ~\ncluster_type: {name: envoy.clusters.aggregate}\n");

        Assert.Empty(errors.Errors);
        Assert.Equal("envoy.clusters.aggregate", cluster.ClusterType.Name);
    }

    [Fact]
    public void WrongScalarTypes_AreAllReportedAtOnce()
    {
        const string yaml = """
            name: {a: 1}
            per_connection_buffer_limit_bytes: -1
            respect_dns_ttl: yes
            load_assignment: [1]
            type: static_dns
            dns_lookup_family: {v4: true}
            upstream_bind_config: 127.0.0.1
            """;

        var (_, errors) = Read<Cluster>(yaml);

        Assert.Equal(
            [
                "name (line 1, col 1): expected a scalar for string, got a mapping",
                "per_connection_buffer_limit_bytes (line 2, col 36): invalid uint32 \"-1\"",
                "respect_dns_ttl (line 3, col 18): invalid bool \"yes\"",
                "load_assignment (line 4, col 1): expected a mapping for envoy.config.endpoint.v3.ClusterLoadAssignment, got a sequence",
                "type (line 5, col 7): invalid value \"static_dns\" for enum envoy.config.cluster.v3.Cluster.DiscoveryType (expected one of STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST)",
                "dns_lookup_family (line 6, col 1): expected a scalar for enum envoy.config.cluster.v3.Cluster.DnsLookupFamily, got a mapping",
                "upstream_bind_config (line 7, col 23): expected a mapping for envoy.config.core.v3.BindConfig, got a scalar",
            ],
            Messages(errors));
    }

    [Theory]
    [InlineData("port_value: eighty", "port_value (line 1, col 13): invalid uint32 \"eighty\"")]
    [InlineData("port_value: 70000000000", "port_value (line 1, col 13): invalid uint32 \"70000000000\"")]
    [InlineData("port_value: 80.5", "port_value (line 1, col 13): invalid uint32 \"80.5\"")]
    [InlineData("port_value: [80]", "port_value (line 1, col 1): expected a scalar for uint32, got a sequence")]
    [InlineData("ipv4_compat: 1", "ipv4_compat (line 1, col 14): invalid bool \"1\"")]
    public void WrongScalarTypes_IntegersAndBools(string yaml, string expected)
    {
        var (_, errors) = Read<SocketAddress>(yaml);

        Assert.Equal([expected], Messages(errors));
    }

    [Fact]
    public void Integers_AcceptQuotedAnd64BitValues()
    {
        var errors = new ConfigErrors();
        var converter = new ProtoConverter(errors);

        var heap = converter.Convert<FixedHeapConfig>(Parse("max_heap_size_bytes: \"18446744073709551615\"\n"));
        var range = converter.Convert<Int64Range>(Parse("start: \"-9223372036854775808\"\nend: 9223372036854775807\n"));
        var ring = converter.Convert<Cluster.Types.RingHashLbConfig>(Parse("minimum_ring_size: \"1024\"\nmaximum_ring_size: 1e3\n"));
        var port = converter.Convert<SocketAddress>(Parse("port_value: \"443\"\n"));
        converter.Convert<FixedHeapConfig>(Parse("max_heap_size_bytes: \"18446744073709551616\"\n"), "heap");

        Assert.Equal(ulong.MaxValue, heap.MaxHeapSizeBytes);
        Assert.Equal((long.MinValue, long.MaxValue), (range.Start, range.End));
        Assert.Equal((1024UL, 1000UL), (ring.MinimumRingSize, ring.MaximumRingSize));
        Assert.Equal(443u, port.PortValue);
        Assert.Equal(["heap.max_heap_size_bytes (line 1, col 22): invalid uint64 \"18446744073709551616\""], Messages(errors));
    }

    [Theory]
    [InlineData("value: 12.5", 12.5)]
    [InlineData("value: 1e2", 100)]
    [InlineData("value: Infinity", double.PositiveInfinity)]
    [InlineData("value: '-Infinity'", double.NegativeInfinity)]
    [InlineData("value: NaN", double.NaN)]
    public void Doubles_AcceptNumbersAndSpecialValues(string yaml, double expected)
    {
        var (percent, errors) = Read<Percent>(yaml);

        Assert.Empty(errors.Errors);
        Assert.Equal(expected, percent.Value);
    }

    [Fact]
    public void Wrappers_AcceptTheBareScalarAndTheObjectForm()
    {
        const string yaml = """
            stat_prefix: x
            use_remote_address: True
            max_request_headers_kb: "96"
            generate_request_id: {value: false}
            add_user_agent: maybe
            """;

        var (hcm, errors) = Read<HttpConnectionManager>(yaml);

        Assert.True(hcm.UseRemoteAddress);
        Assert.Equal(96u, hcm.MaxRequestHeadersKb);
        Assert.False(hcm.GenerateRequestId);
        Assert.Null(hcm.AddUserAgent);
        Assert.Equal(["add_user_agent (line 5, col 17): invalid bool \"maybe\""], Messages(errors));
    }

    [Fact]
    public void Null_MeansNotSetButIsRejectedAsAListItem()
    {
        const string yaml = """
            static_resources:
              clusters:
              - name:
                connect_timeout: ~
                lb_policy: null
              - ~
            """;

        var (bootstrap, errors) = Read<Bootstrap>(yaml);

        var cluster = Assert.Single(bootstrap.StaticResources.Clusters);
        Assert.Equal(("", null, Cluster.Types.LbPolicy.RoundRobin), (cluster.Name, cluster.ConnectTimeout, cluster.LbPolicy));
        Assert.Equal(["static_resources.clusters[1] (line 6, col 5): a list item may not be null"], Messages(errors));
    }

    [Fact]
    public void DuplicateField_ThroughBothNamesIsAnError()
    {
        var (cluster, errors) = Read<Cluster>("connect_timeout: 1s\nconnectTimeout: 2s\n");

        Assert.Equal(["connect_timeout (line 2, col 17): field \"connect_timeout\" is set twice (as \"connect_timeout\" and \"connectTimeout\")"], Messages(errors));
        Assert.Equal(1, cluster.ConnectTimeout.Seconds);
    }

    [Fact]
    public void Bytes_AreBase64StandardOrUrlSafe()
    {
        var (plain, errors) = Read<DataSource>("inline_bytes: aGVsbG8=\n");
        var (urlSafe, _) = Read<DataSource>("inline_bytes: -_8\n");
        var (_, badErrors) = Read<DataSource>("inline_bytes: \"@@@\"\n");

        Assert.Empty(errors.Errors);
        Assert.Equal("hello", plain.InlineBytes.ToStringUtf8());
        Assert.Equal(new byte[] { 0xFB, 0xFF }, urlSafe.InlineBytes.ToByteArray());
        Assert.Equal(["inline_bytes (line 1, col 15): invalid bytes \"@@@\" (expected base64)"], Messages(badErrors));
    }

    [Fact]
    public void TimestampAndFieldMask_UseTheirStringForms()
    {
        var errors = new ConfigErrors();
        var converter = new ProtoConverter(errors);

        var timestamp = converter.Convert<Timestamp>(Parse("2024-01-31T12:00:00.5+01:00"));
        var mask = converter.Convert<FieldMask>(Parse("foo.barBaz,qux"));
        converter.Convert<Timestamp>(Parse("yesterday"), "t");

        Assert.Equal(new DateTimeOffset(2024, 1, 31, 11, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds(), timestamp.Seconds);
        Assert.Equal(500_000_000, timestamp.Nanos);
        Assert.Equal(["foo.bar_baz", "qux"], mask.Paths);
        Assert.Equal(["t (line 1, col 1): invalid timestamp \"yesterday\" (expected RFC 3339, e.g. \"2024-01-31T12:00:00Z\")"], Messages(errors));
    }

    [Fact]
    public void AnchorsAndMergeKeys_FeedTheConverterAndErrorsPointAtTheAnchoredText()
    {
        const string yaml = """
            static_resources:
              clusters:
              - &base
                name: a
                connect_timeout: 5
                lb_policy: RANDOM
              - <<: *base
                name: b
              - <<: *base
                name: c
                connect_timeout: 3s
            """;

        var (bootstrap, errors) = Read<Bootstrap>(yaml);
        var clusters = bootstrap.StaticResources.Clusters;

        Assert.Equal(["a", "b", "c"], clusters.Select(c => c.Name));
        Assert.All(clusters, c => Assert.Equal(Cluster.Types.LbPolicy.Random, c.LbPolicy));
        Assert.Equal(3, clusters[2].ConnectTimeout.Seconds);
        Assert.Equal(
            [
                "static_resources.clusters[0].connect_timeout (line 5, col 22): invalid duration \"5\"",
                "static_resources.clusters[1].connect_timeout (line 5, col 22): invalid duration \"5\"",
            ],
            Messages(errors));
    }

    [Fact]
    public void Json_IsConvertedWithPositions()
    {
        const string json = """
            {
              "static_resources": {
                "clusters": [
                  {"name": "a", "connectTimeout": "1s", "type": "EDS"},
                  {"name": "b", "connectTimeout": 5}
                ]
              }
            }
            """;

        var errors = new ConfigErrors();
        var bootstrap = new ProtoConverter(errors).Convert<Bootstrap>(ConfigDocument.Parse(json, ConfigFormat.Json));

        Assert.Equal(["static_resources.clusters[1].connect_timeout (line 5, col 39): invalid duration \"5\""], Messages(errors));
        Assert.Equal(Cluster.Types.DiscoveryType.Eds, bootstrap.StaticResources.Clusters[0].Type);
        Assert.Equal(1, bootstrap.StaticResources.Clusters[0].ConnectTimeout.Seconds);
    }

    [Fact]
    public void GoogleProtobufJsonOutput_ReadsBackAsTheSameMessage()
    {
        // Differential check of every well-known JSON form against Google.Protobuf's own formatter.
        var cluster = new Cluster
        {
            Name = "x",
            ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(-1500)),
            PerConnectionBufferLimitBytes = 0,
            RespectDnsTtl = true,
            RingHashLbConfig = new Cluster.Types.RingHashLbConfig { MinimumRingSize = ulong.MaxValue },
            Metadata = new Metadata { FilterMetadata = { ["a"] = Struct.Parser.ParseJson("{\"x\": 1.5, \"y\": [true, null, \"s\"], \"z\": {}}") } },
        };
        var packed = new Dictionary<string, IMessage>
        {
            ["d"] = Duration.FromTimeSpan(TimeSpan.FromSeconds(3.25)),
            ["t"] = Timestamp.FromDateTime(new DateTime(2020, 2, 29, 23, 59, 59, DateTimeKind.Utc).AddTicks(1_234_567)),
            ["f"] = new FieldMask { Paths = { "a.b_c", "d" } },
            ["v"] = Value.ForList(Value.ForNumber(1), Value.ForString("x")),
            ["l"] = new ListValue { Values = { Value.ForBool(false) } },
            ["s"] = Struct.Parser.ParseJson("{\"k\": \"v\"}"),
            ["i"] = new Int64Value { Value = long.MinValue },
            ["b"] = new BytesValue { Value = ByteString.CopyFrom(1, 2, 3, 250) },
            ["u"] = new UInt32Value { Value = 0 },
            ["any"] = Any.Pack(new Duration { Seconds = 1 }),
            ["e"] = new Empty(),
            ["dv"] = new DoubleValue { Value = double.NegativeInfinity },
        };
        foreach (var (key, message) in packed)
        {
            cluster.TypedExtensionProtocolOptions[key] = Any.Pack(message);
        }

        var json = new JsonFormatter(JsonFormatter.Settings.Default.WithTypeRegistry(ApiTypes.Registry)).Format(cluster);

        foreach (var format in new[] { ConfigFormat.Json, ConfigFormat.Yaml })
        {
            var errors = new ConfigErrors();
            var back = new ProtoConverter(errors).Convert<Cluster>(ConfigDocument.Parse(json, format));
            Assert.Empty(errors.Errors);
            Assert.Equal(cluster, back);
        }
    }

    [Fact]
    public void Convert_ByDescriptorReturnsTheGeneratedType()
    {
        var errors = new ConfigErrors();
        var descriptor = ApiTypes.FindByTypeUrl(HcmUrl)!;

        var message = new ProtoConverter(errors).Convert(Parse("stat_prefix: s\n"), descriptor, "x");

        Assert.Empty(errors.Errors);
        Assert.Equal("s", Assert.IsType<HttpConnectionManager>(message).StatPrefix);
    }

    [Fact]
    public void LargeBootstrap_OfAThousandClustersConverts()
    {
        var yaml = new StringBuilder("static_resources:\n  clusters:\n");
        for (var i = 0; i < 1000; i++)
        {
            yaml.Append(
                $"""
                  - name: cluster_{i}
                    type: STRICT_DNS
                    connect_timeout: 0.5s
                    lb_policy: round_robin
                    load_assignment:
                      cluster_name: cluster_{i}
                      endpoints:
                      - lb_endpoints:
                        - endpoint:
                            address:
                              socket_address: {"{"}address: host{i}.local, port_value: 80{"}"}

                """);
        }

        var (bootstrap, errors) = Read<Bootstrap>(yaml.ToString());

        Assert.Empty(errors.Errors);
        Assert.Equal(1000, bootstrap.StaticResources.Clusters.Count);
        Assert.Equal("host999.local", bootstrap.StaticResources.Clusters[999].LoadAssignment.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.Address);
    }

    private static ConfigNode Parse(string yaml) => ConfigDocument.Parse(yaml, ConfigFormat.Yaml);

    private static (T Message, ConfigErrors Errors) Read<T>(string yaml, ConverterOptions? options = null)
        where T : IMessage<T>, new()
    {
        var errors = new ConfigErrors();
        var message = new ProtoConverter(errors, options).Convert<T>(Parse(yaml));
        return (message, errors);
    }

    private static string[] Messages(ConfigErrors errors) => errors.Errors.Select(e => e.ToString()).ToArray();
}
