using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Legate.Tests.Harness;
using Legate.Tests.Tls;

namespace Legate.Tests.Extensions.Filters.Network;

/// <summary>envoy.filters.network.tcp_proxy over real sockets: large transfers, half-close, back-pressure, timeouts, routing and TLS passthrough by SNI.</summary>
public sealed class TcpProxyTests
{
    internal static string Config(string tcpProxy, string clusters, string listenerExtra = "", string match = "") =>
        TestConfigs.Admin() + $$"""
        static_resources:
          listeners:
          - name: tcp
            address:
              socket_address: { address: 127.0.0.1, port_value: 0 }
            {{listenerExtra}}
            filter_chains:
            - {{(match.Length > 0 ? "filter_chain_match: " + match + "\n      " : string.Empty)}}filters:
              - name: envoy.filters.network.tcp_proxy
                typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: tcp, {{tcpProxy}}}
          clusters:
        {{clusters}}
        """;

    internal static string Cluster(string name, params int[] ports) =>
        $$"""
          - name: {{name}}
            connect_timeout: 5s
            load_assignment:
              cluster_name: {{name}}
              endpoints:
              - lb_endpoints:
        {{string.Join("\n", ports.Select(p => "        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: " + p.ToString(CultureInfo.InvariantCulture) + " } } }"))}}

        """;

