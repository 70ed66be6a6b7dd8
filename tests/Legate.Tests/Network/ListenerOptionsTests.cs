using System.Globalization;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Network;

/// <summary>The listener's own options: <c>stat_prefix</c>, <c>tcp_backlog_size</c>, <c>socket_options</c>, <c>freebind</c> and <c>additional_addresses</c>.</summary>
public sealed class ListenerOptionsTests
{
    private const string Request = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    [Fact]
    public async Task StatPrefixRootsTheListenersStatsInsteadOfItsAddress()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: "stat_prefix: public_ingress"));

        Assert.EndsWith("tls ok", await Tls.ListenerFilterTests.RawAsync(legate.ListenerEndpoint("tls"), Request));

        await InProcessLegate.WaitUntilAsync(() => legate.Counter("listener.public_ingress.downstream_cx_destroy") == 1, "the connection's close is counted");
        Assert.Equal(1, legate.Counter("listener.public_ingress.downstream_cx_total"));
        var address = Legate.Network.SocketAddresses.Format(legate.ListenerEndpoint("tls")).Replace(':', '_');
        Assert.DoesNotContain(legate.Server.Stats.Counters(), c => c.Name.Full.StartsWith("listener." + address + ".", StringComparison.Ordinal));
        Assert.Contains("listener.public_ingress.downstream_cx_total: 1", await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/stats?filter=^listener%5C.public_ingress")));
    }

    [Fact]
    public async Task WithoutStatPrefixTheStatsCarryTheAddress()
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null)));

        Assert.EndsWith("tls ok", await Tls.ListenerFilterTests.RawAsync(legate.ListenerEndpoint("tls"), Request));

        var address = Legate.Network.SocketAddresses.Format(legate.ListenerEndpoint("tls")).Replace(':', '_');
        Assert.Equal(1, legate.Counter("listener." + address + ".downstream_cx_total"));
    }

    /// <summary>
    /// The accept queue's length is what <c>ss</c> shows as a listening socket's Send-Q: the
    /// configured <c>tcp_backlog_size</c>, or net.core.somaxconn (Envoy's default on Linux).
    /// </summary>
    [ToolFact("ss")]
    public async Task TcpBacklogSizeIsTheListenQueueLength()
    {
        await using (var configured = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: "tcp_backlog_size: 37")))
        {
            Assert.Equal(37, await ListenBacklogAsync(configured.ListenerEndpoint("tls").Port));
        }

        var somaxconn = int.Parse(File.ReadAllText("/proc/sys/net/core/somaxconn").Trim(), CultureInfo.InvariantCulture);
        await using var byDefault = await InProcessLegate.StartAsync(Bootstrap(Chain(null)));
        Assert.Equal(somaxconn, await ListenBacklogAsync(byDefault.ListenerEndpoint("tls").Port));
    }

    /// <summary>
    /// <c>socket_options</c> are set on the listening socket: SO_RCVBUF shows in its own buffer size
    /// (Linux doubles the value asked for), SO_KEEPALIVE in the connections accepted from it.
    /// </summary>
    [ToolFact("ss")]
    public async Task SocketOptionsAreSetOnTheListeningSocket()
    {
        const string Options = "socket_options: [ { description: rcvbuf, level: 1, name: 8, int_value: 65536 }, { level: 1, name: 9, int_value: 1, state: STATE_LISTENING } ]";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: Options));
        var port = legate.ListenerEndpoint("tls").Port.ToString(CultureInfo.InvariantCulture);

        var listening = await ExternalTool.RunAsync("ss", ["-Hltnm", "sport = :" + port]);
        Assert.Contains("rb131072", listening.Stdout, StringComparison.Ordinal);

        // An idle connection: Legate holds it open, waiting for a request.
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("tls"));
        await InProcessLegate.WaitUntilAsync(() => legate.Gauge("listener." + Legate.Network.SocketAddresses.Format(legate.ListenerEndpoint("tls")).Replace(':', '_') + ".downstream_cx_active") == 1, "the connection accepted");
        var established = await ExternalTool.RunAsync("ss", ["-Htno", "state", "established", "sport = :" + port]);
        Assert.Contains("timer:(keepalive", established.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASocketOptionTheKernelRefusesFailsTheListenerWithItsName()
    {
        var error = await Assert.ThrowsAsync<Legate.Network.BindException>(() => InProcessLegate.StartAsync(
            Bootstrap(Chain(null), listenerExtra: "socket_options: [ { description: bogus, level: 1, name: 9999, int_value: 1 } ]")));

        Assert.StartsWith("listener 'tls': cannot set socket option 'bogus' (level 1, name 9999) on '127.0.0.1:0': ", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// <c>freebind</c>: a listener on an address this host does not have (TEST-NET-1) binds with it
    /// and fails without it, with the kernel's reason.
    /// </summary>
    [Fact]
    public async Task FreebindBindsAnAddressTheHostDoesNotHave()
    {
        static string Config(string extra) => AtForeignAddress("192.0.2.10", extra);

        await using (var legate = await InProcessLegate.StartAsync(Config("freebind: true")))
        {
            Assert.Equal(System.Net.IPAddress.Parse("192.0.2.10"), legate.ListenerEndpoint("tls").Address);
        }

        var error = await Assert.ThrowsAsync<Legate.Network.BindException>(() => InProcessLegate.StartAsync(Config("")));
        Assert.StartsWith("listener 'tls': cannot bind '192.0.2.10:0': ", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// <c>transparent</c>: IP_TRANSPARENT lets the listener bind (and TPROXY hand it) an address
    /// the host does not have; without it that bind fails. Needs CAP_NET_ADMIN (skipped without).
    /// </summary>
    [NetAdminFact]
    public async Task TransparentBindsAnAddressTheHostDoesNotHave()
    {
        static string Config(string extra) => AtForeignAddress("192.0.2.11", extra);

        await using (var legate = await InProcessLegate.StartAsync(Config("transparent: true")))
        {
            Assert.Equal(System.Net.IPAddress.Parse("192.0.2.11"), legate.ListenerEndpoint("tls").Address);
        }

        var error = await Assert.ThrowsAsync<Legate.Network.BindException>(() => InProcessLegate.StartAsync(Config("transparent: false")));
        Assert.StartsWith("listener 'tls': cannot bind '192.0.2.11:0': ", error.Message, StringComparison.Ordinal);
    }

    /// <summary>The test listener on <paramref name="address"/> (TEST-NET-1: not this host's), with <paramref name="extra"/> listener fields.</summary>
    private static string AtForeignAddress(string address, string extra)
    {
        // The listener's address is the bootstrap's last 127.0.0.1:0 (the admin's comes first).
        var yaml = Bootstrap(Chain(null), listenerExtra: extra);
        const string Loopback = "address: 127.0.0.1, port_value: 0 }";
        var at = yaml.LastIndexOf(Loopback, StringComparison.Ordinal);
        return yaml[..at] + "address: " + address + ", port_value: 0 }" + yaml[(at + Loopback.Length)..];
    }

    /// <summary>Runs where IP_TRANSPARENT can be set (CAP_NET_ADMIN), else is reported as skipped.</summary>
    private sealed class NetAdminFactAttribute : FactAttribute
    {
        public NetAdminFactAttribute()
        {
            try
            {
                using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                socket.SetRawSocketOption(0, 19, BitConverter.GetBytes(1));
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or PlatformNotSupportedException)
            {
                Skip = "IP_TRANSPARENT needs CAP_NET_ADMIN on Linux: " + ex.Message;
            }
        }
    }

    /// <summary>
    /// <c>additional_addresses</c>: the listener accepts on each with the same filter chains and
    /// stats; an address's own <c>socket_options</c> replace the listener's (empty: none).
    /// </summary>
    [ToolFact("ss")]
    public async Task AdditionalAddressesServeTheSameChainsWithTheirOwnSocketOptions()
    {
        const string Extra = "socket_options: [ { level: 1, name: 8, int_value: 32768 } ]\n" +
            "    additional_addresses:\n" +
            "    - address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n" +
            "    - address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n" +
            "      socket_options: { socket_options: [] }";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: Extra));
        var listener = legate.Server.Listeners.Find("tls")!;
        Assert.Equal(2, listener.AdditionalBoundEndpoints.Length);

        foreach (var endpoint in listener.AdditionalBoundEndpoints.Prepend(listener.BoundEndpoint!))
        {
            Assert.EndsWith("tls ok", await Tls.ListenerFilterTests.RawAsync(endpoint, Request));
        }

        var address = Legate.Network.SocketAddresses.Format(listener.BoundEndpoint!).Replace(':', '_');
        Assert.Equal(3, legate.Counter("listener." + address + ".downstream_cx_total"));

        // The first additional address inherits the listener's SO_RCVBUF, the second overrides it with none.
        Assert.Contains("rb65536,", await SkmemAsync(listener.BoundEndpoint!.Port), StringComparison.Ordinal);
        Assert.Contains("rb65536,", await SkmemAsync(listener.AdditionalBoundEndpoints[0].Port), StringComparison.Ordinal);
        Assert.DoesNotContain("rb65536,", await SkmemAsync(listener.AdditionalBoundEndpoints[1].Port), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheAdminListsAdditionalAddresses()
    {
        const string Extra = "additional_addresses: [ { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } } ]";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: Extra));
        var listener = legate.Server.Listeners.Find("tls")!;

        using var json = System.Text.Json.JsonDocument.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "listeners?format=json")));
        var status = Assert.Single(json.RootElement.GetProperty("listener_statuses").EnumerateArray());
        var additional = Assert.Single(status.GetProperty("additional_local_addresses").EnumerateArray()).GetProperty("socket_address");
        Assert.Equal("127.0.0.1", additional.GetProperty("address").GetString());
        Assert.Equal(Assert.Single(listener.AdditionalBoundEndpoints).Port, additional.GetProperty("port_value").GetInt32());
        Assert.Equal(listener.BoundEndpoint!.Port, status.GetProperty("local_address").GetProperty("socket_address").GetProperty("port_value").GetInt32());
    }

    [Fact]
    public async Task AnAdditionalAddressInUseFailsTheWholeListener()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);

        var error = await Assert.ThrowsAsync<Legate.Network.BindException>(() => InProcessLegate.StartAsync(Bootstrap(Chain(null),
            listenerExtra: "additional_addresses: [ { address: { socket_address: { address: 127.0.0.1, port_value: " + port + " } } } ]")));

        Assert.Equal($"listener 'tls': cannot bind '127.0.0.1:{port}': address already in use", error.Message);
    }

    /// <summary>
    /// <c>enable_reuse_port</c> (default true on Linux, as Envoy): the listening socket has
    /// SO_REUSEPORT, so another process's socket with SO_REUSEPORT binds the same address beside it
    /// (a hot restart's new generation, a second proxy); Legate goes on accepting. Turned off, that
    /// bind fails as with any taken address.
    /// </summary>
    [Fact]
    public async Task ReusePortLetsAnotherSocketBindTheSameAddressByDefault()
    {
        await using (var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null))))
        {
            var endpoint = legate.ListenerEndpoint("tls");
            using var beside = BindWithReusePort(endpoint);
            Assert.Equal(endpoint, beside.LocalEndPoint);
            Assert.True(legate.Server.Listeners.Find("tls")!.ReusePort);

            // Legate still gets its share: the kernel hashes new connections over both sockets (one
            // that reaches the other socket waits in its accept queue), so of twenty some reach Legate.
            var clients = new List<System.Net.Sockets.TcpClient>();
            try
            {
                for (var i = 0; i < 20; i++)
                {
                    var client = new System.Net.Sockets.TcpClient();
                    clients.Add(client);
                    await client.ConnectAsync(endpoint);
                }

                await InProcessLegate.WaitUntilAsync(() => legate.Counter("listener." + SocketAddresses(endpoint) + ".downstream_cx_total") > 0, "a connection accepted by Legate");
            }
            finally
            {
                clients.ForEach(c => c.Dispose());
            }
        }

        await using var off = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: "enable_reuse_port: false"));
        Assert.False(off.Server.Listeners.Find("tls")!.ReusePort);
        var error = Assert.Throws<System.Net.Sockets.SocketException>(() => BindWithReusePort(off.ListenerEndpoint("tls")));
        Assert.Equal(System.Net.Sockets.SocketError.AddressAlreadyInUse, error.SocketErrorCode);
    }

    /// <summary>
    /// The deprecated <c>reuse_port</c> turns the option on only when <c>enable_reuse_port</c> is
    /// unset; with both set, <c>enable_reuse_port</c> wins and Envoy's warning says so.
    /// </summary>
    [Fact]
    public async Task EnableReusePortWinsOverTheDeprecatedField()
    {
        await using (var both = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: "reuse_port: true\n    enable_reuse_port: false")))
        {
            Assert.False(both.Server.Listeners.Find("tls")!.ReusePort);
            Assert.Contains(both.Server.Warnings, w => w.ToString().StartsWith("static_resources.listeners[0].reuse_port", StringComparison.Ordinal)
                && w.ToString().EndsWith(": reuse_port was configured for listener 'tls' and is ignored in favor of enable_reuse_port", StringComparison.Ordinal));
        }

        await using var deprecated = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: "reuse_port: true"));
        Assert.True(deprecated.Server.Listeners.Find("tls")!.ReusePort);
        Assert.DoesNotContain(deprecated.Server.Warnings, w => w.ToString().Contains("reuse_port", StringComparison.Ordinal));
    }

    /// <summary>
    /// <c>enable_mptcp</c>: the listening socket is Multipath TCP, so an MPTCP client's connection is
    /// MPTCP end to end (the kernel reports the server's key received), a plain TCP client is served
    /// as before; without the option an MPTCP client falls back to TCP (no MPTCP info).
    /// </summary>
    [MptcpFact]
    public async Task EnableMptcpServesMptcpClientsOverMptcp()
    {
        await using (var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: "enable_mptcp: true")))
        {
            var endpoint = legate.ListenerEndpoint("tls");
            using var mptcp = Legate.Network.MptcpSocket.Create(System.Net.Sockets.AddressFamily.InterNetwork);
            Assert.EndsWith("tls ok", await RequestOverAsync(mptcp, endpoint));
            Assert.NotEqual(0, MptcpInfoFlags(mptcp) & MptcpRemoteKeyReceived);

            Assert.EndsWith("tls ok", await Tls.ListenerFilterTests.RawAsync(endpoint, Request));
        }

        await using var plain = await InProcessLegate.StartAsync(Bootstrap(Chain(null)));
        using var fallback = Legate.Network.MptcpSocket.Create(System.Net.Sockets.AddressFamily.InterNetwork);
        Assert.EndsWith("tls ok", await RequestOverAsync(fallback, plain.ListenerEndpoint("tls")));
        Assert.Throws<System.Net.Sockets.SocketException>(() => MptcpInfoFlags(fallback));
    }

    // struct mptcp_info: six one-byte counters, then mptcpi_flags at offset 8; MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED.
    private const int MptcpRemoteKeyReceived = 2;

    /// <summary>getsockopt(SOL_MPTCP, MPTCP_INFO): throws (EOPNOTSUPP) on a connection that fell back to TCP.</summary>
    private static int MptcpInfoFlags(System.Net.Sockets.Socket socket)
    {
        var info = new byte[64];
        socket.GetRawSocketOption(284, 1, info);
        return BitConverter.ToInt32(info, 8);
    }

    private static async Task<string> RequestOverAsync(System.Net.Sockets.Socket socket, System.Net.IPEndPoint endpoint)
    {
        await socket.ConnectAsync(endpoint);
        await using var stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(Request));
        using var reader = new StreamReader(stream);
        return (await reader.ReadToEndAsync()).TrimEnd();
    }

    private sealed class MptcpFactAttribute : FactAttribute
    {
        public MptcpFactAttribute()
        {
            try
            {
                Legate.Network.MptcpSocket.Create(System.Net.Sockets.AddressFamily.InterNetwork).Dispose();
            }
            catch (PlatformNotSupportedException ex)
            {
                Skip = ex.Message;
            }
        }
    }

    /// <summary>
    /// <c>max_connections_to_accept_per_socket_event</c> is met by the accept loop (one connection per
    /// accept): accepted without a warning; 0 is refused as by Envoy's validation (greater than 0).
    /// </summary>
    [Fact]
    public async Task MaxConnectionsToAcceptPerSocketEventIsAcceptedAndZeroRefused()
    {
        await using (var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: "max_connections_to_accept_per_socket_event: 1")))
        {
            Assert.DoesNotContain(legate.Server.Warnings, w => w.ToString().Contains("max_connections_to_accept_per_socket_event", StringComparison.Ordinal));
            var clients = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Tls.ListenerFilterTests.RawAsync(legate.ListenerEndpoint("tls"), Request)));
            Assert.All(clients, response => Assert.EndsWith("tls ok", response, StringComparison.Ordinal));
        }

        var error = await Assert.ThrowsAnyAsync<Exception>(() => InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: "max_connections_to_accept_per_socket_event: 0")));
        Assert.Contains("max_connections_to_accept_per_socket_event", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// <c>tcp_fast_open_queue_length</c>: TCP_FASTOPEN with the queue length on the listening socket
    /// (read back from the kernel); unset leaves the option off.
    /// </summary>
    [Fact]
    public async Task TcpFastOpenQueueLengthIsSetOnTheListeningSocket()
    {
        await using (var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: "tcp_fast_open_queue_length: 64")))
        {
            Assert.Equal(64, TcpFastOpen(legate));
            Assert.EndsWith("tls ok", await Tls.ListenerFilterTests.RawAsync(legate.ListenerEndpoint("tls"), Request));
        }

        await using var unset = await InProcessLegate.StartAsync(Bootstrap(Chain(null)));
        Assert.Equal(0, TcpFastOpen(unset));

        static int TcpFastOpen(InProcessLegate legate)
        {
            var value = new byte[4];
            legate.Server.Listeners.Find("tls")!.ListeningSocket!.GetRawSocketOption(6, 23, value);
            return BitConverter.ToInt32(value);
        }
    }

    private static string SocketAddresses(System.Net.IPEndPoint endpoint) => Legate.Network.SocketAddresses.Format(endpoint).Replace(':', '_');

    private static System.Net.Sockets.Socket BindWithReusePort(System.Net.IPEndPoint endpoint)
    {
        var socket = new System.Net.Sockets.Socket(endpoint.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        try
        {
            socket.SetRawSocketOption(1, 15, BitConverter.GetBytes(1));
            socket.Bind(endpoint);
            socket.Listen(16);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task<string> SkmemAsync(int port) =>
        (await ExternalTool.RunAsync("ss", ["-Hltnm", "sport = :" + port.ToString(CultureInfo.InvariantCulture)])).Stdout;

    private static async Task<int> ListenBacklogAsync(int port)
    {
        // State, Recv-Q, Send-Q (the backlog of a listening socket), local address, peer address.
        var result = await ExternalTool.RunAsync("ss", ["-Hltn", "sport = :" + port.ToString(CultureInfo.InvariantCulture)]);
        Assert.Equal(0, result.ExitCode);
        var fields = Assert.Single(result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return int.Parse(fields[2], CultureInfo.InvariantCulture);
    }
}
