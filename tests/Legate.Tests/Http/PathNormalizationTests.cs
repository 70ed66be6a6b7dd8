using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Legate.Http;
using Legate.Tests.Extensions.Filters.Http;
using Legate.Tests.Harness;

namespace Legate.Tests.Http;

public sealed class PathNormalizationTests
{
    [Theory]
    [InlineData("/a/b/../c", "/a/c")]
    [InlineData("/a/./b/.", "/a/b/")]
    [InlineData("/../../a", "/a")]
    [InlineData("/a/%2e%2E/b", "/b")]
    [InlineData("/a/%2E/b", "/a/b")]
    [InlineData("/a/..", "/")]
    [InlineData("/a/b/..", "/a/")]
    [InlineData("/%7Euser/%41%62c", "/~user/Abc")]
    [InlineData("/a%2fb", "/a%2Fb")]
    [InlineData("/a%3f", "/a%3F")]
    [InlineData("/a\\b\\..\\c", "/a/c")]
    [InlineData("/bad%zz/x", "/bad%zz/x")]
    [InlineData("/trailing%2", "/trailing%2")]
    [InlineData("/a..b/.c/..d", "/a..b/.c/..d")]
    public void NormalizePathFollowsRfc3986(string input, string expected)
    {
        var config = Config(normalize: true);

        PathNormalizer.Apply(input, config, out var normalized);

        Assert.Equal(expected, normalized);
    }

    [Fact]
    public void TheQueryIsNeverTouched()
    {
        var outcome = PathNormalizer.Apply("/a/../b?x=/../%2F//", Config(normalize: true, mergeSlashes: true), out var normalized);

        Assert.Equal(PathNormalizer.Outcome.Changed, outcome);
        Assert.Equal("/b?x=/../%2F//", normalized);
    }

    [Fact]
    public void MergeSlashesRunsAfterNormalization()
    {
        Assert.Equal(PathNormalizer.Outcome.Changed, PathNormalizer.Apply("//a///b/", Config(mergeSlashes: true), out var merged));
        Assert.Equal("/a/b/", merged);
        Assert.Equal(PathNormalizer.Outcome.Unchanged, PathNormalizer.Apply("/a/b", Config(mergeSlashes: true), out _));
    }

    [Theory]
    [InlineData("KEEP_UNCHANGED", "/a%2Fb", "Unchanged", "/a%2Fb")]
    [InlineData("REJECT_REQUEST", "/a%2Fb", "Reject", "/a%2Fb")]
    [InlineData("REJECT_REQUEST", "/a%5cb", "Reject", "/a%5cb")]
    [InlineData("REJECT_REQUEST", "/ab?x=%2F", "Unchanged", "/ab?x=%2F")]
    [InlineData("UNESCAPE_AND_FORWARD", "/a%2fb%5Cc", "Changed", "/a/b\\c")]
    [InlineData("UNESCAPE_AND_REDIRECT", "/a%2Fb", "Redirect", "/a/b")]
    [InlineData("UNESCAPE_AND_REDIRECT", "/a/b", "Unchanged", "/a/b")]
    public void EscapedSlashesActions(string action, string input, string expected, string expectedPath)
    {
        var outcome = PathNormalizer.Apply(input, Config(escapedSlashes: action), out var normalized);

        Assert.Equal(expected, outcome.ToString());
        Assert.Equal(expectedPath, normalized);
    }

    private static HttpConnectionManagerConfig Config(bool normalize = false, bool mergeSlashes = false, string escapedSlashes = "KEEP_UNCHANGED")
    {
        var yaml = $$"""
            static_resources:
              listeners:
              - name: web
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: t
                      normalize_path: {{(normalize ? "true" : "false")}}
                      merge_slashes: {{(mergeSlashes ? "true" : "false")}}
                      path_with_escaped_slashes_action: {{escapedSlashes}}
                      route_config: { virtual_hosts: [ { name: all, domains: ["*"], routes: [ { match: { prefix: "/" }, direct_response: { status: 200 } } ] } ] }
                      http_filters: [ { name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } } ]
            """;
        using var harness = new FilterChainHarness(yaml);
        return harness.Config;
    }

