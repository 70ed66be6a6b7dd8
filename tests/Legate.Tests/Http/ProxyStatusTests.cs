using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Http;

/// <summary>
/// <c>proxy_status_config</c>: an RFC 9209 Proxy-Status header on responses whose response flags
/// map to a proxy error, as Envoy's ProxyStatusUtils writes it.
/// </summary>
public sealed class ProxyStatusTests
{
    private const string Refused = "upstream_reset_before_response_started{connection_failure}";

    [Fact]
    public async Task AConnectFailureNamesTheErrorTheDetailsAndTheFlags()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var closed = FreePort.Get();
        await using var legate = await InProcessLegate.StartAsync(Config(closed, "proxy_status_config: {}"));

        using var failed = await legate.GetAsync("web", "/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        Assert.Equal($"envoy; error=connection_refused; details=\"{Refused}; UF\"", Assert.Single(failed.Headers.GetValues("proxy-status")));
    }

    [Fact]
    public async Task AnAnswerWithoutAFlagHasNoHeader()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "proxy_status_config: {}"));

        using var ok = await legate.GetAsync("web", "/");

        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.False(ok.Headers.Contains("proxy-status"));
    }

    [Fact]
    public async Task TheNameTheRecommendedCodeAndWhatIsLeftOut()
    {
        var closed = FreePort.Get();
        await using var literal = await InProcessLegate.StartAsync(Config(closed,
            "proxy_status_config: { literal_proxy_name: edge-1, set_recommended_response_code: true, remove_response_flags: true }"));
        await using var node = await InProcessLegate.StartAsync(Config(closed, "proxy_status_config: { use_node_id: true, remove_details: true }", "node: { id: node-7, cluster: c }"));
        await using var named = await InProcessLegate.StartAsync(Config(closed, "server_name: my-proxy\nproxy_status_config: {}"));

        using var recommended = await literal.GetAsync("web", "/");
        using var nodeNamed = await node.GetAsync("web", "/");
        using var serverNamed = await named.GetAsync("web", "/");

        // connection_refused's recommended status is 502 (instead of Envoy's 503 for UF).
        Assert.Equal(HttpStatusCode.BadGateway, recommended.StatusCode);
        Assert.Equal($"edge-1; error=connection_refused; details=\"{Refused}\"", Assert.Single(recommended.Headers.GetValues("proxy-status")));
        Assert.Equal("node-7; error=connection_refused", Assert.Single(nodeNamed.Headers.GetValues("proxy-status")));
        Assert.StartsWith("my-proxy; error=connection_refused;", Assert.Single(serverNamed.Headers.GetValues("proxy-status")), StringComparison.Ordinal);
    }

    private static string Config(int upstreamPort, string hcm, string bootstrap = "") =>
        new ProxyConfig(upstreamPort) { Hcm = hcm, Bootstrap = bootstrap }.Build();
}
