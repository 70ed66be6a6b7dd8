using System.Net.Sockets;
using Legate.Tests.Harness;
using Legate.Tests.Xds;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// <c>http2_protocol_options.connection_keepalive</c>: keepalive PINGs on the xDS channel (the
/// envoy_grpc cluster's options), on upstream HTTP/2 connections, and from the downstream HTTP/2
/// codec. PINGs are counted on the wire by a relay or a raw client; waits are on the counts.
/// </summary>
public sealed class Http2KeepaliveTests
{
    private const string Keepalive = "connection_keepalive: { interval: 1s, timeout: 10s }";

    [Fact]
    public async Task TheXdsChannelPingsWithItsClustersConnectionKeepalive()
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1");
        xds.Set(ListenerType, "l1");
        await using var relay = Http2PingRelay.Start(xds.Port);
        var bootstrap = AdsBootstrap(relay.Port).Replace(
            "explicit_http_config: { http2_protocol_options: {} }",
            "explicit_http_config: { http2_protocol_options: { " + Keepalive + " } }",
            StringComparison.Ordinal);
        Assert.Contains("connection_keepalive", bootstrap, StringComparison.Ordinal);
        await using var legate = await InProcessLegate.StartAsync(bootstrap);

        // The stream is quiet after the initial sync: PINGs keep coming, and being answered, the stream stays up.
        await XdsWait.UntilAsync(() => relay.Pings >= 2, "two keepalive PINGs on the xDS connection");
        Assert.Equal(1, xds.StreamsOpened);
        Assert.Equal(1, XdsWait.Gauge(legate, "control_plane.connected_state"));
        Assert.DoesNotContain(legate.Logs.Lines, line => line.Contains("connection_keepalive is parsed but not implemented", StringComparison.Ordinal));
    }

    [Fact]
    public async Task UpstreamHttp2ConnectionsPingWithTheClustersConnectionKeepalive()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("ok")), UpstreamProtocols.Http2);
        await using var relay = Http2PingRelay.Start(upstream.Port);
        var config = new ProxyConfig(relay.Port)
        {
            Cluster = $$"""
                typed_extension_protocol_options:
                  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                    explicit_http_config:
                      http2_protocol_options: { {{Keepalive}} }
                """,
        };
        await using var legate = await InProcessLegate.StartAsync(config.Build());
        Assert.Equal("ok", await legate.Http.GetStringAsync(legate.ListenerUri("web")));

        // The connection stays in the pool, idle: the client pings it.
        await XdsWait.UntilAsync(() => relay.Pings >= 2, "two keepalive PINGs on the upstream connection");
        Assert.Equal("ok", await legate.Http.GetStringAsync(legate.ListenerUri("web")));
        Assert.Equal(1, XdsWait.Counter(legate, "cluster.backend.upstream_cx_total"));
    }

    [Fact]
    public async Task TheDownstreamHttp2CodecPingsAQuietClient()
    {
        var config = new ProxyConfig(9) { Codec = "HTTP2", Hcm = "http2_protocol_options: { " + Keepalive + " }" };
        await using var legate = await InProcessLegate.StartAsync(config.Build());
        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("web"));
        var stream = client.GetStream();
        await stream.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
        await stream.WriteAsync(new byte[] { 0, 0, 0, 0x4, 0, 0, 0, 0, 0 }); // an empty SETTINGS frame

        // Read frames (answering SETTINGS) until the server's first PING; then answer it.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var header = new byte[9];
        while (true)
        {
            await stream.ReadExactlyAsync(header, timeout.Token);
            var payload = new byte[(header[0] << 16) | (header[1] << 8) | header[2]];
            await stream.ReadExactlyAsync(payload, timeout.Token);
            var (type, flags) = (header[3], header[4]);
            if (type == 0x4 && (flags & 0x1) == 0)
            {
                await stream.WriteAsync(new byte[] { 0, 0, 0, 0x4, 0x1, 0, 0, 0, 0 }, timeout.Token);
            }
            else if (type == 0x6 && (flags & 0x1) == 0)
            {
                Assert.Equal(8, payload.Length);
                await stream.WriteAsync(new byte[] { 0, 0, 8, 0x6, 0x1, 0, 0, 0, 0 }.Concat(payload).ToArray(), timeout.Token);
                break;
            }
        }
    }
}