    // ------------------------------------------------------------------ end to end

    private static string ListenerConfig(int upstreamPort, string hcmExtra) =>
        TestConfigs.Admin() + $$"""
        static_resources:
          listeners:
          - name: web
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  {{hcmExtra}}
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { path: "/admin" }
                        direct_response: { status: 403, body: { inline_string: "admin is closed" } }
                      - match: { prefix: "/" }
                        route: { cluster: backend }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
          clusters:
          - name: backend
            connect_timeout: 1s
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstreamPort.ToString(CultureInfo.InvariantCulture)}} } } }
        """;

    [Fact]
    public async Task NormalizedPathIsRoutedAndForwarded()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(ListenerConfig(upstream.Port, "normalize_path: true\n          merge_slashes: true"));

        // A dot-segment trick cannot reach /admin past the route table, and the upstream sees the canonical path.
        var blocked = await RawRequestAsync(legate, "GET /public/../admin HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 403 ", blocked, StringComparison.Ordinal);
        Assert.EndsWith("admin is closed", blocked, StringComparison.Ordinal);

        var forwarded = await RawRequestAsync(legate, "GET //a/./b//%63?q=/../x HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 ", forwarded, StringComparison.Ordinal);
        var request = Assert.Single(upstream.Log.Requests);
        Assert.Equal("/a/b/c?q=/../x", request.RawTarget);
    }

    [Fact]
    public async Task EscapedSlashesAreRejectedOrRedirectedAsConfigured()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using (var rejecting = await InProcessLegate.StartAsync(ListenerConfig(upstream.Port, "path_with_escaped_slashes_action: REJECT_REQUEST")))
        {
            var rejected = await RawRequestAsync(rejecting, "GET /a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", rejected, StringComparison.Ordinal);
            Assert.Equal(1, rejecting.Server.Stats.Counter("http.web.downstream_rq_failed_path_normalization").Value);

            var passed = await RawRequestAsync(rejecting, "GET /a/b HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.StartsWith("HTTP/1.1 200 ", passed, StringComparison.Ordinal);
            Assert.Equal("/a/b", Assert.Single(upstream.Log.Requests).RawTarget);
            upstream.Log.Clear();
        }

        await using var redirecting = await InProcessLegate.StartAsync(ListenerConfig(upstream.Port, "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT"));
        var redirected = await RawRequestAsync(redirecting, "GET /a%2fb?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 307 Temporary Redirect\r\n", redirected, StringComparison.Ordinal);
        Assert.Contains("\r\nlocation: /a/b?x=1\r\n", redirected, StringComparison.Ordinal);
        Assert.Equal(1, redirecting.Server.Stats.Counter("http.web.downstream_rq_redirected_with_normalized_path").Value);

        // gRPC clients cannot follow redirects: Envoy answers them 400 instead, which a gRPC request
        // receives as a local reply in gRPC form (200, grpc-status 13 for HTTP 400).
        var grpc = await RawRequestAsync(redirecting, "POST /pkg.Svc%2FMethod HTTP/1.1\r\nHost: x\r\ncontent-type: application/grpc\r\ncontent-length: 0\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 ", grpc, StringComparison.Ordinal);
        Assert.Contains("\r\ngrpc-status: 13\r\n", grpc, StringComparison.Ordinal);
        Assert.Empty(upstream.Log.Requests);
    }

    /// <summary>Sends one request with connection: close semantics by half-reading until the body ends.</summary>
    private static async Task<string> RawRequestAsync(InProcessLegate legate, string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("web"));
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request.Replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n", StringComparison.Ordinal)));
        var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await stream.ReadAsync(chunk).AsTask().WaitAsync(TimeSpan.FromSeconds(30))) > 0)
        {
            buffer.Write(chunk, 0, read);
        }

        return Encoding.ASCII.GetString(buffer.ToArray());
    }
}