    [Fact]
    public async Task LargeTransfersBothWaysArriveIntact()
    {
        const long Size = 1024L * 1024 * 1024; // 1 GiB each way, as the issue asks
        using var upstream = TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var send = SendPatternAsync(stream, Size, seed: 2, shutdown: () => socket.Shutdown(SocketShutdown.Send));
            var received = await HashToEndAsync(stream);
            await send;
            return received;
        });
        await using var legate = await InProcessLegate.StartAsync(Config("cluster: backend", Cluster("backend", upstream.Port)));

        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        var stream = client.GetStream();
        var sending = SendPatternAsync(stream, Size, seed: 1, shutdown: () => client.Client.Shutdown(SocketShutdown.Send));
        var downloaded = await HashToEndAsync(stream).WaitAsync(TimeSpan.FromMinutes(3));
        await sending;
        var uploaded = await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(PatternHash(Size, 2), downloaded);
        Assert.Equal(PatternHash(Size, 1), uploaded);
        var stats = legate.Server.Stats;
        Assert.Equal(Size, stats.Counter("tcp.tcp.downstream_cx_rx_bytes_total").Value);
        Assert.Equal(Size, stats.Counter("tcp.tcp.downstream_cx_tx_bytes_total").Value);
        Assert.Equal(1, stats.Counter("tcp.tcp.downstream_cx_total").Value);
    }

    [Fact]
    public async Task HalfCloseIsPassedOnInBothDirections()
    {
        // Upstream: read the request to EOF, then answer and close.
        using var upstream = TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var request = await new StreamReader(stream).ReadToEndAsync();
            await stream.WriteAsync(Encoding.ASCII.GetBytes("got: " + request));
            socket.Shutdown(SocketShutdown.Send);
            return request;
        });
        await using var legate = await InProcessLegate.StartAsync(Config("cluster: backend", Cluster("backend", upstream.Port)));

        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        var clientStream = client.GetStream();
        await clientStream.WriteAsync("hello after which I half-close"u8.ToArray());
        client.Client.Shutdown(SocketShutdown.Send);
        var answer = await new StreamReader(clientStream).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("got: hello after which I half-close", answer);

        // The other way round: the upstream closes its side first and still reads what the client sends afterwards.
        using var upstream2 = TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            await stream.WriteAsync("server done"u8.ToArray());
            socket.Shutdown(SocketShutdown.Send);
            return await new StreamReader(stream).ReadToEndAsync();
        });
        await using var legate2 = await InProcessLegate.StartAsync(Config("cluster: backend", Cluster("backend", upstream2.Port)));
        using var client2 = new TcpClient();
        await client2.ConnectAsync(legate2.ListenerEndpoint("tcp"));
        var client2Stream = client2.GetStream();
        var fromServer = await new StreamReader(client2Stream).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await client2Stream.WriteAsync("client still talking"u8.ToArray());
        client2.Client.Shutdown(SocketShutdown.Send);

        Assert.Equal("server done", fromServer);
        Assert.Equal("client still talking", await upstream2.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task ASlowUpstreamHoldsTheClientBackInsteadOfBeingBuffered()
    {
        var release = new TaskCompletionSource();
        using var upstream = TcpUpstream.Start(async socket =>
        {
            socket.ReceiveBufferSize = 64 * 1024;
            await release.Task;
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            return await HashToEndAsync(stream);
        });
        await using var legate = await InProcessLegate.StartAsync(Config("cluster: backend", Cluster("backend", upstream.Port)));
        const long Size = 96L * 1024 * 1024;

        using var client = new TcpClient { SendBufferSize = 64 * 1024 };
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        var sending = SendPatternAsync(client.GetStream(), Size, seed: 3, shutdown: () => client.Client.Shutdown(SocketShutdown.Send));
        var paused = legate.Server.Stats.Counter("tcp.tcp.downstream_flow_control_paused_reading_total");
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while (paused.Value == 0)
            {
                await Task.Delay(10, wait.Token);
            }
        }

        // Legate holds at most a buffer per direction: 96 MiB cannot have left the client yet.
        Assert.False(sending.IsCompleted);
        Assert.True(legate.Server.Stats.Counter("tcp.tcp.downstream_cx_rx_bytes_total").Value < 32L * 1024 * 1024);

        release.SetResult();
        await sending.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(PatternHash(Size, 3), await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.True(legate.Server.Stats.Counter("tcp.tcp.downstream_flow_control_resumed_reading_total").Value >= 1);
    }

    /// <summary>
    /// Many connections at once, each with many small request/response exchanges (the shape of
    /// HTTP keep-alive through a TCP proxy): every answer comes back whole and in order on its own
    /// connection, the byte counters add up, and once the clients close nothing stays buffered,
    /// active or registered.
    /// </summary>
    [Fact]
    public async Task ManySmallExchangesOnManyConnectionsStayOrderedAndAccounted()
    {
        const int Connections = 24;
        const int Exchanges = 200;
        using var upstream = TcpUpstream.Start(async socket =>
        {
            // Answers each 8-byte request with its bytes reversed, until the client's FIN.
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var request = new byte[8];
            var answered = 0;
            while (true)
            {
                var got = 0;
                while (got < request.Length)
                {
                    var n = await stream.ReadAsync(request.AsMemory(got));
                    if (n == 0)
                    {
                        socket.Shutdown(SocketShutdown.Send);
                        return answered.ToString(CultureInfo.InvariantCulture);
                    }

                    got += n;
                }

                Array.Reverse(request);
                await stream.WriteAsync(request);
                answered++;
            }
        });
        await using var legate = await InProcessLegate.StartAsync(Config("cluster: backend", Cluster("backend", upstream.Port)));

        async Task ExchangeAsync(int connection)
        {
            using var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
            var stream = client.GetStream();
            var answer = new byte[8];
            for (var i = 0; i < Exchanges; i++)
            {
                var request = Encoding.ASCII.GetBytes($"{connection:D3}{i:D5}");
                await stream.WriteAsync(request);
                await stream.ReadExactlyAsync(answer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                Array.Reverse(answer);
                Assert.Equal(request, answer);
            }

            client.Client.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await stream.ReadAsync(answer).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        var clients = new Task[Connections];
        for (var c = 0; c < Connections; c++)
        {
            clients[c] = ExchangeAsync(c);
        }

        await Task.WhenAll(clients);
        for (var c = 0; c < Connections; c++)
        {
            Assert.Equal(Exchanges.ToString(CultureInfo.InvariantCulture), await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        const long Bytes = (long)Connections * Exchanges * 8;
        await InProcessLegate.WaitUntilAsync(() => legate.Counter("cluster.backend.upstream_cx_destroy") == Connections, "every upstream connection closed");
        Assert.Equal(Bytes, legate.Counter("tcp.tcp.downstream_cx_rx_bytes_total"));
        Assert.Equal(Bytes, legate.Counter("tcp.tcp.downstream_cx_tx_bytes_total"));
        Assert.Equal(0, legate.Gauge("tcp.tcp.downstream_cx_rx_bytes_buffered"));
        Assert.Equal(0, legate.Gauge("tcp.tcp.downstream_cx_tx_bytes_buffered"));
        Assert.Equal(0, legate.Gauge("cluster.backend.upstream_cx_active"));
    }

    /// <summary>
    /// The other direction: a client that stops reading holds the upstream back. Legate keeps at
    /// most one buffer of the upstream's bytes (counted in <c>downstream_cx_tx_bytes_buffered</c>
    /// while it waits), the upstream's writes stall far short of the whole body, and every byte
    /// arrives once the client reads again.
    /// </summary>
    [Fact]
    public async Task ASlowClientHoldsTheUpstreamBackInsteadOfBeingBuffered()
    {
        const long Size = 96L * 1024 * 1024;
        long sent = 0;
        using var upstream = TcpUpstream.Start(async socket =>
        {
            socket.SendBufferSize = 64 * 1024;
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            // The same pattern as SendPatternAsync (each block numbered), counting what the socket took.
            var block = Block(4);
            for (long offset = 0, index = 0; offset < Size; offset += block.Length, index++)
            {
                BitConverter.TryWriteBytes(block, index);
                var length = (int)Math.Min(block.Length, Size - offset);
                await stream.WriteAsync(block.AsMemory(0, length));
                Interlocked.Add(ref sent, length);
            }

            socket.Shutdown(SocketShutdown.Send);
            return "sent";
        });
        await using var legate = await InProcessLegate.StartAsync(Config("cluster: backend", Cluster("backend", upstream.Port)));

        using var client = new TcpClient { ReceiveBufferSize = 64 * 1024 };
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("tcp.tcp.downstream_cx_tx_bytes_buffered") > 0, "Legate waiting for the client to take bytes");

        // Legate holds at most a buffer per direction: the 96 MiB cannot have left the upstream.
        Assert.True(Interlocked.Read(ref sent) < 32L * 1024 * 1024, $"{Interlocked.Read(ref sent)} bytes left the upstream");
        Assert.True(legate.Counter("tcp.tcp.downstream_cx_tx_bytes_total") < 32L * 1024 * 1024);

        var received = await HashToEndAsync(client.GetStream()).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(PatternHash(Size, 4), received);
        Assert.Equal("sent", await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(Size, legate.Counter("tcp.tcp.downstream_cx_tx_bytes_total"));
    }

    /// <summary>
    /// <c>max_downstream_connection_duration</c> closes a connection that is still busy (the idle
    /// timeout would not): counted in Envoy's <c>max_downstream_connection_duration</c> stat and
    /// logged with the DT response flag.
    /// </summary>
    [Fact]
    public async Task MaxDownstreamConnectionDurationClosesABusyConnection()
    {
        using var upstream = TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var buffer = new byte[1024];
            while (true)
            {
                var n = await stream.ReadAsync(buffer);
                if (n == 0)
                {
                    return "closed";
                }

                await stream.WriteAsync(buffer.AsMemory(0, n));
            }
        });
        var log = Path.Combine(Path.GetTempPath(), "legate-tcp-duration-" + Guid.NewGuid().ToString("N") + ".log");
        var accessLog = $"access_log: [{{name: envoy.access_loggers.file, typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: \"{log}\", log_format: {{text_format_source: {{inline_string: \"%RESPONSE_FLAGS% %UPSTREAM_CLUSTER%\\n\"}}}}}}}}]";
        try
        {
            await using var legate = await InProcessLegate.StartAsync(Config("cluster: backend, idle_timeout: 60s, max_downstream_connection_duration: 0.5s, " + accessLog, Cluster("backend", upstream.Port)));

            using var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
            var stream = client.GetStream();
            var echo = new byte[1];
            var ended = false;
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (!ended)
            {
                // Busy all along: a byte each way per round trip, until Legate closes.
                try
                {
                    await stream.WriteAsync("x"u8.ToArray(), deadline.Token);
                    ended = await stream.ReadAsync(echo, deadline.Token) == 0;
                }
                catch (IOException)
                {
                    ended = true;
                }
            }

            Assert.Equal(1, legate.Counter("tcp.tcp.max_downstream_connection_duration"));
            Assert.Equal(0, legate.Counter("tcp.tcp.idle_timeout"));
            await InProcessLegate.WaitUntilAsync(() => File.Exists(log) && File.ReadAllText(log).Contains('\n'), "the access log entry");
            Assert.Equal("DT backend", File.ReadAllText(log).Trim());
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public async Task IdleConnectionsCloseAndCountTheTimeout()
    {
        using var upstream = TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            return await new StreamReader(stream).ReadToEndAsync();
        });
        await using var legate = await InProcessLegate.StartAsync(Config("cluster: backend, idle_timeout: 0.5s", Cluster("backend", upstream.Port)));

        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        await client.GetStream().WriteAsync("x"u8.ToArray());
        var read = await client.GetStream().ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(0, read);
        Assert.Equal(1, legate.Server.Stats.Counter("tcp.tcp.idle_timeout").Value);
        Assert.Equal("x", await upstream.Results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task NoRouteWeightedClustersAndConnectAttempts()
    {
        await using (var noRoute = await InProcessLegate.StartAsync(Config("cluster: nowhere", Cluster("backend", 1))))
        {
            using var client = new TcpClient();
            await client.ConnectAsync(noRoute.ListenerEndpoint("tcp"));
            Assert.Equal(0, await client.GetStream().ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(1, noRoute.Server.Stats.Counter("tcp.tcp.downstream_cx_no_route").Value);
        }

        using var a = TcpUpstream.Start(async socket => { await using var s = new NetworkStream(socket, true); await s.WriteAsync("a"u8.ToArray()); return "a"; });
        using var b = TcpUpstream.Start(async socket => { await using var s = new NetworkStream(socket, true); await s.WriteAsync("b"u8.ToArray()); return "b"; });
        using var refusedRefusing = FreePort.Refusing();
        var refused = refusedRefusing.Port;
        var clusters = Cluster("a", refused, a.Port) + Cluster("b", b.Port);
        await using var legate = await InProcessLegate.StartAsync(Config("weighted_clusters: {clusters: [{name: a, weight: 1}, {name: b, weight: 1}]}, max_connect_attempts: 2", clusters));

        var seen = new HashSet<string>();
        for (var i = 0; i < 40; i++)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
            seen.Add(await new StreamReader(client.GetStream()).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        // Both clusters got connections, and the refusing host of "a" never cost a client its connection.
        Assert.Equal(["a", "b"], seen.Order());
        Assert.True(legate.Server.Stats.Counter("cluster.a.upstream_cx_connect_fail").Value >= 1);
    }

    [Fact]
    public async Task TlsPassthroughIsRoutedBySni()
    {
        using var pki = new TestCertificates();
        var one = pki.Leaf("one", new() { Dns = ["one.test"], Ecdsa = true });
        var two = pki.Leaf("two", new() { Dns = ["two.test"], Ecdsa = true });
        using var upstreamOne = TlsEchoUpstream(one, "one");
        using var upstreamTwo = TlsEchoUpstream(two, "two");
        var yaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: tcp
                address:
                  socket_address: { address: 127.0.0.1, port_value: 0 }
                listener_filters: [{name: envoy.filters.listener.tls_inspector}]
                filter_chains:
                - filter_chain_match: {server_names: [one.test]}
                  filters: [{name: envoy.filters.network.tcp_proxy, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: one, cluster: one} }]
                - filter_chain_match: {server_names: [two.test]}
                  filters: [{name: envoy.filters.network.tcp_proxy, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: two, cluster: two} }]
              clusters:
            {{Cluster("one", upstreamOne.Port)}}{{Cluster("two", upstreamTwo.Port)}}
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        var endpoint = legate.ListenerEndpoint("tcp");

        foreach (var (sni, expected) in new[] { ("one.test", one), ("two.test", two) })
        {
            await using var ssl = await TestTls.ConnectAsync(endpoint, new() { Sni = sni, TrustedRoot = pki.Root.Certificate });
            Assert.Equal(expected.Certificate.Thumbprint, ssl.RemoteCertificate!.GetCertHashString());
            await ssl.WriteAsync("ping"u8.ToArray());
            var buffer = new byte[64];
            var n = await ssl.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(sni[..3] + ":ping", Encoding.ASCII.GetString(buffer, 0, n));
        }

        Assert.Equal(1, legate.Server.Stats.Counter("tcp.one.downstream_cx_total").Value);
        Assert.Equal(1, legate.Server.Stats.Counter("tcp.two.downstream_cx_total").Value);
    }

    private static TcpUpstream TlsEchoUpstream(TestCertificates.Issued certificate, string name) =>
        TcpUpstream.Start(async socket =>
        {
            await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true));
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate.WithKey() });
            var buffer = new byte[64];
            var n = await ssl.ReadAsync(buffer);
            await ssl.WriteAsync(Encoding.ASCII.GetBytes(name + ":" + Encoding.ASCII.GetString(buffer, 0, n)));
            await ssl.ShutdownAsync();
            return name;
        });

    /// <summary>Deterministic bytes: 64 KiB blocks whose first 8 bytes are the block number (so loss or reordering shows).</summary>
    internal static async Task SendPatternAsync(Stream stream, long size, int seed, Action shutdown)
    {
        await Task.Yield();
        var block = Block(seed);
        for (long sent = 0, index = 0; sent < size; index++)
        {
            BitConverter.TryWriteBytes(block, index);
            var n = (int)Math.Min(block.Length, size - sent);
            await stream.WriteAsync(block.AsMemory(0, n));
            sent += n;
        }

        shutdown();
    }

    internal static string PatternHash(long size, int seed)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var block = Block(seed);
        for (long sent = 0, index = 0; sent < size; index++)
        {
            BitConverter.TryWriteBytes(block, index);
            var n = (int)Math.Min(block.Length, size - sent);
            hash.AppendData(block, 0, n);
            sent += n;
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    private static byte[] Block(int seed)
    {
        var block = new byte[64 * 1024];
        new Random(seed).NextBytes(block);
        return block;
    }

    internal static async Task<string> HashToEndAsync(Stream stream)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[128 * 1024];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            hash.AppendData(buffer, 0, n);
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>A TCP server on 127.0.0.1 running <c>handler</c> per connection; results go to <see cref="Results"/>.</summary>
    internal sealed class TcpUpstream : IDisposable
    {
        private readonly TcpListener _listener;
        private readonly CancellationTokenSource _stop = new();
        private int _accepted;

        private TcpUpstream(Func<Socket, Task<string>> handler)
        {
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            _ = AcceptAsync(handler);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public System.Threading.Channels.Channel<string> Results { get; } = System.Threading.Channels.Channel.CreateUnbounded<string>();

        /// <summary>Connections accepted so far.</summary>
        public int Accepted => Volatile.Read(ref _accepted);

        public static TcpUpstream Start(Func<Socket, Task<string>> handler) => new(handler);

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
        }

        private async Task AcceptAsync(Func<Socket, Task<string>> handler)
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket socket;
                try
                {
                    socket = await _listener.AcceptSocketAsync(_stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                Interlocked.Increment(ref _accepted);
                _ = Task.Run(async () =>
                {
                    try
                    {
                        Results.Writer.TryWrite(await handler(socket));
                    }
                    catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
                    {
                        Results.Writer.TryWrite("error: " + ex.Message);
                    }
                });
            }
        }
    }
}
