using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;

namespace Legate.Tests.Network;

/// <summary>
/// Listener <c>use_original_dst</c>: a connection whose destination a listener filter restored
/// (here proxy_protocol, which restores it as original_dst does after an iptables REDIRECT) is
/// handed off to the listener owning that address — a <c>bind_to_port: false</c> listener at
/// exactly that address, else one at the port's wildcard address — and served by the receiving
/// listener only when no other owns it.
/// </summary>
public sealed class UseOriginalDstTests
{
    private static string Listener(string name, string address, int port, string body, string extra = "") =>
        $$"""
          - name: {{name}}
            address: { socket_address: { address: {{address}}, port_value: {{port.ToString(CultureInfo.InvariantCulture)}} } }
        {{extra}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: {{name}}
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "{{body}}" } } }]
                  http_filters: [{ name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router} }]

        """;

    // A listener that restores each connection's destination from a PROXY header and hands it off.
    private const string Redirector = """
            use_original_dst: true
            listener_filters: [{name: envoy.filters.listener.proxy_protocol, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol}}]
        """;

    [Fact]
    public async Task RestoredDestinationsGoToTheListenerOwningThem()
    {
        var exactPort = FreePort.Get();
        var wildcardPort = FreePort.Get();
        var yaml = TestConfigs.Admin() + "static_resources:\n  listeners:\n"
            + Listener("redirector", "127.0.0.1", 0, "redirector", Redirector)
            + Listener("exact", "127.0.0.1", exactPort, "exact", "    bind_to_port: false")
            + Listener("wildcard", "0.0.0.0", wildcardPort, "wildcard", "    bind_to_port: false");
        await using var legate = await InProcessLegate.StartAsync(yaml);
        var redirector = legate.ListenerEndpoint("redirector");

        Assert.Equal("exact", await ViaAsync(redirector, exactPort));
        Assert.Equal("wildcard", await ViaAsync(redirector, wildcardPort));
        Assert.Equal("redirector", await ViaAsync(redirector, FreePort.Get()));

        // The listener that took the connection counts it, the receiving one only the connection it kept (as
        // Envoy); the bind-less listeners never opened a port.
        Assert.Equal(1, legate.Server.Stats.Counter("listener.127.0.0.1_" + exactPort.ToString(CultureInfo.InvariantCulture) + ".downstream_cx_total").Value);
        Assert.Equal(1, legate.Server.Stats.Counter("listener.0.0.0.0_" + wildcardPort.ToString(CultureInfo.InvariantCulture) + ".downstream_cx_total").Value);
        var receiving = "listener." + Legate.Network.SocketAddresses.Format(redirector).Replace(':', '_');
        await InProcessLegate.WaitUntilAsync(() => legate.Server.Stats.Counter(receiving + ".downstream_cx_destroy").Value == 1, "the kept connection closed");
        Assert.Equal(1, legate.Server.Stats.Counter(receiving + ".downstream_cx_total").Value);
        using var probe = new TcpClient();
        await Assert.ThrowsAsync<SocketException>(() => probe.ConnectAsync(IPAddress.Loopback, exactPort));
    }

    [Fact]
    public async Task AnAdditionalAddressTakesHandOffsToo()
    {
        var mainPort = FreePort.Get();
        var additionalPort = FreePort.Get();
        var additional = "    bind_to_port: false\n    additional_addresses: [ { address: { socket_address: { address: 127.0.0.1, port_value: "
            + additionalPort.ToString(CultureInfo.InvariantCulture) + " } } } ]";
        var yaml = TestConfigs.Admin() + "static_resources:\n  listeners:\n"
            + Listener("redirector", "127.0.0.1", 0, "redirector", Redirector)
            + Listener("multi", "127.0.0.1", mainPort, "multi", additional);
        await using var legate = await InProcessLegate.StartAsync(yaml);

        Assert.Equal("multi", await ViaAsync(legate.ListenerEndpoint("redirector"), additionalPort));
    }

    /// <summary>A request through <paramref name="redirector"/> whose PROXY header names 127.0.0.1:<paramref name="destinationPort"/>; the response body.</summary>
    private static async Task<string> ViaAsync(IPEndPoint redirector, int destinationPort)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(redirector);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"PROXY TCP4 10.0.0.7 127.0.0.1 40000 {destinationPort}\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        var response = await new StreamReader(stream).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
    }

    [Fact]
    public async Task WithoutUseOriginalDstTheReceivingListenerServes()
    {
        var exactPort = FreePort.Get();
        var yaml = TestConfigs.Admin() + "static_resources:\n  listeners:\n"
            + Listener("redirector", "127.0.0.1", 0, "redirector", """
                    listener_filters: [{name: envoy.filters.listener.proxy_protocol, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol}}]
                """)
            + Listener("exact", "127.0.0.1", exactPort, "exact", "    bind_to_port: false");
        await using var legate = await InProcessLegate.StartAsync(yaml);

        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("redirector"));
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"PROXY TCP4 10.0.0.7 127.0.0.1 40000 {exactPort}\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        Assert.EndsWith("redirector", await new StreamReader(stream).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30)));
    }
}
