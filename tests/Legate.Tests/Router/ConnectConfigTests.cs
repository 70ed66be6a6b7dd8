using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;

namespace Legate.Tests.Router;

/// <summary>
/// The terminated CONNECT's <c>connect_config</c> options, as Envoy: <c>allow_post</c> terminates a
/// POST on the route like a CONNECT (200 from the proxy, the request body relayed as raw TCP, the
/// upstream's bytes as the response body until it closes), and <c>proxy_protocol_config</c> puts a
/// PROXY header (v1 or v2) naming the downstream connection before the tunnel's payload.
/// </summary>
public sealed class ConnectConfigTests
{
    private const string HcmConnect = "upgrade_configs: [{ upgrade_type: CONNECT }]";

    /// <summary>Records everything received; echoes it; closes its side once the proxy half-closes.</summary>
    private static RawUpstream EchoUpstream(MemoryStream received) => RawUpstream.Start(async connection =>
    {
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await connection.Stream.ReadAsync(buffer)) > 0)
        {
            lock (received)
            {
                received.Write(buffer, 0, read);
            }

            await connection.WriteAsync(buffer.AsMemory(0, read));
        }
    });

    private static byte[] Snapshot(MemoryStream received)
    {
        lock (received)
        {
            return received.ToArray();
        }
    }

    [Fact]
    public async Task AllowPostTerminatesAPostAndRelaysItsBodyAsRawTcp()
    {
        var received = new MemoryStream();
        await using var upstream = EchoUpstream(received);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Routes = """
                - match: { prefix: "/tunnel" }
                  route: { cluster: backend, upgrade_configs: [{ upgrade_type: CONNECT, connect_config: { allow_post: true } }] }
                """,
        }.Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("POST /tunnel HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world");
        var response = await client.ReadResponseAsync();

        // The upstream got the body alone (no HTTP head), echoed it and closed once the body ended.
        Assert.Equal(200, response.Status);
        Assert.Equal("hello world", response.BodyText);
        Assert.Equal("hello world", Encoding.ASCII.GetString(Snapshot(received)));
    }

    [Fact]
    public async Task WithoutAllowPostAPostIsProxiedAsHttp()
    {
        await using var upstream = RawUpstream.Serve(request => "HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\nhttp");
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Routes = """
                - match: { prefix: "/tunnel" }
                  route: { cluster: backend, upgrade_configs: [{ upgrade_type: CONNECT, connect_config: {} }] }
                """,
        }.Build());
        await using var client = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await client.WriteAsync("POST /tunnel HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
        var response = await client.ReadResponseAsync();

        Assert.Equal(201, response.Status);
        Assert.Equal("http", response.BodyText);
    }

    [Theory]
    [InlineData("V1")]
    [InlineData("V2")]
    public async Task ProxyProtocolConfigAnnouncesTheDownstreamConnectionFirst(string version)
    {
        var received = new MemoryStream();
        await using var upstream = EchoUpstream(received);
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Hcm = HcmConnect,
            Routes = $$"""
                - match: { connect_matcher: {} }
                  route: { cluster: backend, upgrade_configs: [{ upgrade_type: CONNECT, connect_config: { proxy_protocol_config: { version: {{version}} } } }] }
                """,
        }.Build());
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(legate.ListenerEndpoint("web"));
        var clientPort = ((System.Net.IPEndPoint)socket.LocalEndPoint!).Port;
        var listenerPort = legate.ListenerEndpoint("web").Port;
        await using var client = new RawHttpConnection(socket);

        await client.WriteAsync("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        Assert.Equal(200, RawResponse.ParseHead((await client.ReadHeadAsync())!).Status);
        await client.WriteAsync("ping");

        // The echo sends the header back first, then the payload.
        byte[] expected = version == "V1"
            ? Encoding.ASCII.GetBytes($"PROXY TCP4 127.0.0.1 127.0.0.1 {clientPort} {listenerPort}\r\n")
            : [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C, 127, 0, 0, 1, 127, 0, 0, 1,
                (byte)(clientPort >> 8), (byte)clientPort, (byte)(listenerPort >> 8), (byte)listenerPort];
        var echoed = await client.ReadExactlyAsync(expected.Length + 4);
        Assert.Equal([.. expected, .. Encoding.ASCII.GetBytes("ping")], echoed);
    }
}
