using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Legate.Config;
using Legate.Network;
using Legate.Tests.Harness;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>
/// ORIGINAL_DST clusters with CLUSTER_PROVIDED: the host comes from the request's override header
/// (use_http_header) or the connection's restored original destination, is created on demand and
/// removed once idle for a cleanup interval.
/// </summary>
public sealed class OriginalDstClusterTests
{
    private static string Config(string originalDst, string cleanup = "5s", string listenerFilters = "", string cluster = "") => TestConfigs.Admin() + $$"""
        static_resources:
          listeners:
          - name: web
            address:
              socket_address: { address: 127.0.0.1, port_value: 0 }
            {{listenerFilters}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: passthrough, timeout: 60s }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: passthrough
            type: ORIGINAL_DST
            lb_policy: CLUSTER_PROVIDED
            connect_timeout: 5s
            cleanup_interval: {{cleanup}}
            {{originalDst}}
            {{cluster}}
        """;

    [Fact]
    public async Task UseHttpHeaderSendsTheRequestToTheHeadersAddressAndTheHostAppearsInClusters()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from-upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config("original_dst_lb_config: { use_http_header: true }"));
        using var client = TestHttp.CreateClient();
        var target = "127.0.0.1:" + upstream.Port.ToString(CultureInfo.InvariantCulture);

        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/hello"));
        request.Headers.Add("x-envoy-original-dst-host", target);
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("from-upstream", await response.Content.ReadAsStringAsync());
        Assert.Equal("/hello", Assert.Single(upstream.Log.Requests).RawTarget);
        Assert.Equal(1, legate.Gauge("cluster.passthrough.membership_total"));
        // Envoy names the host after the cluster and the address.
        var clusters = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/clusters"));
        Assert.Contains($"passthrough::{target}::hostname::passthrough{target}", clusters);
        Assert.Contains($"passthrough::{target}::rq_total::1", clusters);
    }

    [Fact]
    public async Task HttpHeaderNameAndUpstreamPortOverrideAreHonoured()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(
            $"original_dst_lb_config: {{ use_http_header: true, http_header_name: X-Dest, upstream_port_override: {upstream.Port} }}"));
        using var client = TestHttp.CreateClient();

        // The header names port 1 (nothing listens there): the override wins.
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("x-dest", "127.0.0.1:1");
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await upstream.Log.WaitForRequestsAsync(1, TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task WithoutAnyDestinationOrWithAnInvalidHeaderTheRequestGets503NoHealthyUpstream()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("original_dst_lb_config: { use_http_header: true }"));
        using var client = TestHttp.CreateClient();

        // No header and no restored destination (no original_dst / proxy_protocol listener filter).
        using var none = await client.GetAsync(legate.ListenerUri("web", "/"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, none.StatusCode);
        Assert.Equal("no healthy upstream", await none.Content.ReadAsStringAsync());

        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("x-envoy-original-dst-host", "not-an-address:80");
        using var invalid = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, invalid.StatusCode);
        Assert.Equal(1, legate.Counter("cluster.passthrough.original_dst_host_invalid"));
        Assert.Equal(0, legate.Gauge("cluster.passthrough.membership_total"));
    }

    [Fact]
    public async Task TheDestinationRestoredByProxyProtocolIsTheUpstream()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("restored"));
        const string proxyProtocol = """
            listener_filters:
            - name: envoy.filters.listener.proxy_protocol
              typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol }
            """;
        await using var legate = await InProcessLegate.StartAsync(Config("", listenerFilters: Indent(proxyProtocol)));

        await using var connection = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        await connection.WriteAsync($"PROXY TCP4 127.0.0.1 127.0.0.1 40000 {upstream.Port}\r\nGET /via-proxy-protocol HTTP/1.1\r\nHost: anything\r\n\r\n");
        var response = await connection.ReadResponseAsync();

        Assert.Equal(200, response.Status);
        Assert.Equal("restored", response.BodyText);
        Assert.Equal("/via-proxy-protocol", Assert.Single(upstream.Log.Requests).RawTarget);
    }

    [Fact]
    public async Task MetadataKeyTakesTheDestinationFromAProxyProtocolTlvBeforeTheRestoredAddress()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from metadata"));
        await using var decoy = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("restored address"));
        const string proxyProtocol = """
            listener_filters:
            - name: envoy.filters.listener.proxy_protocol
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol
                rules: [ { tlv_type: 224, on_tlv_present: { key: dest, metadata_namespace: od } } ]
            """;
        await using var legate = await InProcessLegate.StartAsync(Config("original_dst_lb_config: { metadata_key: { key: od, path: [ { key: dest } ] } }", listenerFilters: Indent(proxyProtocol)));

        async Task<RawResponse> SendAsync(string tlv)
        {
            await using var connection = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
            await connection.WriteAsync(ProxyV2(decoy.Port, tlv));
            await connection.WriteAsync("GET /tlv HTTP/1.1\r\nHost: anything\r\n\r\n");
            return await connection.ReadResponseAsync();
        }

        // The TLV's IP:port (connection metadata od.dest) wins over the restored destination.
        var viaMetadata = await SendAsync("127.0.0.1:" + upstream.Port.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(200, viaMetadata.Status);
        Assert.Equal("from metadata", viaMetadata.BodyText);
        Assert.Equal(0, legate.Counter("cluster.passthrough.original_dst_host_invalid"));

        // Not an address: counted as invalid, and the restored destination serves, as Envoy falls through.
        var invalid = await SendAsync("somewhere");
        Assert.Equal("restored address", invalid.BodyText);
        Assert.Equal(1, legate.Counter("cluster.passthrough.original_dst_host_invalid"));
    }

    [Fact]
    public async Task TcpProxyToAnOriginalDstClusterReadsMetadataKeyFromTheConnection()
    {
        using var upstream = Legate.Tests.Extensions.Filters.Network.TcpProxyTests.TcpUpstream.Start(async socket =>
        {
            using var stream = new NetworkStream(socket, ownsSocket: true);
            var buffer = new byte[5];
            await stream.ReadExactlyAsync(buffer);
            await stream.WriteAsync("pong!"u8.ToArray());
            return System.Text.Encoding.ASCII.GetString(buffer);
        });
        var yaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: tcp
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                listener_filters:
                - name: envoy.filters.listener.proxy_protocol
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol
                    rules: [ { tlv_type: 224, on_tlv_present: { key: dest, metadata_namespace: od } } ]
                filter_chains:
                - filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: tcp, cluster: passthrough }
              clusters:
              - name: passthrough
                type: ORIGINAL_DST
                lb_policy: CLUSTER_PROVIDED
                connect_timeout: 5s
                original_dst_lb_config: { metadata_key: { key: od, path: [ { key: dest } ] } }
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        var stream = client.GetStream();
        // The header's destination port is 1 (nothing listens there): only the TLV can reach the upstream.
        await stream.WriteAsync(ProxyV2(1, "127.0.0.1:" + upstream.Port.ToString(CultureInfo.InvariantCulture)));
        await stream.WriteAsync("ping!"u8.ToArray());
        var reply = new byte[5];
        await stream.ReadExactlyAsync(reply).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("pong!", System.Text.Encoding.ASCII.GetString(reply));
        Assert.Equal("ping!", await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void MetadataKeyReadsTheRequestsMetadataFirstThenTheConnectionsAndAListsFirstElement()
    {
        var cluster = UpstreamTestConfigs.Build("""
            name: od
            type: ORIGINAL_DST
            lb_policy: CLUSTER_PROVIDED
            original_dst_lb_config: { metadata_key: { key: ns, path: [ { key: a }, { key: b } ] } }
            """);
        static Envoy.Config.Core.V3.Metadata Metadata(string json)
        {
            var metadata = new Envoy.Config.Core.V3.Metadata();
            metadata.FilterMetadata.Add("ns", Google.Protobuf.WellKnownTypes.Struct.Parser.ParseJson(json));
            return metadata;
        }

        string? Chosen(string? request, string? connection) => cluster.LoadBalancer.ChooseHost(new MetadataContext
        {
            DownstreamDynamicMetadata = request is null ? null : Metadata(request),
            DownstreamConnectionDynamicMetadata = connection is null ? null : Metadata(connection),
        }) is { } host ? SocketAddresses.Format(host.Address) : null;

        Assert.Equal("10.0.0.1:80", Chosen("""{"a": {"b": "10.0.0.1:80"}}""", """{"a": {"b": "10.0.0.2:80"}}"""));
        // The request's value is not a string: the connection's is used.
        Assert.Equal("10.0.0.2:80", Chosen("""{"a": {"b": 7}}""", """{"a": {"b": "10.0.0.2:80"}}"""));
        Assert.Equal("[::1]:8443", Chosen(null, """{"a": {"b": ["[::1]:8443", "10.0.0.3:1"]}}"""));
        // Nothing at the path (or no metadata at all): no destination, no host.
        Assert.Null(Chosen("""{"a": {"c": "10.0.0.1:80"}}""", null));
        Assert.Null(Chosen(null, null));
    }

    private sealed class MetadataContext : LoadBalancerContext
    {
    }

    /// <summary>A PROXY v2 header from 127.0.0.1:40000 to 127.0.0.1:<paramref name="port"/> with TLV 0xE0 = <paramref name="tlv"/>.</summary>
    private static byte[] ProxyV2(int port, string tlv)
    {
        var header = new List<byte> { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0, 0 };
        header.AddRange([127, 0, 0, 1, 127, 0, 0, 1, 0x9C, 0x40, (byte)(port >> 8), (byte)port]);
        header.AddRange([0xE0, 0, (byte)tlv.Length]);
        header.AddRange(System.Text.Encoding.ASCII.GetBytes(tlv));
        var bytes = header.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(14), (ushort)(bytes.Length - 16));
        return bytes;
    }

    [Fact]
    public async Task AHostIdleForACleanupIntervalIsRemoved()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        // One request per upstream connection: once the answer is in, nothing holds the host.
        await using var legate = await InProcessLegate.StartAsync(Config("original_dst_lb_config: { use_http_header: true }", cleanup: "0.2s", cluster: "max_requests_per_connection: 1"));
        using var client = TestHttp.CreateClient();

        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/"));
        request.Headers.Add("x-envoy-original-dst-host", "127.0.0.1:" + upstream.Port.ToString(CultureInfo.InvariantCulture));
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, legate.Counter("cluster.passthrough.membership_change"));

        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("cluster.passthrough.membership_total") == 0, "the idle host to be cleaned up");
        Assert.Equal(2, legate.Counter("cluster.passthrough.membership_change"));
        var clusters = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/clusters"));
        Assert.DoesNotContain($"passthrough::127.0.0.1:{upstream.Port}::", clusters);
    }

    [Fact]
    public async Task CleanupKeepsAHostChosenSinceTheLastSweepAndOneWithActiveRequests()
    {
        var time = new ManualTimeProvider();
        var cluster = Assert.IsType<OriginalDstCluster>(UpstreamTestConfigs.Build("""
            name: od
            type: ORIGINAL_DST
            lb_policy: CLUSTER_PROVIDED
            original_dst_lb_config: { use_http_header: true }
            """, UpstreamTestConfigs.Deterministic(time: time)));
        await cluster.InitializeAsync(CancellationToken.None);
        var busy = cluster.LoadBalancer.ChooseHost(new ConnectionLoadBalancerContext(new OriginalDestinationEndPoint(IPAddress.Loopback, 1000)))!;
        var idle = cluster.LoadBalancer.ChooseHost(new ConnectionLoadBalancerContext(new OriginalDestinationEndPoint(IPAddress.Loopback, 2000)))!;
        Assert.Equal(2, cluster.PrioritySet.Current.Hosts.Length);
        busy.RequestStarted();

        // First sweep (default 5 s): both were chosen since the start, so both stay (and are marked unused).
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(2, cluster.PrioritySet.Current.Hosts.Length);

        // Second sweep: the idle one goes, the one with a request in flight stays.
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Same(busy, Assert.Single(cluster.PrioritySet.Current.Hosts));
        Assert.NotSame(idle, cluster.LoadBalancer.ChooseHost(new ConnectionLoadBalancerContext(new OriginalDestinationEndPoint(IPAddress.Loopback, 2000))));
    }

    [Fact]
    public void OverrideHeaderValuesMustBeLiteralAddressesWithPorts()
    {
        Assert.True(OriginalDstLoadBalancer.TryParseIpAndPort("10.195.16.237:8888", out var v4));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.195.16.237"), 8888), v4);
        Assert.True(OriginalDstLoadBalancer.TryParseIpAndPort("[::1]:80", out var v6));
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 80), v6);
        foreach (var bad in new[] { "10.0.0.1", "example.com:80", "1:80", "::1:80", "10.0.0.1:", "10.0.0.1:99999", "[10.0.0.1]:80", "" })
        {
            Assert.False(OriginalDstLoadBalancer.TryParseIpAndPort(bad, out _), bad);
        }
    }

    [Fact]
    public void HttpHeaderNameWithoutUseHttpHeaderIsEnvoysError()
    {
        var errors = new ConfigErrors();
        ClusterFactory.Create(UpstreamTestConfigs.ParseCluster("""
            name: od
            type: ORIGINAL_DST
            lb_policy: CLUSTER_PROVIDED
            original_dst_lb_config: { http_header_name: x-dest }
            """), "clusters[0]", errors, UpstreamTestConfigs.Deterministic());
        var error = Assert.Single(errors.Errors);
        Assert.Equal("clusters[0].original_dst_lb_config.http_header_name", error.Path);
        Assert.Contains("use_http_header is false", error.Message);
    }

    private static string Indent(string yaml) =>
        string.Join("\n" + new string(' ', 12), yaml.Split('\n'));
}
