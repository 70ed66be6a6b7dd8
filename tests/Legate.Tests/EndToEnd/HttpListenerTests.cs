using System.Net;
using System.Net.Sockets;
using Legate.Config;
using Legate.Tests.Harness;

namespace Legate.Tests.EndToEnd;

/// <summary>The interim HTTP listener over real sockets: routing, direct responses, headers, codecs.</summary>
public sealed class HttpListenerTests
{
    private const string Routes = """
        admin:
          address:
            socket_address: { address: 127.0.0.1, port_value: 0 }
        static_resources:
          listeners:
          - name: web
            address:
              socket_address: { address: 127.0.0.1, port_value: 0 }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  route_config:
                    virtual_hosts:
                    - name: api
                      domains: ["api.example.com"]
                      routes:
                      - name: api-root
                        match: { prefix: "/" }
                        direct_response: { status: 201, body: { inline_string: "api\n" } }
                    - name: wild
                      domains: ["*.example.com"]
                      routes:
                      - match: { prefix: "/" }
                        direct_response: { status: 202, body: { inline_string: "wildcard\n" } }
                    - name: default
                      domains: ["*"]
                      routes:
                      - name: exact
                        match: { path: "/exact" }
                        direct_response: { status: 200, body: { inline_string: "exact\n" } }
                      - name: empty
                        match: { prefix: "/empty" }
                        direct_response: { status: 204 }
                      - name: upstream
                        match: { prefix: "/upstream" }
                        route: { cluster: backend }
                      - name: teapot
                        match: { prefix: "/teapot" }
                        direct_response: { status: 418, body: { inline_bytes: "aSdtIGEgdGVhcG90" } }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: backend
            connect_timeout: 1s
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } }
        """;

    [Fact]
    public async Task DirectResponseHasStatusBodyAndEnvoysHeaders()
    {
        await using var legate = await InProcessLegate.StartAsync(Routes);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/exact?query=ignored"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("exact\n", await response.Content.ReadAsStringAsync());
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.ToString());
        Assert.Equal(6, response.Content.Headers.ContentLength);
        Assert.Equal("envoy", Assert.Single(response.Headers.GetValues("server")));
        Assert.NotNull(response.Headers.Date);
    }

    [Fact]
    public async Task InlineBytesBody()
    {
        await using var legate = await InProcessLegate.StartAsync(Routes);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/teapot"));

        Assert.Equal((HttpStatusCode)418, response.StatusCode);
        Assert.Equal("i'm a teapot", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("api.example.com", HttpStatusCode.Created, "api\n")]
    [InlineData("www.example.com", HttpStatusCode.Accepted, "wildcard\n")]
    [InlineData("other.org", HttpStatusCode.NotFound, "")]
    public async Task VirtualHostIsChosenByHost(string host, HttpStatusCode status, string body)
    {
        await using var legate = await InProcessLegate.StartAsync(Routes);
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/nothing-here"));
        request.Headers.Host = host;

        using var response = await legate.Http.SendAsync(request);

        Assert.Equal(status, response.StatusCode);
        Assert.Equal(body, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task NoRouteIsAnEmpty404WithServerHeader()
    {
        await using var legate = await InProcessLegate.StartAsync(Routes);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/no/such/route"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(0, response.Content.Headers.ContentLength);
        Assert.Equal(string.Empty, await response.Content.ReadAsStringAsync());
        Assert.Equal("envoy", Assert.Single(response.Headers.GetValues("server")));
    }

    [Fact]
    public async Task NoContentStatusHasNoBody()
    {
        await using var legate = await InProcessLegate.StartAsync(Routes);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/empty"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task HeadGetsLengthButNoBody()
    {
        await using var legate = await InProcessLegate.StartAsync(Routes);

        using var response = await legate.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, legate.ListenerUri("web", "/exact")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(6, response.Content.Headers.ContentLength);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task RouteToARefusingHostAnswers503WithEnvoysConnectFailureBody()
    {
        await using var legate = await InProcessLegate.StartAsync(Routes);

        for (var i = 0; i < 2; i++)
        {
            using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/upstream/x"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("upstream connect error or disconnect/reset before headers. reset reason: connection failure", await response.Content.ReadAsStringAsync());
        }

        var stats = legate.Server.Stats;
        Assert.Equal(2, stats.Counter("cluster.backend.upstream_cx_connect_fail").Value);
        Assert.Equal(2, stats.Counter("cluster.backend.upstream_rq_total").Value);

        // Downstream stats are recorded when the stream ends, just after the client has the response.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (stats.Counter("http.web.downstream_rq_5xx").Value < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(2, stats.Counter("http.web.downstream_rq_5xx").Value);
    }

    [Theory]
    [InlineData("server_name: legate-test", "legate-test")]
    [InlineData("server_header_transformation: APPEND_IF_ABSENT", "envoy")]
    [InlineData("server_header_transformation: PASS_THROUGH", null)]
    public async Task ServerHeaderFollowsServerNameAndTransformation(string hcmField, string? expected)
    {
        var yaml = TestConfigs.Admin() + "static_resources:\n  listeners:\n" + TestConfigs.DirectResponseListener("web", extraHcm: hcmField);
        await using var legate = await InProcessLegate.StartAsync(yaml);

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        if (expected is null)
        {
            Assert.False(response.Headers.Contains("server"));
        }
        else
        {
            Assert.Equal(expected, Assert.Single(response.Headers.GetValues("server")));
        }
    }

    [Fact]
    public async Task Http2CodecServesPriorKnowledgeH2c()
    {
        var yaml = TestConfigs.Admin() + "static_resources:\n  listeners:\n" + TestConfigs.DirectResponseListener("h2", extraHcm: "codec_type: HTTP2", body: "over h2\n");
        await using var legate = await InProcessLegate.StartAsync(yaml);
        using var h2 = TestHttp.CreateClient(HttpVersion.Version20);

        using var response = await h2.GetAsync(legate.ListenerUri("h2"));

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("over h2\n", await response.Content.ReadAsStringAsync());
        Assert.Equal("envoy", Assert.Single(response.Headers.GetValues("server")));
    }

    [Fact]
    public async Task ListenerWithAnUnsupportedNetworkFilterIsRejectedAtLoad()
    {
        var yaml = TestConfigs.Admin() + """
            static_resources:
              listeners:
              - name: tcp
                address:
                  socket_address: { address: 127.0.0.1, port_value: 0 }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: tcp
                      cluster: backend
            """;

        var error = await Assert.ThrowsAsync<ConfigException>(() => InProcessLegate.StartAsync(yaml));

        Assert.Equal(
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config (line 12, col 9): network filter \"envoy.filters.network.tcp_proxy\" (type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy) is not supported yet",
            Assert.Single(error.Errors).ToString());
    }

    private static async Task<int> ReadUntilClosedAsync(NetworkStream stream)
    {
        var total = 0;
        var buffer = new byte[256];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10))) > 0)
            {
                total += n;
            }
        }
        catch (IOException)
        {
            // A reset is as closed as a FIN.
        }

        return total;
    }
}
