using System.Globalization;
using System.Net;
using Legate.Stats;
using Legate.Tests.Harness;

namespace Legate.Tests.Upstream;

/// <summary>
/// The retry storm: a failing upstream behind a route that retries every 5xx up to three times.
/// The cluster's retry circuit breaker (max_retries, or a retry budget) bounds the extra load the
/// upstream sees; the rest is refused and counted in <c>upstream_rq_retry_overflow</c>. Every
/// upstream answer is held at a gate so the retries in flight can be counted exactly.
/// </summary>
public sealed class RetryStormTests
{
    private const int Clients = 50;

    private static string Config(int upstreamPort, string thresholds) => TestConfigs.Admin() + $$"""
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
                    - name: all
                      domains: ["*"]
                      include_request_attempt_count: true
                      routes:
                      - match: { prefix: "/" }
                        route:
                          cluster: backend
                          timeout: 60s
                          retry_policy: { retry_on: 5xx, num_retries: 3, retry_back_off: { base_interval: 0.001s, max_interval: 0.002s } }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: backend
            connect_timeout: 5s
            circuit_breakers:
              thresholds:
              - {{thresholds}}
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstreamPort.ToString(CultureInfo.InvariantCulture)}} } } }
        """;

    [Theory]
    // max_retries 5: at most five retries at once.
    [InlineData("{ max_retries: 5 }", 5, 5)]
    // A budget of 20% of the requests in flight, at least min_retry_concurrency 3. The retries in
    // flight are requests too: r ≤ 20% × (50 first attempts + r) gives at most 12.
    [InlineData("{ retry_budget: { budget_percent: { value: 20 }, min_retry_concurrency: 3 } }", 3, 12)]
    public async Task RetriesAreBoundedByTheRetryCircuitBreakerAndTheOverflowIsCounted(string thresholds, int minRetries, int maxRetries)
    {
        var firstAttempts = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var retries = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("down", 503) with { HoldUntil = retries.Task })
            .When(r => r.Headers["x-envoy-attempt-count"] == "1", UpstreamResponse.Text("down", 503) with { HoldUntil = firstAttempts.Task }));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, thresholds));
        using var client = TestHttp.CreateClient();
        var uri = legate.ListenerUri("web", "/checkout");

        var requests = Enumerable.Range(0, Clients).Select(_ => client.GetAsync(uri)).ToArray();
        await upstream.Log.WaitForRequestsAsync(Clients, TimeSpan.FromSeconds(30));

        // Every first attempt fails at once: the breaker lets a few retries through (held by the
        // upstream), and every other request ends with its 503 without a retry.
        firstAttempts.SetResult();
        await WaitUntilAsync(() => requests.Count(r => r.IsCompleted) + RetriesArrived(upstream) == Clients
            && Counter(legate, "cluster.backend.upstream_rq_retry_overflow") + RetriesArrived(upstream) == Clients,
            "every first attempt to be retried or refused");
        var inFlight = RetriesArrived(upstream);
        Assert.InRange(inFlight, minRetries, maxRetries);
        Assert.Equal(Clients - inFlight, Counter(legate, "cluster.backend.upstream_rq_retry_overflow"));

        // The retries fail too; their requests may retry again (num_retries 3) and then give up.
        retries.SetResult();
        var responses = await Task.WhenAll(requests).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode));

        // Without the breaker the upstream would see 4 × 50 = 200 requests; here at most the
        // retried requests' three retries each on top of the 50.
        var seen = upstream.Log.Count;
        var amplification = (double)seen / Clients;
        Assert.InRange(seen, Clients + inFlight, Clients + (3 * inFlight));
        Assert.True(amplification <= 1.0 + (3.0 * maxRetries / Clients), $"amplification {amplification:F2}");
        Assert.Equal(seen - Clients, Counter(legate, "cluster.backend.upstream_rq_retry"));
        await WaitUntilAsync(() => Gauge(legate, "cluster.backend.circuit_breakers.default.rq_retry_open") == 0, "the retry breaker to close");
    }

    private static int RetriesArrived(ScriptedUpstream upstream) =>
        upstream.Log.Requests.Count(r => r.Header("x-envoy-attempt-count") != "1");

    private static long Counter(InProcessLegate legate, string name) => legate.Server.Stats.Counter(name).Value;

    private static long Gauge(InProcessLegate legate, string name) => legate.Server.Stats.Gauge(name, ImportMode.Accumulate).Value;

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(10);
        }
    }
}
