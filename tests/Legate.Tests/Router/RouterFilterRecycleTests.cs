using System.Net;
using System.Reflection;
using Legate.Router;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// The router filter serves a connection's next stream after a clean one (HttpFilter.TryRecycle):
/// nothing of one request's routing state may reach the next.
/// </summary>
public sealed class RouterFilterRecycleTests
{
    /// <summary>
    /// Tripwire: every per-stream field of RouterFilter must be cleared in TryRecycle. A field added
    /// to the class fails this test until it is reset there and listed here.
    /// </summary>
    [Fact]
    public void EveryFieldIsKnownToTryRecycle()
    {
        var fields = typeof(RouterFilter)
            .GetFields(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            .Select(f => f.Name)
            .Order(StringComparer.Ordinal)
            .ToArray();

        string[] known =
        [
            "_attemptCountOverride", "_attemptDetails", "_attemptFlags", "_attemptIsPerTry", "_attemptLogTimer", "_attemptResponse", "_attemptStart", "_backOff", "_flagsBeforeAttempt", "_cluster", "_connect", "_done", "_factory", "_globalDeadline", "_globalTimeout",
            "_head", "_headersEndStream", "_hedge", "_http2", "_idleTimer", "_lbContext", "_pool", "_redirects", "_replay", "_requestChunked",
            "_requestComplete", "_requestStart", "_resetRegistration", "_responseWaiter", "_retry", "_reusable", "_route",
            "_sendLock", "_sent1xx", "_setCookie", "_shadows", "_stream", "_target", "_tunnel", "_upgrade", "_upstream",
        ];
        Assert.Equal(known.Order(StringComparer.Ordinal), fields);
    }

    [Fact]
    public async Task AnAffinityCookieOfOneRequestDoesNotReachTheNextOnTheSameConnection()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("ok"));
        var routes = """
            - match: { prefix: "/sticky" }
              route:
                cluster: backend
                hash_policy:
                - cookie: { name: lb, ttl: 600s, path: / }
            - match: { prefix: "/" }
              route: { cluster: backend }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("backend", [upstream.Port])]));
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false, UseProxy = false, MaxConnectionsPerServer = 1 });

        for (var round = 0; round < 3; round++)
        {
            using var sticky = await client.GetAsync(legate.ListenerUri("web", "/sticky"));
            Assert.Equal(HttpStatusCode.OK, sticky.StatusCode);
            Assert.Single(sticky.Headers.GetValues("set-cookie"));

            using var plain = await client.GetAsync(legate.ListenerUri("web", "/plain"));
            Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
            Assert.Equal("ok", await plain.Content.ReadAsStringAsync());
            Assert.False(plain.Headers.Contains("set-cookie"));
        }

        // All of it on one downstream connection, so the second request of each pair ran on the
        // first one's recycled router filter.
        Assert.Equal(1, Counter(legate, "http.web.downstream_cx_total"));
        Assert.Equal(6, Counter(legate, "http.web.downstream_rq_total"));
    }
}
