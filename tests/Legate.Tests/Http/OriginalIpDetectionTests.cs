using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Http;

/// <summary>
/// Who the client is: without <c>use_remote_address</c> Envoy takes the client address from
/// x-forwarded-for (its default XFF detection) or from the <c>original_ip_detection_extensions</c>,
/// in order; that address becomes %DOWNSTREAM_REMOTE_ADDRESS% (port 0: none is known) while the
/// peer stays %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%, and decides internal/external only when the
/// extension may vouch for it. Seen by the upstream through request_headers_to_add.
/// </summary>
public sealed class OriginalIpDetectionTests
{
    private const string Echo = """
        request_headers_to_add:
        - header: { key: x-remote, value: "%DOWNSTREAM_REMOTE_ADDRESS%" }
        - header: { key: x-direct, value: "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%" }
        """;

    private const string CustomHeader = """
        - name: envoy.http.original_ip_detection.custom_header
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.http.original_ip_detection.custom_header.v3.CustomHeaderConfig
            header_name: X-Real-IP
        """;

    private const string Xff = """
        - name: envoy.http.original_ip_detection.xff
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.http.original_ip_detection.xff.v3.XffConfig
            xff_num_trusted_hops: 1
        """;

    [Fact]
    public async Task ByDefaultTheLastForwardedForAddressIsTheClient()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, ""));

        using (await legate.GetAsync("web", "/xff", ("x-forwarded-for", "192.0.2.1, 203.0.113.7"))) { }
        using (await legate.GetAsync("web", "/none")) { }
        using (await legate.GetAsync("web", "/garbage", ("x-forwarded-for", "not-an-address"))) { }

        // inet_pton's rules, as Envoy's: no short IPv4 forms, no port.
        using (await legate.GetAsync("web", "/short", ("x-forwarded-for", "10.1"))) { }
        using (await legate.GetAsync("web", "/port", ("x-forwarded-for", "203.0.113.7:80"))) { }

        var requests = await upstream.Log.WaitForRequestsAsync(5);
        var xff = requests.Single(r => r.Path == "/xff");
        Assert.Equal("203.0.113.7:0", xff.Header("x-remote"));
        Assert.Equal("127.0.0.1", xff.Header("x-direct"));

        // Nothing usable in the headers: the peer, with its port.
        foreach (var path in new[] { "/none", "/garbage", "/short", "/port" })
        {
            var request = requests.Single(r => r.Path == path);
            Assert.StartsWith("127.0.0.1:", request.Header("x-remote"), StringComparison.Ordinal);
            Assert.NotEqual("127.0.0.1:0", request.Header("x-remote"));
        }
    }

    [Fact]
    public async Task WithUseRemoteAddressThePeerIsTheClientUnlessHopsAreTrusted()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var peer = await InProcessLegate.StartAsync(Config(upstream.Port, "use_remote_address: true"));
        await using var trusting = await InProcessLegate.StartAsync(Config(upstream.Port, "use_remote_address: true\nxff_num_trusted_hops: 1"));

        using (await peer.GetAsync("web", "/peer", ("x-forwarded-for", "203.0.113.7"))) { }
        using (await trusting.GetAsync("web", "/trusting", ("x-forwarded-for", "198.51.100.2, 203.0.113.7"))) { }

        var requests = await upstream.Log.WaitForRequestsAsync(2);
        Assert.StartsWith("127.0.0.1:", requests.Single(r => r.Path == "/peer").Header("x-remote"), StringComparison.Ordinal);
        Assert.Equal("203.0.113.7:0", requests.Single(r => r.Path == "/trusting").Header("x-remote"));
    }

    [Fact]
    public async Task ExtensionsAreAskedInOrderUntilOneFindsTheClient()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "original_ip_detection_extensions:\n" + CustomHeader + "\n" + Xff));

        using (await legate.GetAsync("web", "/custom", ("x-real-ip", "198.51.100.9"), ("x-forwarded-for", "192.0.2.1, 203.0.113.7"))) { }
        using (await legate.GetAsync("web", "/v6", ("x-real-ip", "2001:db8::5"))) { }

        // Not an address (a port, brackets): the next extension, XFF with one trusted hop.
        using (await legate.GetAsync("web", "/fallback", ("x-real-ip", "198.51.100.9:80"), ("x-forwarded-for", "192.0.2.1, 203.0.113.7"))) { }
        using (await legate.GetAsync("web", "/bracketed", ("x-real-ip", "[2001:db8::5]"), ("x-forwarded-for", "192.0.2.1, 203.0.113.7"))) { }
        using (await legate.GetAsync("web", "/nothing")) { }

        var requests = await upstream.Log.WaitForRequestsAsync(5);
        Assert.Equal("198.51.100.9:0", requests.Single(r => r.Path == "/custom").Header("x-remote"));
        Assert.Equal("[2001:db8::5]:0", requests.Single(r => r.Path == "/v6").Header("x-remote"));
        Assert.Equal("192.0.2.1:0", requests.Single(r => r.Path == "/fallback").Header("x-remote"));
        Assert.Equal("192.0.2.1:0", requests.Single(r => r.Path == "/bracketed").Header("x-remote"));
        Assert.StartsWith("127.0.0.1:", requests.Single(r => r.Path == "/nothing").Header("x-remote"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnExtensionMayVouchForTheAddressForInternalChecks()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var vouching = await InProcessLegate.StartAsync(Config(upstream.Port,
            "original_ip_detection_extensions:\n" + CustomHeader + "\n    allow_extension_to_set_address_as_trusted: true"));
        await using var plain = await InProcessLegate.StartAsync(Config(upstream.Port, "original_ip_detection_extensions:\n" + CustomHeader));

        using (await vouching.GetAsync("web", "/vouched", ("x-real-ip", "10.1.2.3"))) { }
        using (await plain.GetAsync("web", "/plain", ("x-real-ip", "10.1.2.3"))) { }

        var requests = await upstream.Log.WaitForRequestsAsync(2);
        Assert.Equal("true", requests.Single(r => r.Path == "/vouched").Header("x-envoy-internal"));
        Assert.Null(requests.Single(r => r.Path == "/plain").Header("x-envoy-internal"));
    }

    [Fact]
    public async Task RejectWithStatusAnswersWhenTheHeaderIsMissingOrInvalid()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port,
            "original_ip_detection_extensions:\n" + CustomHeader + "\n    reject_with_status: { code: Unauthorized }"));

        using var missing = await legate.GetAsync("web", "/missing");
        using var invalid = await legate.GetAsync("web", "/invalid", ("x-real-ip", "nope"));
        using var valid = await legate.GetAsync("web", "/valid", ("x-real-ip", "198.51.100.9"));

        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal(string.Empty, await missing.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, invalid.StatusCode);
        Assert.Equal(HttpStatusCode.OK, valid.StatusCode);
        Assert.Equal("/valid", Assert.Single(await upstream.Log.WaitForRequestsAsync(1)).Path);
        Assert.Equal(2, legate.Counter("http.web.downstream_rq_rejected_via_ip_detection"));
    }

    [Fact]
    public async Task ARejectStatusOutsideTheErrorsIsA403()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port,
            "original_ip_detection_extensions:\n" + CustomHeader + "\n    reject_with_status: { code: OK }"));

        using var missing = await legate.GetAsync("web", "/missing");

        Assert.Equal(HttpStatusCode.Forbidden, missing.StatusCode);
    }

    [Theory]
    [InlineData("use_remote_address: true", "original IP detection extensions and use_remote_address may not be mixed")]
    [InlineData("xff_num_trusted_hops: 2", "original IP detection extensions and xff_num_trusted_hops may not be mixed")]
    public async Task ExtensionsDoNotMixWithTheConnectionManagersOwnSettings(string setting, string message)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => InProcessLegate.StartAsync(Config(1, setting + "\noriginal_ip_detection_extensions:\n" + CustomHeader)));

        Assert.Contains("typed_config.original_ip_detection_extensions (line ", error.Message, StringComparison.Ordinal);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnotherExtensionTypeIsAConfigError()
    {
        const string notDetection = """
            original_ip_detection_extensions:
            - name: wrong
              typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """;

        var error = await Assert.ThrowsAnyAsync<Exception>(() => InProcessLegate.StartAsync(Config(1, notDetection)));

        Assert.Contains("original_ip_detection_extensions[0].typed_config", error.Message, StringComparison.Ordinal);
        Assert.Contains("is not an original IP detection extension", error.Message, StringComparison.Ordinal);
    }

    private static string Config(int upstreamPort, string hcm) => new ProxyConfig(upstreamPort) { Hcm = hcm, RouteConfig = Echo }.Build();
}
