using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Legate.Tests.AccessLog;
using Legate.Tests.Harness;
using TcpUpstream = Legate.Tests.Extensions.Filters.Network.TcpProxyTests.TcpUpstream;

namespace Legate.Tests.Extensions.Filters.Network;

/// <summary>
/// tcp_proxy's <c>access_log</c> (one entry per connection at its end, the L4 operators, Envoy's
/// response flags), <c>access_log_options</c> (on connected, periodic) and <c>hash_policy</c>
/// source_ip feeding a ring hash cluster, over real sockets.
/// </summary>
public sealed class TcpProxyAccessLogTests : IDisposable
{
    private const string Format = "%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %BYTES_RECEIVED% %BYTES_SENT% %RESPONSE_FLAGS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS% %UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %DURATION%";

    private readonly string _dir = Directory.CreateTempSubdirectory("legate-tcplog-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Config(string tcpProxyExtra, string clusters, string listenerLog = "") =>
        TestConfigs.Admin() + $$"""
        static_resources:
          listeners:
          - name: tcp
            address:
              socket_address: { address: 127.0.0.1, port_value: 0 }
        {{listenerLog}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.tcp_proxy
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                  stat_prefix: tcp
        {{tcpProxyExtra}}
          clusters:
        {{clusters}}
        """;

    private static string Log(string path, string format, int indent) =>
        new string(' ', indent) + "access_log:\n" + new string(' ', indent) + $$"""
        - name: envoy.access_loggers.file
        {{new string(' ', indent)}}  typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: "{{path}}", log_format: {text_format_source: {inline_string: "{{format}}\n"} } }
        """;

    [Fact]
    public async Task OneEntryPerConnectionWithTheL4Operators()
    {
        using var upstream = TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var request = await new StreamReader(stream).ReadToEndAsync();
            await stream.WriteAsync(Encoding.ASCII.GetBytes("reply:" + request));
            socket.Shutdown(SocketShutdown.Send);
            return request;
        });
        var filterLog = Path.Combine(_dir, "tcp.log");
        var listenerLog = Path.Combine(_dir, "listener.log");
        await using var legate = await InProcessLegate.StartAsync(Config(
            "          cluster: backend\n" + Log(filterLog, Format, 10),
            TcpProxyTests.Cluster("backend", upstream.Port),
            Log(listenerLog, "%UPSTREAM_HOST% %BYTES_RECEIVED% %BYTES_SENT%", 4)));
        var endpoint = new IPEndPoint(IPAddress.Loopback, legate.ListenerEndpoint("tcp").Port);

        using (var client = new TcpClient())
        {
            await client.ConnectAsync(endpoint);
            var stream = client.GetStream();
            await stream.WriteAsync("hello"u8.ToArray());
            client.Client.Shutdown(SocketShutdown.Send);
            Assert.Equal("reply:hello", await new StreamReader(stream).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        var line = Assert.Single(await AccessLogTests.WaitForLinesAsync(filterLog, 1));
        Assert.Matches($@"^127\.0\.0\.1:{upstream.Port} backend 5 11 - 127\.0\.0\.1 127\.0\.0\.1:{endpoint.Port} 127\.0\.0\.1 \d+$", line);

        // The listener's access log formats the same connection info: it sees the upstream too.
        Assert.Equal([$"127.0.0.1:{upstream.Port} 5 11"], await AccessLogTests.WaitForLinesAsync(listenerLog, 1));
    }

    [Fact]
    public async Task FailuresCarryEnvoysResponseFlags()
    {
        using var refusing = FreePort.Refusing();
        using var held = TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            return await new StreamReader(stream).ReadToEndAsync();
        });
        var log = Path.Combine(_dir, "flags.log");
        var clusters = TcpProxyTests.Cluster("refused", refusing.Port) + """
              - name: empty
                connect_timeout: 5s
                load_assignment: { cluster_name: empty }
              - name: limited
                connect_timeout: 5s
                circuit_breakers: { thresholds: [{ max_connections: 1 }] }
                load_assignment:
                  cluster_name: limited
                  endpoints:
                  - lb_endpoints:
                    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{PORT}} } } }

            """.Replace("{{PORT}}", held.Port.ToString(CultureInfo.InvariantCulture));

        // One listener per target cluster (filter chains matched by destination port would do, but this reads simpler).
        var yaml = TestConfigs.Admin() + "static_resources:\n  listeners:\n";
        foreach (var cluster in new[] { "refused", "empty", "limited", "missing" })
        {
            yaml += $$"""
                  - name: {{cluster}}
                    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: {{cluster}}
                          cluster: {{cluster}}
                {{Log(log, "%UPSTREAM_CLUSTER% %RESPONSE_FLAGS%", 10)}}

                """;
        }

        yaml += "  clusters:\n" + clusters;
        await using var legate = await InProcessLegate.StartAsync(yaml);

