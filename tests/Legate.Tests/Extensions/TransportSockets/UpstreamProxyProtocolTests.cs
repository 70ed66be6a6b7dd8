using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;
using TcpProxyTests = Legate.Tests.Extensions.Filters.Network.TcpProxyTests;

namespace Legate.Tests.Extensions.TransportSockets;

/// <summary>
/// envoy.transport_sockets.upstream_proxy_protocol on a cluster: the downstream client's addresses
/// reach the upstream in a PROXY v1 / v2 header (parsed here by hand, independently of Legate's
/// own parser), before raw bytes or TLS, for tcp_proxy and HTTP/1.1 router upstreams; HAProxy
/// with <c>accept-proxy</c> as a real receiver.
/// </summary>
public sealed class UpstreamProxyProtocolTests
{
    private static string TransportSocket(string version, string inner = "{name: envoy.transport_sockets.raw_buffer, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer}}") =>
        $$"""
        transport_socket:
          name: envoy.transport_sockets.upstream_proxy_protocol
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport
            config: { version: {{version}} }
            transport_socket: {{inner}}
        """;

    private static string TcpConfig(int upstreamPort, string transportSocket) =>
        TestConfigs.Admin() + $$"""
        static_resources:
          listeners:
          - name: tcp
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.tcp_proxy
                typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: tcp, cluster: backend}
          clusters:
          - name: backend
            connect_timeout: 5s
        {{string.Join("\n", transportSocket.Split('\n').Select(l => "    " + l))}}
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstreamPort.ToString(CultureInfo.InvariantCulture)}} } } }
        """;

