using System.Net.Sockets;
using System.Text;
using Envoy.Config.Bootstrap.V3;
using Envoy.Extensions.Filters.Network.TcpProxy.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Tests.Harness;
using Legate.Tests.Tls;
using Legate.Tests.Xds;
using static Legate.Tests.Extensions.Filters.Network.TcpProxyTests;

namespace Legate.Tests.Extensions.Filters.Network;

/// <summary>
/// tcp_proxy's <c>upstream_connect_mode</c> and <c>max_early_data_bytes</c> (Envoy's "delayed
/// upstream connection establishment") over real sockets: no upstream connection before the
/// client's first bytes, early bytes first and whole, a client that leaves silently costs no
/// upstream connection, the TLS handshake mode, the config rules, and YAML / binary agreement.
/// </summary>
public sealed class TcpProxyConnectModeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-tcpmode-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Answers the first 5 bytes with them upper-cased, then returns everything it got until the client's FIN.</summary>
    /// <summary>One whole exchange with the shouting upstream on a new client: "hello" answered "HELLO", then the client's FIN.</summary>
    private static async Task TalkAsync(System.Net.IPEndPoint endpoint, TcpUpstream upstream)
    {
        using var talking = new TcpClient { NoDelay = true };
        await talking.ConnectAsync(endpoint);
        var stream = talking.GetStream();
        await stream.WriteAsync("hello"u8.ToArray());
        var answer = new byte[5];
        await stream.ReadExactlyAsync(answer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("HELLO", Encoding.ASCII.GetString(answer));
        talking.Client.Shutdown(SocketShutdown.Send);
        Assert.Equal("hello", await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    private static TcpUpstream ShoutingUpstream() => TcpUpstream.Start(async socket =>
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        var first = new byte[5];
        await stream.ReadExactlyAsync(first);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(first).ToUpperInvariant()));
        var rest = await new StreamReader(stream).ReadToEndAsync();
        socket.Shutdown(SocketShutdown.Send);
        return Encoding.ASCII.GetString(first) + rest;
    });

    [Theory]
    [InlineData(1024)]
    [InlineData(0)]
    public async Task OnDownstreamDataConnectsOnlyOnceTheClientWrites(int maxEarlyDataBytes)
    {
        using var upstream = ShoutingUpstream();
        await using var legate = await InProcessLegate.StartAsync(TcpProxyTests.Config($"cluster: backend, upstream_connect_mode: ON_DOWNSTREAM_DATA, max_early_data_bytes: {maxEarlyDataBytes}", Cluster("backend", upstream.Port)));

        // A silent client first: its session runs, but opens nothing upstream.
        using var silent = new TcpClient { NoDelay = true };
        await silent.ConnectAsync(legate.ListenerEndpoint("tcp"));
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("tcp.tcp.downstream_cx_total") == 1, "the silent client's session");

        // A talking client after it: one whole exchange through its own upstream connection.
        await TalkAsync(legate.ListenerEndpoint("tcp"), upstream);

        // The silent client's connection was never opened (IMMEDIATE would have opened it first).
        Assert.Equal(1, upstream.Accepted);
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_total"));

        // Now it writes: its upstream opens, the early bytes arrive first, and both ways work.
        var silentStream = silent.GetStream();
        await silentStream.WriteAsync("early"u8.ToArray());
        var reply = new byte[5];
        await silentStream.ReadExactlyAsync(reply).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("EARLY", Encoding.ASCII.GetString(reply));
        await silentStream.WriteAsync(" and later"u8.ToArray());
        silent.Client.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await silentStream.ReadAsync(reply).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal("early and later", await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal(2, upstream.Accepted);
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_cx_destroy") == 2, "both upstream connections closed");
        Assert.Equal(10 + 10, legate.Counter("tcp.tcp.downstream_cx_rx_bytes_total"));
        Assert.Equal(0, legate.Gauge("tcp.tcp.downstream_cx_rx_bytes_buffered"));

        // With a limit of 0 nothing is read before connecting (the client's bytes are only peeked at).
        Assert.Equal(maxEarlyDataBytes > 0 ? 2 : 0, legate.Counter("tcp.tcp.early_data_received_count_total"));
    }

    /// <summary>
    /// A client that sends far more than <c>max_early_data_bytes</c> at once: Legate holds at most
    /// the limit before connecting and stops reading (the rest waits in the kernel), and every byte
    /// arrives upstream in order, in each mode.
    /// </summary>
    [Theory]
    [InlineData("ON_DOWNSTREAM_DATA", 16)]
    [InlineData("ON_DOWNSTREAM_DATA", 0)]
    [InlineData("IMMEDIATE", 16)]
    [InlineData("ON_DOWNSTREAM_TLS_HANDSHAKE", 1000)]
    public async Task EarlyDataBeyondTheLimitArrivesWholeAndInOrder(string mode, int maxEarlyDataBytes)
    {
        const long Size = 8L * 1024 * 1024;
        using var upstream = TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var hash = await HashToEndAsync(stream);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(hash));
            socket.Shutdown(SocketShutdown.Send);
            return hash;
        });
        await using var legate = await InProcessLegate.StartAsync(TcpProxyTests.Config($"cluster: backend, upstream_connect_mode: {mode}, max_early_data_bytes: {maxEarlyDataBytes}", Cluster("backend", upstream.Port)));

        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        var stream = client.GetStream();
        var sending = SendPatternAsync(stream, Size, seed: 7, shutdown: () => client.Client.Shutdown(SocketShutdown.Send));
        var answer = await new StreamReader(stream).ReadToEndAsync().WaitAsync(TimeSpan.FromMinutes(2));
        await sending;

        Assert.Equal(PatternHash(Size, 7), answer);
        Assert.Equal(PatternHash(Size, 7), await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_cx_destroy") == 1, "the upstream connection closed");
        Assert.Equal(Size, legate.Counter("tcp.tcp.downstream_cx_rx_bytes_total"));
        Assert.Equal(0, legate.Gauge("tcp.tcp.downstream_cx_rx_bytes_buffered"));
        Assert.True(legate.Counter("tcp.tcp.early_data_received_count_total") <= 1);
        if (mode == "ON_DOWNSTREAM_DATA" && maxEarlyDataBytes > 0)
        {
            // The first bytes were read before connecting, so they went through the early buffer.
            Assert.Equal(1, legate.Counter("tcp.tcp.early_data_received_count_total"));
        }
    }

    /// <summary>
    /// While the upstream is still connecting (its TLS handshake held back by the test), Legate
    /// holds exactly <c>max_early_data_bytes</c> of the client's bytes and reads no more: the
    /// client's 64 MiB stay in the kernel (back-pressure), nothing went upstream yet; once the
    /// handshake completes, every byte arrives in order over the TLS stream relay.
    /// </summary>
    [Fact]
    public async Task EarlyReadingStopsAtTheLimitUntilTheUpstreamIsConnected()
    {
        const long Size = 64L * 1024 * 1024;
        const int Limit = 4096;
        using var pki = new TestCertificates();
        var backend = pki.Leaf("backend", new() { Dns = ["backend.test"], Ecdsa = true });
        var release = new TaskCompletionSource();
        using var upstream = TcpUpstream.Start(async socket =>
        {
            await release.Task;
            await using var ssl = new System.Net.Security.SslStream(new NetworkStream(socket, ownsSocket: true));
            await ssl.AuthenticateAsServerAsync(new System.Net.Security.SslServerAuthenticationOptions { ServerCertificate = backend.WithKey() });
            var hash = await HashToEndAsync(ssl);
            await ssl.WriteAsync(Encoding.ASCII.GetBytes(hash));
            await ssl.ShutdownAsync();
            return hash;
        });
        var cluster = Cluster("backend", upstream.Port)
            + "    transport_socket: {name: envoy.transport_sockets.tls, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: backend.test}}\n";
        await using var legate = await InProcessLegate.StartAsync(TcpProxyTests.Config($"cluster: backend, upstream_connect_mode: ON_DOWNSTREAM_DATA, max_early_data_bytes: {Limit}", cluster));

        using var client = new TcpClient { NoDelay = true, SendBufferSize = 64 * 1024 };
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        var stream = client.GetStream();
        var sending = SendPatternAsync(stream, Size, seed: 9, shutdown: () => client.Client.Shutdown(SocketShutdown.Send));
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("tcp.tcp.downstream_cx_rx_bytes_buffered") == Limit, "the early buffer full");
        await InProcessLegate.WaitUntilAsync(() => upstream.Accepted == 1, "the upstream connection accepted (its handshake held)");

        Assert.Equal(Limit, legate.Gauge("tcp.tcp.downstream_cx_rx_bytes_buffered"));
        Assert.Equal(0, legate.Counter("tcp.tcp.downstream_cx_rx_bytes_total"));
        Assert.False(sending.IsCompleted);

        release.SetResult();
        var answer = await new StreamReader(stream).ReadToEndAsync().WaitAsync(TimeSpan.FromMinutes(2));
        await sending;
        Assert.Equal(PatternHash(Size, 9), answer);
        Assert.Equal(Size, legate.Counter("tcp.tcp.downstream_cx_rx_bytes_total"));
        Assert.Equal(0, legate.Gauge("tcp.tcp.downstream_cx_rx_bytes_buffered"));
        Assert.Equal(1, legate.Counter("tcp.tcp.early_data_received_count_total"));
    }

    /// <summary>
    /// ON_DOWNSTREAM_DATA and a client that leaves without a byte: no cluster lookup, no host, no
    /// upstream connection; the access log entry has no upstream host or cluster and no response
    /// flag, as Envoy's (its filter looks the cluster up only when it connects).
    /// </summary>
    [Theory]
    [InlineData(1024)]
    [InlineData(0)]
    public async Task AClientThatClosesBeforeWritingOpensNoUpstreamConnection(int maxEarlyDataBytes)
    {
        using var upstream = ShoutingUpstream();
        var log = Path.Combine(_dir, "access.log");
        var accessLog = $"access_log: [{{name: envoy.access_loggers.file, typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: \"{log}\", log_format: {{text_format_source: {{inline_string: \"%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %RESPONSE_FLAGS% %BYTES_RECEIVED% %ACCESS_LOG_TYPE%\\n\"}}}}}}}}]";
        await using var legate = await InProcessLegate.StartAsync(TcpProxyTests.Config($"cluster: backend, upstream_connect_mode: ON_DOWNSTREAM_DATA, max_early_data_bytes: {maxEarlyDataBytes}, " + accessLog, Cluster("backend", upstream.Port)));

        using (var client = new TcpClient())
        {
            await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
            var stream = client.GetStream();
            client.Client.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await stream.ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        await InProcessLegate.WaitUntilAsync(() => File.Exists(log) && File.ReadAllText(log).Contains('\n'), "the access log entry");
        Assert.Equal("- - - 0 TcpConnectionEnd", File.ReadAllText(log).Trim());
        Assert.Equal(1, legate.Counter("tcp.tcp.downstream_cx_total"));
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_cx_total"));
        Assert.Equal(0, legate.Counter("tcp.tcp.downstream_cx_no_route"));
        Assert.Equal(0, legate.Counter("tcp.tcp.early_data_received_count_total"));
        Assert.Equal(0, upstream.Accepted);
    }

    /// <summary>
    /// Early bytes followed at once by the client's FIN, through a cluster whose first host
    /// refuses: the bytes are held across the failed attempt (<c>max_connect_attempts: 2</c>), go
    /// first on the connection that works, and the FIN follows them as a half-close; the
    /// upstream's answer still reaches the client.
    /// </summary>
    [Theory]
    [InlineData("ON_DOWNSTREAM_DATA")]
    [InlineData("IMMEDIATE")]
    public async Task EarlyBytesAndTheClientsFinSurviveAFailedConnectAttempt(string mode)
    {
        using var upstream = ShoutingUpstream();
        using var refusing = FreePort.Refusing();
        await using var legate = await InProcessLegate.StartAsync(TcpProxyTests.Config($"cluster: backend, max_connect_attempts: 2, upstream_connect_mode: {mode}, max_early_data_bytes: 1024", Cluster("backend", refusing.Port, upstream.Port)));

        const int Connections = 6;
        for (var i = 0; i < Connections; i++)
        {
            using var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
            var stream = client.GetStream();
            await stream.WriteAsync("hello"u8.ToArray());
            client.Client.Shutdown(SocketShutdown.Send);
            Assert.Equal("HELLO", await new StreamReader(stream).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal("hello", await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        // Round robin over two hosts: half the connections tried the refusing one first.
        Assert.True(legate.Counter("cluster.backend.upstream_cx_connect_fail") >= 1);
        Assert.Equal(Connections, upstream.Accepted);
        Assert.Equal(Connections * 5, legate.Counter("tcp.tcp.downstream_cx_rx_bytes_total"));
    }

    /// <summary>
    /// The idle timeout runs while ON_DOWNSTREAM_DATA waits for the client's first bytes (Envoy
    /// arms it on the new connection): a silent client is closed and counted, with no upstream.
    /// </summary>
    [Fact]
    public async Task TheIdleTimeoutClosesAClientThatNeverWrites()
    {
        using var upstream = ShoutingUpstream();
        await using var legate = await InProcessLegate.StartAsync(TcpProxyTests.Config("cluster: backend, idle_timeout: 0.3s, upstream_connect_mode: ON_DOWNSTREAM_DATA, max_early_data_bytes: 64", Cluster("backend", upstream.Port)));

        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        Assert.Equal(0, await client.GetStream().ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal(1, legate.Counter("tcp.tcp.idle_timeout"));
        Assert.Equal(0, legate.Counter("cluster.backend.upstream_cx_total"));
        Assert.Equal(0, upstream.Accepted);
    }

    /// <summary>
    /// ON_DOWNSTREAM_TLS_HANDSHAKE on a TLS chain: a client that never finishes its handshake opens
    /// nothing upstream; one that does is connected upstream without sending a byte (so a
    /// server-first protocol works), and early bytes flow over the TLS stream relay.
    /// </summary>
    [Fact]
    public async Task TlsHandshakeModeConnectsOnceTheHandshakeIsDone()
    {
        using var pki = new TestCertificates();
        var leaf = pki.Leaf("server", new() { Dns = ["mode.test"], Ecdsa = true });
        using var upstream = GreetingEchoUpstream();
        var tls = "transport_socket: {name: envoy.transport_sockets.tls, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, common_tls_context: {tls_certificates: [{certificate_chain: {filename: \"" + leaf.ChainPath + "\"}, private_key: {filename: \"" + leaf.KeyPath + "\"}}]}}}";
        await using var legate = await InProcessLegate.StartAsync(TcpProxyTests.Config("cluster: backend, upstream_connect_mode: ON_DOWNSTREAM_TLS_HANDSHAKE, max_early_data_bytes: 4096", Cluster("backend", upstream.Port), match: "{}\n      " + tls));

        // TCP only, no ClientHello: the listener waits for the handshake; tcp_proxy has not started.
        using var stalled = new TcpClient();
        await stalled.ConnectAsync(legate.ListenerEndpoint("tcp"));

        await using (var ssl = await TestTls.ConnectAsync(legate.ListenerEndpoint("tcp"), new() { Sni = "mode.test", TrustedRoot = pki.Root.Certificate }))
        {
            // The upstream speaks first: it must have been connected after the handshake, before any client byte.
            await ExpectGreetingThenEchoAsync(ssl);
        }

        Assert.Equal(1, upstream.Accepted);
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_total"));
    }

    /// <summary>ON_DOWNSTREAM_TLS_HANDSHAKE on a plaintext chain behaves as IMMEDIATE: connected before the client sends anything.</summary>
    [Fact]
    public async Task TlsHandshakeModeOnAPlaintextChainConnectsImmediately()
    {
        using var upstream = GreetingEchoUpstream();
        await using var legate = await InProcessLegate.StartAsync(TcpProxyTests.Config("cluster: backend, upstream_connect_mode: ON_DOWNSTREAM_TLS_HANDSHAKE, max_early_data_bytes: 0", Cluster("backend", upstream.Port)));

        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        await ExpectGreetingThenEchoAsync(client.GetStream());
        Assert.Equal(1, upstream.Accepted);
    }

    /// <summary>The greeting-echo upstream's "hi" arrives before the client sent anything, then "ping" comes back.</summary>
    private static async Task ExpectGreetingThenEchoAsync(Stream stream)
    {
        var greeting = new byte[2];
        await stream.ReadExactlyAsync(greeting).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("hi", Encoding.ASCII.GetString(greeting));
        await stream.WriteAsync("ping"u8.ToArray());
        var echo = new byte[4];
        await stream.ReadExactlyAsync(echo).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("ping", Encoding.ASCII.GetString(echo));
    }

    [Fact]
    public void ANonImmediateModeWithoutMaxEarlyDataBytesIsAConfigError()
    {
        var error = LoadError(TcpProxyTests.Config("cluster: backend, upstream_connect_mode: ON_DOWNSTREAM_DATA", Cluster("backend", 1)));
        Assert.StartsWith("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.max_early_data_bytes", error);
        Assert.EndsWith(": max_early_data_bytes must be set when upstream_connect_mode is not IMMEDIATE (it is ON_DOWNSTREAM_DATA)", error);

        var tooLarge = LoadError(TcpProxyTests.Config("cluster: backend, upstream_connect_mode: ON_DOWNSTREAM_DATA, max_early_data_bytes: 1048577", Cluster("backend", 1)));
        Assert.Contains("typed_config.max_early_data_bytes", tooLarge);
        Assert.Contains("1048576", tooLarge);

        var unknown = LoadError(TcpProxyTests.Config("cluster: backend, upstream_connect_mode: ON_FULL_MOON, max_early_data_bytes: 1", Cluster("backend", 1)));
        Assert.Contains("typed_config.upstream_connect_mode", unknown);
        Assert.Contains("ON_FULL_MOON", unknown);
    }

    /// <summary>
    /// The fields carry Envoy's numbers: a TcpProxy serialized by protobuf (as a control plane
    /// sends it) and the same config in YAML load to the same message, and config_dump shows them.
    /// </summary>
    [Fact]
    public async Task YamlAndBinaryProtobufAgree()
    {
        var proxy = new TcpProxy { StatPrefix = "tcp", Cluster = "backend", UpstreamConnectMode = UpstreamConnectMode.OnDownstreamData, MaxEarlyDataBytes = 2048 };
        var bytes = proxy.ToByteArray();

        // Field 21 (varint 1) and field 22 (a UInt32Value message holding 2048), on the wire.
        var parsed = TcpProxy.Parser.ParseFrom(bytes);
        Assert.Equal(UpstreamConnectMode.OnDownstreamData, parsed.UpstreamConnectMode);
        Assert.Equal(2048u, parsed.MaxEarlyDataBytes);
        var hex = Convert.ToHexString(bytes);
        Assert.Contains("A80101", hex); // tag (21 << 3 | varint) = A8 01, value 1
        Assert.Contains("B20103088010", hex); // tag (22 << 3 | length) = B2 01, 3 bytes: field 1 = 2048

        var yaml = TcpProxyTests.Config("cluster: backend, upstream_connect_mode: ON_DOWNSTREAM_DATA, max_early_data_bytes: 2048", Cluster("backend", 1));
        var yamlPath = Path.Combine(_dir, "envoy.yaml");
        File.WriteAllText(yamlPath, yaml);
        var fromYaml = BootstrapLoader.Load(yamlPath, null).Bootstrap;

        // The binary bootstrap carries the message serialized above inside its Any.
        var binary = fromYaml.Clone();
        binary.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig = new Any { TypeUrl = "type.googleapis.com/" + TcpProxy.Descriptor.FullName, Value = ByteString.CopyFrom(bytes) };
        var pbPath = Path.Combine(_dir, "envoy.pb");
        File.WriteAllBytes(pbPath, binary.ToByteArray());
        var fromPb = BootstrapLoader.Load(pbPath, null).Bootstrap;

        Assert.Equal(
            fromYaml.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig.Unpack<TcpProxy>(),
            fromPb.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig.Unpack<TcpProxy>());
        Assert.Equal(proxy, fromPb.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig.Unpack<TcpProxy>());

        await using var legate = await InProcessLegate.StartAsync(yaml);
        using var http = new HttpClient();
        var dump = await http.GetStringAsync(new Uri(legate.AdminUri, "config_dump"));
        Assert.Contains("\"upstream_connect_mode\": \"ON_DOWNSTREAM_DATA\"", dump);
        Assert.Contains("\"max_early_data_bytes\": 2048", dump);
    }

    /// <summary>
    /// A listener pushed over LDS (binary protobuf on a real ADS stream) applies the fields: a
    /// client that leaves silently opens nothing upstream, one that writes is connected then; the
    /// admin config_dump shows them on the dynamic listener.
    /// </summary>
    [Fact]
    public async Task AListenerPushedOverLdsAppliesTheModeAndConfigDumpShowsIt()
    {
        using var upstream = ShoutingUpstream();
        await using var xds = await Legate.Tests.Xds.ScriptedXdsServer.StartAsync();
        var proxy = new TcpProxy { StatPrefix = "tcp", Cluster = "backend", UpstreamConnectMode = UpstreamConnectMode.OnDownstreamData, MaxEarlyDataBytes = 512 };
        var listener = new Envoy.Config.Listener.V3.Listener
        {
            Name = "tcp",
            Address = new Envoy.Config.Core.V3.Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = "127.0.0.1", PortValue = 0 } },
            FilterChains = { new Envoy.Config.Listener.V3.FilterChain { Filters = { new Envoy.Config.Listener.V3.Filter { Name = "envoy.filters.network.tcp_proxy", TypedConfig = Any.Pack(proxy) } } } },
        };
        xds.Set(XdsTestResources.ClusterType, "c1", XdsTestResources.EdsCluster("backend"));
        xds.Set(XdsTestResources.EndpointType, "e1", XdsTestResources.Endpoints("backend", upstream.Port));
        xds.Set(XdsTestResources.ListenerType, "l1", listener);
        await using var legate = await InProcessLegate.StartAsync(XdsTestResources.AdsBootstrap(xds.Port));
        var endpoint = legate.ListenerEndpoint("tcp");

        using (var silent = new TcpClient())
        {
            await silent.ConnectAsync(endpoint);
            var stream = silent.GetStream();
            silent.Client.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await stream.ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        await TalkAsync(endpoint, upstream);

        Assert.Equal(2, legate.Counter("tcp.tcp.downstream_cx_total"));
        Assert.Equal(1, upstream.Accepted);
        Assert.Equal(1, legate.Counter("cluster.backend.upstream_cx_total"));

        using var http = new HttpClient();
        var dump = await http.GetStringAsync(new Uri(legate.AdminUri, "config_dump?resource=dynamic_listeners"));
        Assert.Contains("\"upstream_connect_mode\": \"ON_DOWNSTREAM_DATA\"", dump);
        Assert.Contains("\"max_early_data_bytes\": 512", dump);
    }

    /// <summary>Says "hi" first, then echoes until the client's FIN.</summary>
    private static TcpUpstream GreetingEchoUpstream() => TcpUpstream.Start(async socket =>
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        await stream.WriteAsync("hi"u8.ToArray());
        var buffer = new byte[1024];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            await stream.WriteAsync(buffer.AsMemory(0, n));
        }

        socket.Shutdown(SocketShutdown.Send);
        return "done";
    });

    private string LoadError(string yaml)
    {
        var path = Path.Combine(_dir, "bad.yaml");
        File.WriteAllText(path, yaml);
        var error = Assert.Throws<ConfigException>(() =>
        {
            var options = CommandLineParser.Parse(["-c", path]);
            LegateServer.Create(options, BootstrapLoader.Load(path, null), LogManager.Create(options, new CapturingLogSink()));
        });
        return Assert.Single(error.Errors).ToString();
    }
}