        // The one connection "limited" allows stays open while the second one is refused.
        using var first = new TcpClient();
        await first.ConnectAsync(legate.ListenerEndpoint("limited"));
        await InProcessLegate.WaitUntilAsync(() => legate.Server.Stats.Counter("cluster.limited.upstream_cx_total").Value == 1, "the first connection to reach the upstream");
        foreach (var listener in new[] { "limited", "refused", "empty", "missing" })
        {
            using var client = new TcpClient();
            await client.ConnectAsync(legate.ListenerEndpoint(listener));
            Assert.Equal(0, await client.GetStream().ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
            await AccessLogTests.WaitForLinesAsync(log, Array.IndexOf(new[] { "limited", "refused", "empty", "missing" }, listener) + 1);
        }

        Assert.Equal(["limited UO", "refused UF,URX", "empty UH", "- NR"], await AccessLogTests.WaitForLinesAsync(log, 4));
        Assert.Equal(1, legate.Server.Stats.Counter("cluster.limited.upstream_cx_overflow").Value);
        Assert.Equal(1, legate.Server.Stats.Counter("cluster.refused.upstream_cx_connect_attempts_exceeded").Value);
        Assert.Equal(1, legate.Server.Stats.Counter("tcp.missing.downstream_cx_no_route").Value);
    }

    [Fact]
    public async Task EntriesOnConnectedPeriodicallyAndAtTheEnd()
    {
        var finish = new TaskCompletionSource();
        using var upstream = TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var buffer = new byte[16];
            var n = await stream.ReadAsync(buffer);
            await stream.WriteAsync(buffer.AsMemory(0, n));
            await finish.Task;
            socket.Shutdown(SocketShutdown.Send);
            return "done";
        });
        var log = Path.Combine(_dir, "periodic.log");
        await using var legate = await InProcessLegate.StartAsync(Config(
            "          cluster: backend\n          access_log_options: { flush_access_log_on_connected: true, access_log_flush_interval: 0.2s }\n" + Log(log, "%ACCESS_LOG_TYPE% %BYTES_RECEIVED% %BYTES_SENT%", 10),
            TcpProxyTests.Cluster("backend", upstream.Port)));

        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("tcp"));
        var stream = client.GetStream();

        // Connected: nothing has flowed yet.
        Assert.Equal("TcpUpstreamConnected 0 0", (await AccessLogTests.WaitForLinesAsync(log, 1))[0]);
        await stream.WriteAsync("ping"u8.ToArray());
        var echo = new byte[4];
        await stream.ReadExactlyAsync(echo).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        // Periodic entries keep coming while the connection is open, with the bytes so far.
        string[] lines = [];
        await AccessLogTests.WaitForAsync(() =>
        {
            lines = File.Exists(log) ? File.ReadAllLines(log) : [];
            return lines.Contains("TcpPeriodic 4 4");
        });
        Assert.All(lines.Skip(1), l => Assert.StartsWith("TcpPeriodic ", l));
        finish.SetResult();
        client.Client.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await stream.ReadAsync(new byte[8]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

        await AccessLogTests.WaitForAsync(() =>
        {
            lines = File.Exists(log) ? File.ReadAllLines(log) : [];
            return lines[^1].StartsWith("TcpConnectionEnd", StringComparison.Ordinal);
        });
        Assert.Equal("TcpConnectionEnd 4 4", lines[^1]);
        Assert.Single(lines, l => l.StartsWith("TcpConnectionEnd", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SourceIpHashPinsAClientToOneRingHashHost()
    {
        var names = new[] { "a", "b", "c" };
        var upstreams = names.Select(name => TcpUpstream.Start(async socket =>
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(name));
            socket.Shutdown(SocketShutdown.Send);
            return name;
        })).ToArray();
        try
        {
            var cluster = TcpProxyTests.Cluster("ring", upstreams.Select(u => u.Port).ToArray()).Replace("    connect_timeout: 5s\n", "    connect_timeout: 5s\n    lb_policy: RING_HASH\n");
            await using var legate = await InProcessLegate.StartAsync(Config("          cluster: ring\n          hash_policy: [{ source_ip: {} }]\n", cluster));
            var port = legate.ListenerEndpoint("tcp").Port;

            async Task<string> FromAsync(string source)
            {
                using var client = new TcpClient();
                client.Client.Bind(new IPEndPoint(IPAddress.Parse(source), 0));
                await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
                return await new StreamReader(client.GetStream()).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }

            // Each source address always lands on the same host (new source port every time)...
            var chosen = new Dictionary<string, string>();
            for (var i = 2; i < 22; i++)
            {
                var source = "127.0.0." + i.ToString(CultureInfo.InvariantCulture);
                var first = await FromAsync(source);
                Assert.Equal(first, await FromAsync(source));
                Assert.Equal(first, await FromAsync(source));
                chosen[source] = first;
            }

            // ...and different sources spread over the ring.
            Assert.True(chosen.Values.Distinct().Count() >= 2, string.Join(",", chosen.Values));
        }
        finally
        {
            foreach (var upstream in upstreams)
            {
                upstream.Dispose();
            }
        }
    }
}
