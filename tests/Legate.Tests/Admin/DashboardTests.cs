using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Legate.Tests.Harness;

namespace Legate.Tests.Admin;

public sealed class DashboardTests
{
    private static string Config(int upstreamPort, int refusedPort) =>
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
                  stat_prefix: ingress
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - name: broken
                        match: { prefix: "/broken" }
                        route: { cluster: refused }
                      - name: app
                        match: { prefix: "/app" }
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
          - name: refused
            connect_timeout: 1s
            load_assignment:
              cluster_name: refused
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{refusedPort.ToString(CultureInfo.InvariantCulture)}} } } }
        """;

    [Fact]
    public async Task DataHasCountsHostsAndTheReasonsForLocalReplies()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        using var refused = FreePort.Refusing();
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, refused.Port));
        for (var i = 0; i < 3; i++)
        {
            using var ok = await legate.Http.GetAsync(legate.ListenerUri("web", "/app/" + i));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using (var failed = await legate.Http.GetAsync(legate.ListenerUri("web", "/broken/thing")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        }

        using (var missing = await legate.Http.GetAsync(legate.ListenerUri("web", "/nowhere")))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        var data = JsonNode.Parse(await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/dashboard/data")))!;

        Assert.Equal("LIVE", (string?)data["state"]);
        var ingress = data["connection_managers"]!.AsArray().Single(c => (string?)c!["name"] == "ingress")!;
        Assert.Equal(5, (long)ingress["rq_total"]!);
        Assert.Equal(3, (long)ingress["rq_2xx"]!);
        Assert.Equal(1, (long)ingress["rq_4xx"]!);
        Assert.Equal(1, (long)ingress["rq_5xx"]!);
        Assert.Equal(5, (long)ingress["latency_ms"]!["count"]!);

        var clusters = data["clusters"]!.AsArray();
        var backend = clusters.Single(c => (string?)c!["name"] == "backend")!;
        Assert.Equal(3, (long)backend["rq_total"]!);
        var host = Assert.Single(backend["hosts"]!.AsArray())!;
        Assert.Equal($"127.0.0.1:{upstream.Port}", (string?)host["address"]);
        Assert.Equal("healthy", (string?)host["flags"]);
        Assert.Equal(3, (long)host["rq_total"]!);
        Assert.Equal(1, (long)clusters.Single(c => (string?)c!["name"] == "refused")!["cx_connect_fail"]!);

        // Newest first: the 404 NR, then the 503 UF with Envoy's details.
        var replies = data["local_replies"]!.AsArray();
        Assert.Equal(2, replies.Count);
        Assert.Equal(404, (int)replies[0]!["status"]!);
        Assert.Equal("NR", (string?)replies[0]!["flags"]);
        Assert.Equal("route_not_found", (string?)replies[0]!["details"]);
        Assert.Equal("/nowhere", (string?)replies[0]!["path"]);
        Assert.Equal(503, (int)replies[1]!["status"]!);
        Assert.Equal("UF", (string?)replies[1]!["flags"]);
        Assert.Equal("UpstreamConnectionFailure", (string?)replies[1]!["flags_long"]);
        Assert.Equal("upstream_reset_before_response_started{connection_failure}", (string?)replies[1]!["details"]);
        Assert.Equal("broken", (string?)replies[1]!["route"]);
        Assert.Equal("refused", (string?)replies[1]!["cluster"]);
        Assert.Equal("ingress", (string?)replies[1]!["connection_manager"]);
    }

    [Fact]
    public async Task HomePageIsTheDashboardWithTheEndpointListAndDashboardStaysAnAlias()
    {
        await using var legate = await InProcessLegate.StartAsync(TestConfigs.Simple());

        using var home = await legate.Http.GetAsync(legate.AdminUri);
        using var alias = await legate.Http.GetAsync(new Uri(legate.AdminUri, "/dashboard"));
        var help = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/help"));

        Assert.Equal(HttpStatusCode.OK, home.StatusCode);
        Assert.Equal("text/html", home.Content.Headers.ContentType?.MediaType);
        var html = await home.Content.ReadAsStringAsync();
        Assert.Equal(html, await alias.Content.ReadAsStringAsync());

        // The dashboard: its tables and the relative data URL (so it works as / and as /dashboard).
        Assert.Contains("fetch(\"dashboard/data\"", html, StringComparison.Ordinal);
        Assert.Contains("<table id=\"local-replies\">", html, StringComparison.Ordinal);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);

        // Envoy's home page list is in it: links for reads, POST forms for state changes, no link to itself.
        Assert.Contains("<a href='stats'>stats</a>", html, StringComparison.Ordinal);
        Assert.Contains("<a href='help'>help</a>", html, StringComparison.Ordinal);
        Assert.Contains("<form action='quitquitquit' method='post'>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<!--admin-index-->", html, StringComparison.Ordinal);
        Assert.DoesNotContain("href=''", html, StringComparison.Ordinal);

        // /help stays Envoy's plain text.
        Assert.StartsWith("admin commands are:\n  /: Admin home page\n", help, StringComparison.Ordinal);
        Assert.Contains("  /dashboard: live dashboard", help, StringComparison.Ordinal);
    }

    [ChromiumFact]
    public async Task LiveNumbersMoveUnderLoadInARealBrowser()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        using var refused = FreePort.Refusing();
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, refused.Port));
        await using var browser = await HeadlessChromium.StartAsync();
        await browser.NavigateAsync(legate.AdminUri);
        await browser.WaitForAsync("document.getElementById('state').textContent === 'LIVE'", TimeSpan.FromSeconds(60));

        // The home page keeps Envoy's endpoint list, and following a link works from it.
        Assert.Equal("stats", (string?)await browser.WaitForAsync("document.querySelector('#admin-endpoints a[href=\"stats\"]').textContent", TimeSpan.FromSeconds(30)));

        // Load in the background until the page shows a request rate above zero.
        using var stop = new CancellationTokenSource();
        var load = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/app/load"), CancellationToken.None);
            }
        });
        try
        {
            await browser.WaitForAsync("parseFloat(document.getElementById('total-rps').textContent.replace(/,/g, '')) > 0", TimeSpan.FromSeconds(60));
            using (var failed = await legate.Http.GetAsync(legate.ListenerUri("web", "/broken/now")))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
            }

            var flag = await browser.WaitForAsync("[...document.querySelectorAll('#local-replies .flag')].map(e => e.textContent).join(' ')", TimeSpan.FromSeconds(60));
            Assert.Contains("UF", (string?)flag, StringComparison.Ordinal);
            var hostRow = await browser.WaitForAsync("document.querySelector('#hosts tbody').textContent", TimeSpan.FromSeconds(30));
            Assert.Contains($"127.0.0.1:{upstream.Port}", (string?)hostRow, StringComparison.Ordinal);

            var screenshot = await browser.ScreenshotAsync();
            Assert.True(screenshot.Length > 1000);
            Assert.Equal(0x89, screenshot[0]); // PNG signature
            var artifacts = Path.Combine(Repository.Root, "TestResults", "artifacts");
            Directory.CreateDirectory(artifacts);
            await File.WriteAllBytesAsync(Path.Combine(artifacts, "dashboard.png"), screenshot);
        }
        finally
        {
            await stop.CancelAsync();
            await load;
        }
    }
}
