using System.Globalization;
using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Http;

/// <summary>Request header mutations of the connection manager that depend on its config: add_user_agent, internal_address_config.</summary>
public sealed class ConnectionManagerHeaderTests
{
    private static string Config(int upstreamPort, string hcmExtra, string node = "") =>
        TestConfigs.ProxyToUpstream(upstreamPort, hcmExtra, node: node);

    private const string Node = "node: { id: edge-7, cluster: frontend }\n";

    [Fact]
    public async Task AddUserAgentNamesTheCallingServiceAndFillsAMissingUserAgent()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "add_user_agent: true", Node));

        using (var withoutAgent = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/a")))
        {
            using var response = await legate.Http.SendAsync(withoutAgent);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using (var withAgent = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/b")))
        {
            withAgent.Headers.TryAddWithoutValidation("user-agent", "curl/8");
            withAgent.Headers.TryAddWithoutValidation("x-envoy-downstream-service-cluster", "spoofed");
            using var response = await legate.Http.SendAsync(withAgent);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var requests = await upstream.Log.WaitForRequestsAsync(2);
        var first = requests.Single(r => r.Path == "/a");
        Assert.Equal("frontend", first.Header("x-envoy-downstream-service-cluster"));
        Assert.Equal("edge-7", first.Header("x-envoy-downstream-service-node"));
        Assert.Equal("frontend", first.Header("user-agent"));

        var second = requests.Single(r => r.Path == "/b");
        Assert.Equal("frontend", second.Header("x-envoy-downstream-service-cluster"));
        Assert.Equal("curl/8", second.Header("user-agent"));
    }

    [Fact]
    public async Task WithoutAddUserAgentNothingIsAdded()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "add_user_agent: false", Node));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/a"));

        var request = Assert.Single(await upstream.Log.WaitForRequestsAsync(1));
        Assert.Null(request.Header("x-envoy-downstream-service-cluster"));
        Assert.Null(request.Header("x-envoy-downstream-service-node"));
    }

    [Fact]
    public async Task LoopbackIsInternalByDefault()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "use_remote_address: true"));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/a"));

        var request = Assert.Single(await upstream.Log.WaitForRequestsAsync(1));
        Assert.Equal("true", request.Header("x-envoy-internal"));
        Assert.Null(request.Header("x-envoy-external-address"));
    }

    [Fact]
    public async Task CidrRangesReplaceTheDefaultInternalAddresses()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        var hcm = "use_remote_address: true\n          internal_address_config: { cidr_ranges: [ { address_prefix: 10.0.0.0, prefix_len: 8 } ] }";
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, hcm));

        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/a"));
        request.Headers.TryAddWithoutValidation("x-envoy-retry-on", "5xx");
        using var response = await legate.Http.SendAsync(request);

        var received = Assert.Single(await upstream.Log.WaitForRequestsAsync(1));
        Assert.Null(received.Header("x-envoy-internal"));
        Assert.Equal("127.0.0.1", received.Header("x-envoy-external-address"));
        Assert.Null(received.Header("x-envoy-retry-on"));
    }

    [Fact]
    public async Task CidrRangesIncludingLoopbackMakeItInternal()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        var hcm = "use_remote_address: true\n          internal_address_config: { cidr_ranges: [ { address_prefix: 127.0.0.0, prefix_len: 8 } ] }";
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, hcm));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/a"));

        Assert.Equal("true", Assert.Single(await upstream.Log.WaitForRequestsAsync(1)).Header("x-envoy-internal"));
    }

    [Theory]
    [InlineData("", null, null)]
    [InlineData("", "1234", "1234")]
    [InlineData("append_x_forwarded_port: true", null, "listener")]
    [InlineData("append_x_forwarded_port: true", "1234", "listener")]
    [InlineData("append_x_forwarded_port: true\nxff_num_trusted_hops: 1", "1234", "1234")]
    [InlineData("append_x_forwarded_port: true\nxff_num_trusted_hops: 1", null, "listener")]
    public async Task AppendXForwardedPortSetsTheListenersPortUnlessATrustedHopDid(string hcm, string? sent, string? expected)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, hcm.Replace("\n", "\n          ", StringComparison.Ordinal)));

        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/p"));
        if (sent is not null)
        {
            request.Headers.TryAddWithoutValidation("x-forwarded-port", sent);
        }

        using var response = await legate.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var forwarded = Assert.Single(await upstream.Log.WaitForRequestsAsync(1)).Header("x-forwarded-port");
        Assert.Equal(expected == "listener" ? legate.ListenerEndpoint("web").Port.ToString(CultureInfo.InvariantCulture) : expected, forwarded);
    }

    [Theory]
    [InlineData("strip_trailing_host_dot: true", "example.com.", "example.com")]
    [InlineData("strip_trailing_host_dot: true", "example.com.:8080", "example.com:8080")]
    [InlineData("strip_trailing_host_dot: true", "example.com", "example.com")]
    [InlineData("strip_trailing_host_dot: true", "[::1]:8080", "[::1]:8080")]
    [InlineData("strip_trailing_host_dot: true\nstrip_any_host_port: true", "example.com.:8080", "example.com")]
    [InlineData("", "example.com.", "example.com.")]
    public async Task StripTrailingHostDotRemovesTheDotBeforeThePort(string hcm, string host, string forwarded)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, hcm.Replace("\n", "\n          ", StringComparison.Ordinal)));

        await using var connection = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));
        await connection.WriteAsync($"GET /h HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        var response = await connection.ReadResponseAsync();
        Assert.Equal(200, response.Status);

        Assert.Equal(forwarded, Assert.Single(await upstream.Log.WaitForRequestsAsync(1)).Header("host"));
    }

    /// <summary>
    /// An IPv4 client of a dual-stack (<c>::</c>) listener: x-forwarded-for and
    /// x-envoy-external-address carry it as IPv4 unless represent_ipv4_remote_address_as_ipv4_mapped_ipv6.
    /// </summary>
    [Theory]
    [InlineData(false, "127.0.0.1")]
    [InlineData(true, "::ffff:127.0.0.1")]
    public async Task AnIpv4ClientOfADualStackListenerIsIpv4UnlessMappedIsAskedFor(bool mapped, string expected)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());

        // Loopback made external, so the edge headers are written.
        var hcm = "use_remote_address: true\n          internal_address_config: { cidr_ranges: [ { address_prefix: 10.0.0.0, prefix_len: 8 } ] }"
            + (mapped ? "\n          represent_ipv4_remote_address_as_ipv4_mapped_ipv6: true" : "");
        var yaml = Config(upstream.Port, hcm);
        const string Loopback = "address: { socket_address: { address: 127.0.0.1, port_value: 0 } }";
        Assert.Equal(1, yaml.Split(Loopback).Length - 1);
        await using var legate = await InProcessLegate.StartAsync(yaml.Replace(Loopback, "address: { socket_address: { address: \"::\", port_value: 0 } }", StringComparison.Ordinal));

        var port = legate.ListenerEndpoint("web").Port;
        using var response = await legate.Http.GetAsync(new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/m"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var request = Assert.Single(await upstream.Log.WaitForRequestsAsync(1));
        Assert.Equal(expected, request.Header("x-forwarded-for"));
        Assert.Equal(expected, request.Header("x-envoy-external-address"));
    }

    [Theory]
    [InlineData("https", null, "https")]
    [InlineData("http", "https", "http")]
    [InlineData(null, "https", "https")]
    public async Task SchemeToOverwriteSetsTheSchemeAndForwardedProto(string? overwrite, string? clientProto, string expected)
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        var hcm = overwrite is null ? "" : $"scheme_header_transformation: {{ scheme_to_overwrite: {overwrite} }}";
        await using var legate = await InProcessLegate.StartAsync(new ProxyConfig(upstream.Port)
        {
            Hcm = hcm,
            RouteConfig = "request_headers_to_add: [{ header: { key: x-scheme, value: \"%REQ(:SCHEME)%\" } }]",
        }.Build());

        using var response = clientProto is null
            ? await legate.GetAsync("web", "/")
            : await legate.GetAsync("web", "/", ("x-forwarded-proto", clientProto));

        var request = Assert.Single(await upstream.Log.WaitForRequestsAsync(1));
        Assert.Equal(expected, request.Header("x-forwarded-proto"));
        Assert.Equal(overwrite ?? "http", request.Header("x-scheme"));
    }
}