    [Theory]
    [InlineData("V1")]
    [InlineData("V2")]
    public async Task TcpProxyAnnouncesTheClientBeforeItsBytes(string version)
    {
        using var upstream = TcpProxyTests.TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var header = await ReadProxyHeaderAsync(stream);
            var payload = await new StreamReader(stream).ReadToEndAsync();
            await stream.WriteAsync("ok"u8.ToArray());
            socket.Shutdown(SocketShutdown.Send);
            return header + "|" + payload;
        });
        await using var legate = await InProcessLegate.StartAsync(TcpConfig(upstream.Port, TransportSocket(version)));
        var listener = legate.ListenerEndpoint("tcp");

        using var client = new TcpClient();
        client.Client.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        await client.ConnectAsync(listener);
        var clientPort = ((IPEndPoint)client.Client.LocalEndPoint!).Port;
        var stream = client.GetStream();
        await stream.WriteAsync("payload"u8.ToArray());
        client.Client.Shutdown(SocketShutdown.Send);
        Assert.Equal("ok", await new StreamReader(stream).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30)));

        var expected = version == "V1"
            ? $"PROXY TCP4 127.0.0.2 127.0.0.1 {clientPort} {listener.Port}"
            : $"v2 PROXY 127.0.0.2:{clientPort} 127.0.0.1:{listener.Port}";
        Assert.Equal(expected + "|payload", await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task TheHeaderPrecedesAnInnerTlsHandshake()
    {
        using var pki = new TestCertificates();
        var leaf = pki.Leaf("upstream", new() { Dns = ["upstream.test"], Ecdsa = true });
        using var upstream = TcpProxyTests.TcpUpstream.Start(async socket =>
        {
            await using var raw = new NetworkStream(socket, ownsSocket: true);
            var header = await ReadProxyHeaderAsync(raw);
            await using var ssl = new SslStream(raw);
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = leaf.WithKey() });
            var buffer = new byte[64];
            var n = await ssl.ReadAsync(buffer);
            await ssl.WriteAsync(Encoding.ASCII.GetBytes("tls:" + Encoding.ASCII.GetString(buffer, 0, n)));
            await ssl.ShutdownAsync();
            return header + "|" + ssl.TargetHostName;
        });
        var tls = "{name: envoy.transport_sockets.tls, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: upstream.test}}";
        await using var legate = await InProcessLegate.StartAsync(TcpConfig(upstream.Port, TransportSocket("V2", tls)));
        var listener = legate.ListenerEndpoint("tcp");

        using var client = new TcpClient();
        await client.ConnectAsync(listener);
        var clientPort = ((IPEndPoint)client.Client.LocalEndPoint!).Port;
        var stream = client.GetStream();
        await stream.WriteAsync("hi"u8.ToArray());
        var answer = new byte[6];
        await stream.ReadExactlyAsync(answer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("tls:hi", Encoding.ASCII.GetString(answer));
        Assert.Equal($"v2 PROXY 127.0.0.1:{clientPort} 127.0.0.1:{listener.Port}|upstream.test", await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task HttpUpstreamConnectionsAreNeverSharedBetweenDownstreamConnections()
    {
        // Each upstream connection answers every request with the PROXY header it started with.
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var header = await ReadProxyHeaderAsync(connection);
            while (await connection.ReadRequestAsync() is not null)
            {
                await connection.WriteAsync($"HTTP/1.1 200 OK\r\nContent-Length: {header.Length}\r\n\r\n{header}");
            }
        });
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port) { Cluster = TransportSocket("V1") }.Build());
        var listener = legate.ListenerEndpoint("web");

        async Task<(int Port, string[] Bodies)> RequestsFromAsync(string source, int count)
        {
            using var client = new TcpClient();
            client.Client.Bind(new IPEndPoint(IPAddress.Parse(source), 0));
            await client.ConnectAsync(listener);
            await using var connection = new RawHttpConnection(client.Client);
            var bodies = new string[count];
            for (var i = 0; i < count; i++)
            {
                await connection.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                bodies[i] = (await connection.ReadResponseAsync()).BodyText;
            }

            return (((IPEndPoint)client.Client.LocalEndPoint!).Port, bodies);
        }

        var (portA, fromA) = await RequestsFromAsync("127.0.0.2", 2);
        var (portB, fromB) = await RequestsFromAsync("127.0.0.3", 1);

        Assert.Equal([$"PROXY TCP4 127.0.0.2 127.0.0.1 {portA} {listener.Port}", $"PROXY TCP4 127.0.0.2 127.0.0.1 {portA} {listener.Port}"], fromA);
        Assert.Equal([$"PROXY TCP4 127.0.0.3 127.0.0.1 {portB} {listener.Port}"], fromB);

        // A PROXY header binds a connection to one downstream: one upstream connection per request.
        Assert.Equal(3, upstream.ConnectionCount);
    }

    /// <summary>
    /// The connection manager's <c>add_proxy_protocol_connection_state: false</c>: the header no
    /// longer names the client but the upstream connection's own addresses (v1) — Envoy's header
    /// without the downstream's connection state.
    /// </summary>
    [Fact]
    public async Task WithoutTheConnectionStateTheHeaderNamesTheUpstreamConnection()
    {
        var headers = System.Threading.Channels.Channel.CreateUnbounded<(string Header, IPEndPoint Peer)>();
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var header = await ReadProxyHeaderAsync(connection);
            headers.Writer.TryWrite((header, (IPEndPoint)connection.Socket.RemoteEndPoint!));
            while (await connection.ReadRequestAsync() is not null)
            {
                await connection.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        });
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Cluster = TransportSocket("V1"),
            Hcm = "add_proxy_protocol_connection_state: false",
        }.Build());

        using var client = new TcpClient();
        client.Client.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        await client.ConnectAsync(legate.ListenerEndpoint("web"));
        await using var connection = new RawHttpConnection(client.Client);
        await connection.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal("ok", (await connection.ReadResponseAsync()).BodyText);

        var (announced, peer) = await headers.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal($"PROXY TCP4 {peer.Address} 127.0.0.1 {peer.Port} {upstream.Port}", announced);
    }

    [Fact]
    public async Task DownstreamTlvsBecomeMetadataAndPassThroughToTheUpstream()
    {
        using var upstream = TcpProxyTests.TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var header = await ReadProxyHeaderAsync(stream);
            socket.Shutdown(SocketShutdown.Send);
            await new StreamReader(stream).ReadToEndAsync();
            return header;
        });
        var log = Path.Combine(Path.GetTempPath(), "legate-pp-tlv-" + Guid.NewGuid().ToString("N") + ".log");
        var yaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: tcp
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                listener_filters:
                - name: envoy.filters.listener.proxy_protocol
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol
                    rules:
                    - { tlv_type: 2, on_tlv_present: { key: authority } }
                    - { tlv_type: 224, on_tlv_present: { key: tenant, metadata_namespace: my.ns } }
                    pass_through_tlvs: { match_type: INCLUDE, tlv_type: [224, 225] }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: tcp
                      cluster: backend
                      access_log:
                      - name: envoy.access_loggers.file
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: "{{log}}", log_format: {text_format_source: {inline_string: "%DYNAMIC_METADATA(envoy.filters.listener.proxy_protocol:authority)% %DYNAMIC_METADATA(my.ns:tenant)% %DOWNSTREAM_REMOTE_ADDRESS%\n"} } }
              clusters:
              - name: backend
                connect_timeout: 5s
                transport_socket:
                  name: envoy.transport_sockets.upstream_proxy_protocol
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport
                    config: { version: V2, pass_through_tlvs: { match_type: INCLUDE, tlv_type: [2, 224] } }
                    transport_socket: { name: envoy.transport_sockets.raw_buffer, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer} }
                load_assignment:
                  cluster_name: backend
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstream.Port.ToString(CultureInfo.InvariantCulture)}} } } }
            """;
        try
        {
            await using var legate = await InProcessLegate.StartAsync(yaml);
            using var client = new TcpClient();
            await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
            var stream = client.GetStream();

            // A v2 header from 10.1.2.3:4567 to 10.9.9.9:443 with TLVs: authority (2), two custom ones (0xE0, 0xE1), NOOP (4).
            var header = new List<byte> { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0, 0 };
            header.AddRange([10, 1, 2, 3, 10, 9, 9, 9, 0x11, 0xD7, 0x01, 0xBB]);
            foreach (var (type, value) in new (byte, string)[] { (2, "example.com"), (0xE0, "acme"), (0xE1, "x1"), (4, "zz") })
            {
                header.Add(type);
                header.Add(0);
                header.Add((byte)value.Length);
                header.AddRange(Encoding.ASCII.GetBytes(value));
            }

            var bytes = header.ToArray();
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(14), (ushort)(bytes.Length - 16));
            await stream.WriteAsync(bytes);
            Assert.Equal(0, await stream.ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
            client.Client.Shutdown(SocketShutdown.Send);

            // The listener kept 0xE0 and 0xE1 (its pass_through_tlvs), the cluster sends those of them it lists: 0xE0 only.
            Assert.Equal("v2 PROXY 10.1.2.3:4567 10.9.9.9:443 tlv:e0=acme", await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(["example.com acme 10.1.2.3:4567"], await Legate.Tests.AccessLog.AccessLogTests.WaitForLinesAsync(log, 1));
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public async Task HttpUpstreamConnectionsPassTheDownstreamTlvsOn()
    {
        // The upstream answers with the PROXY header its connection started with.
        await using var upstream = RawUpstream.Start(async connection =>
        {
            var header = await ReadProxyHeaderAsync(connection.Stream);
            while (await connection.ReadRequestAsync() is not null)
            {
                await connection.WriteAsync($"HTTP/1.1 200 OK\r\nContent-Length: {header.Length}\r\n\r\n{header}");
            }
        });
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Codec = "HTTP1",
            Listener = """
                listener_filters:
                - name: envoy.filters.listener.proxy_protocol
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol
                    pass_through_tlvs: { match_type: INCLUDE, tlv_type: [224, 225] }
                """,
            Cluster = """
                transport_socket:
                  name: envoy.transport_sockets.upstream_proxy_protocol
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport
                    config: { version: V2, pass_through_tlvs: { match_type: INCLUDE, tlv_type: [224] } }
                    transport_socket: { name: envoy.transport_sockets.raw_buffer, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer} }
                """,
        }.Build());
        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("web"));
        await using var connection = new RawHttpConnection(client.Client);

        // A v2 header from 10.1.2.3:4567 to 10.9.9.9:443 with TLVs 0xE0, 0xE1 and authority (2), then the request.
        var header = new List<byte> { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0, 0 };
        header.AddRange([10, 1, 2, 3, 10, 9, 9, 9, 0x11, 0xD7, 0x01, 0xBB]);
        foreach (var (type, value) in new (byte, string)[] { (0xE0, "acme"), (0xE1, "x1"), (2, "example.com") })
        {
            header.Add(type);
            header.Add(0);
            header.Add((byte)value.Length);
            header.AddRange(Encoding.ASCII.GetBytes(value));
        }

        var bytes = header.ToArray();
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(14), (ushort)(bytes.Length - 16));
        await connection.WriteAsync(bytes);
        await connection.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");

        // The listener kept 0xE0 and 0xE1, the cluster sends those of them it lists: 0xE0 only, as tcp_proxy does.
        Assert.Equal("v2 PROXY 10.1.2.3:4567 10.9.9.9:443 tlv:e0=acme", (await connection.ReadResponseAsync()).BodyText);
    }

    [Fact]
    public async Task HealthChecksStartWithAHeaderToo()
    {
        // TCP check, v2: Envoy's LOCAL command (no downstream to announce).
        using var tcpUpstream = TcpProxyTests.TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            return await ReadProxyHeaderAsync(stream);
        });
        var tcpCluster = TcpConfig(tcpUpstream.Port, TransportSocket("V2"))
            .Replace("    connect_timeout: 5s\n", "    connect_timeout: 5s\n    health_checks: [{ timeout: 5s, interval: 10s, unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {} }]\n");
        await using (var legate = await InProcessLegate.StartAsync(tcpCluster))
        {
            Assert.Equal("v2 LOCAL", await tcpUpstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        // HTTP check, v1: the check connection's own addresses; the request follows the header.
        var headers = System.Threading.Channels.Channel.CreateUnbounded<string>();
        await using var httpUpstream = RawUpstream.Start(async connection =>
        {
            var header = await ReadProxyHeaderAsync(connection);
            var request = await connection.ReadRequestAsync();
            headers.Writer.TryWrite(header + "|" + request?.Target);
            await connection.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        });
        var httpCluster = TcpConfig(httpUpstream.Port, TransportSocket("V1"))
            .Replace("    connect_timeout: 5s\n", "    connect_timeout: 5s\n    health_checks: [{ timeout: 5s, interval: 10s, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: /hc } }]\n");
        await using var legate2 = await InProcessLegate.StartAsync(httpCluster);
        var seen = await headers.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Matches($@"^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ {httpUpstream.Port}\|/hc$", seen);
    }

    [Fact]
    public async Task ShadowRequestsStartWithTheShadowConnectionsOwnHeader()
    {
        // As Envoy's shadows (sent by its async client, which has no downstream connection): the
        // mirror cluster's PROXY header names the shadow connection itself, like a health check's.
        var seen = System.Threading.Channels.Channel.CreateUnbounded<string>();
        await using var shadow = RawUpstream.Start(async connection =>
        {
            var header = await ReadProxyHeaderAsync(connection);
            var request = await connection.ReadRequestAsync();
            seen.Writer.TryWrite(header + "|" + request?.Target);
            await connection.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        });
        await using var main = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("main"));
        var shadowCluster = string.Join("\n", TransportSocket("V1").Split('\n').Select(l => "    " + l));
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: web
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
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
                            route: { cluster: main, request_mirror_policies: [ { cluster: shadow } ] }
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
              clusters:
              - name: main
                connect_timeout: 5s
                load_assignment:
                  cluster_name: main
                  endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{main.Port}} } } } } ] } ]
              - name: shadow
                connect_timeout: 5s
            {{shadowCluster}}
                load_assignment:
                  cluster_name: shadow
                  endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{shadow.Port}} } } } } ] } ]
            """);
        using var client = TestHttp.CreateClient();
        using (var response = await client.GetAsync(legate.ListenerUri("web", "/mirrored")))
        {
            Assert.Equal("main", await response.Content.ReadAsStringAsync());
        }

        var header = await seen.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Matches($@"^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ {shadow.Port}\|/mirrored$", header);
    }

    [Fact]
    public async Task UnsupportedShapesAreConfigErrorsNamingTheField()
    {
        // An HTTP/2 cluster: its connections are shared by every downstream, so no header could be right.
        var http2 = new ProxyConfig(1) { Cluster = TransportSocket("V1") + "\ntyped_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: {\"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, explicit_http_config: {http2_protocol_options: {}}}}" }.Build();
        var ex = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(http2));
        Assert.Contains("static_resources.clusters[0].transport_socket.typed_config", ex.Message, StringComparison.Ordinal);
        Assert.Contains("TCP (tcp_proxy) and HTTP/1.1 clusters only", ex.Message, StringComparison.Ordinal);

        // Nested in itself.
        var nested = new ProxyConfig(1) { Cluster = TransportSocket("V1", "{name: envoy.transport_sockets.upstream_proxy_protocol, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport, transport_socket: {name: envoy.transport_sockets.raw_buffer}}}") }.Build();
        ex = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(nested));
        Assert.Contains("static_resources.clusters[0].transport_socket.typed_config.transport_socket.typed_config", ex.Message, StringComparison.Ordinal);
    }

    [ToolFact("haproxy")]
    public async Task HaproxyAcceptProxySeesTheClientAddress()
    {
        var haproxyPort = FreePort.Get();
        var config = Path.Combine(Path.GetTempPath(), "legate-haproxy-" + Guid.NewGuid().ToString("N") + ".cfg");
        File.WriteAllText(config, $"""
            global
              maxconn 100
            defaults
              mode http
              timeout connect 5s
              timeout client 30s
              timeout server 30s
            frontend front
              bind 127.0.0.1:{haproxyPort} accept-proxy
              http-request return status 200 content-type text/plain lf-string "%[src]:%[src_port]"

            """);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(haproxyPort) { Cluster = TransportSocket("V2") }.Build());
        var listener = legate.ListenerEndpoint("web");
        using var haproxy = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(ExternalTool.Find("haproxy")!, ["-db", "-f", config]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        try
        {
            // Until HAProxy listens Legate answers 503 UF; then the body is the address HAProxy read from the header.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (true)
            {
                using var client = new TcpClient();
                client.Client.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.4"), 0));
                await client.ConnectAsync(listener);
                var port = ((IPEndPoint)client.Client.LocalEndPoint!).Port;
                await using var connection = new RawHttpConnection(client.Client);
                await connection.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                var response = await connection.ReadResponseAsync();
                if (response.Status == 200)
                {
                    Assert.Equal($"127.0.0.4:{port}", response.BodyText);
                    break;
                }

                Assert.True(DateTime.UtcNow < deadline, "HAProxy did not answer in time: " + response.Status);
                await Task.Delay(50);
            }
        }
        finally
        {
            haproxy.Kill(entireProcessTree: true);
            await haproxy.WaitForExitAsync();
            File.Delete(config);
        }
    }

    /// <summary>Reads one PROXY header: v1 as its text line, v2 as "v2 PROXY src:port dst:port" (or "v2 LOCAL").</summary>
    private static async Task<string> ReadProxyHeaderAsync(Stream stream)
    {
        var first = new byte[16];
        await stream.ReadExactlyAsync(first.AsMemory(0, 6));
        if (Encoding.ASCII.GetString(first, 0, 6) == "PROXY ")
        {
            var line = new StringBuilder("PROXY ");
            var one = new byte[1];
            while (!line.ToString().EndsWith("\r\n", StringComparison.Ordinal))
            {
                await stream.ReadExactlyAsync(one);
                line.Append((char)one[0]);
            }

            return line.ToString(0, line.Length - 2);
        }

        await stream.ReadExactlyAsync(first.AsMemory(6, 10));
        Assert.Equal(new byte[] { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A }, first[..12]);
        var rest = new byte[BinaryPrimitives.ReadUInt16BigEndian(first.AsSpan(14))];
        await stream.ReadExactlyAsync(rest);
        if (first[12] == 0x20)
        {
            return "v2 LOCAL";
        }

        Assert.Equal(0x21, first[12]);
        var addressLength = first[13] switch { 0x11 => 4, 0x21 => 16, var other => throw new InvalidDataException("family " + other) };
        var source = new IPAddress(rest.AsSpan(0, addressLength));
        var destination = new IPAddress(rest.AsSpan(addressLength, addressLength));
        var sourcePort = BinaryPrimitives.ReadUInt16BigEndian(rest.AsSpan(2 * addressLength));
        var destinationPort = BinaryPrimitives.ReadUInt16BigEndian(rest.AsSpan(2 * addressLength + 2));
        var text = new StringBuilder($"v2 PROXY {source}:{sourcePort} {destination}:{destinationPort}");
        for (var at = 2 * addressLength + 4; at < rest.Length;)
        {
            var length = BinaryPrimitives.ReadUInt16BigEndian(rest.AsSpan(at + 1));
            text.Append(CultureInfo.InvariantCulture, $" tlv:{rest[at]:x2}={Encoding.ASCII.GetString(rest, at + 3, length)}");
            at += 3 + length;
        }

        return text.ToString();
    }

    private static async Task<string> ReadProxyHeaderAsync(RawHttpConnection connection)
    {
        // RawHttpConnection buffers its reads: take the v1 line through it.
        return await connection.ReadLineAsync() ?? throw new EndOfStreamException();
    }
}
