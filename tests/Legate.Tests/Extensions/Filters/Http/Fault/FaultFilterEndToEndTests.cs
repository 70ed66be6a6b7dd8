using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Extensions.Filters.Http.Fault;

/// <summary>The fault filter through a real Legate, a real upstream and HttpClient.</summary>
public sealed class FaultFilterEndToEndTests
{
    private const string Prefix = "http.ingress.fault.";

    [Fact]
    public async Task FixedAbortAnswersLocallyAndTheUpstreamNeverSeesTheRequest()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port));

        using var aborted = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/fixed-abort"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, aborted.StatusCode);
        Assert.Equal("fault filter abort", await aborted.Content.ReadAsStringAsync());

        // A later request that does reach the upstream proves the aborted one never did.
        using var passed = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/ok"));
        Assert.Equal("from upstream", await passed.Content.ReadAsStringAsync());
        Assert.Equal("/ok", Assert.Single(upstream.Log.Requests).Path);
        Assert.Equal(1, Counter(legate, "aborts_injected"));
    }

    [Fact]
    public async Task RouteConfigReplacesTheListenerConfig()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port));

        // The listener-level config is header-controlled; this route's fixed abort ignores the header.
        using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("ingress", "/fixed-abort"));
        request.Headers.Add("x-envoy-fault-abort-request", "429");
        using var response = await legate.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
    }

    [Fact]
    public async Task HeaderControlledAbort()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port));

        using var plain = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/plain"));
        using var aborted = await SendAsync(legate, "/aborted", ("x-envoy-fault-abort-request", "429"));
        using var zeroPercent = await SendAsync(legate, "/zero", ("x-envoy-fault-abort-request", "429"), ("x-envoy-fault-abort-request-percentage", "0"));
        using var invalid = await SendAsync(legate, "/invalid", ("x-envoy-fault-abort-request", "99"));

        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        Assert.Equal((HttpStatusCode)429, aborted.StatusCode);
        Assert.Equal("fault filter abort", await aborted.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, zeroPercent.StatusCode);
        Assert.Equal(HttpStatusCode.OK, invalid.StatusCode);
        Assert.Equal(["/plain", "/zero", "/invalid"], upstream.Log.Requests.Select(r => r.Path));
        Assert.Equal(1, Counter(legate, "aborts_injected"));
    }

    [Fact]
    public async Task FixedDelayThenTheRequestReachesTheUpstream()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/delayed"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("from upstream", await response.Content.ReadAsStringAsync());
        Assert.Equal("/delayed", Assert.Single(upstream.Log.Requests).Path);
        Assert.Equal(1, Counter(legate, "delays_injected"));
        Assert.Equal(0, Counter(legate, "aborts_injected"));
    }

    [Fact]
    public async Task HeaderControlledDelay()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port));

        using var response = await SendAsync(legate, "/header-delay", ("x-envoy-fault-delay-request", "1"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("/header-delay", Assert.Single(upstream.Log.Requests).Path);
        Assert.Equal(1, Counter(legate, "delays_injected"));
    }

    [Fact]
    public async Task MaxActiveFaultsOverflowLetsTheRequestThrough()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/limited"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("/limited", Assert.Single(upstream.Log.Requests).Path);
        Assert.Equal(1, Counter(legate, "faults_overflow"));
        Assert.Equal(0, Counter(legate, "aborts_injected"));
    }

    [Fact]
    public async Task FilterDisabledOnARoute()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port));

        using var response = await SendAsync(legate, "/off", ("x-envoy-fault-abort-request", "503"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("/off", Assert.Single(upstream.Log.Requests).Path);
        Assert.Equal(0, Counter(legate, "aborts_injected"));
    }

    [Fact]
    public async Task StatsAppearOnTheAdminEndpoint()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port));
        using var aborted = await legate.Http.GetAsync(legate.ListenerUri("ingress", "/fixed-abort"));

        var stats = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/stats?filter=fault"));

        Assert.Contains("http.ingress.fault.aborts_injected: 1", stats, StringComparison.Ordinal);
    }

    private static long Counter(InProcessLegate legate, string name) => legate.Server.Stats.Counter(Prefix + name).Value;

    private static Task<HttpResponseMessage> SendAsync(InProcessLegate legate, string path, params (string Name, string Value)[] headers) =>
        legate.GetAsync("ingress", path, headers);

    private static string Config(int upstreamPort) => $$"""
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
          - name: ingress
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
                      - match: { prefix: "/fixed-abort" }
                        route: { cluster: backend }
                        typed_per_filter_config:
                          envoy.filters.http.fault:
                            "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                            abort: { http_status: 503, percentage: { numerator: 100 } }
                      - match: { prefix: "/delayed" }
                        route: { cluster: backend }
                        typed_per_filter_config:
                          envoy.filters.http.fault:
                            "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                            delay: { fixed_delay: 0.001s, percentage: { numerator: 1000000, denominator: MILLION } }
                      - match: { prefix: "/limited" }
                        route: { cluster: backend }
                        typed_per_filter_config:
                          envoy.filters.http.fault:
                            "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                            abort: { http_status: 503, percentage: { numerator: 10000, denominator: TEN_THOUSAND } }
                            max_active_faults: 0
                      - match: { prefix: "/off" }
                        route: { cluster: backend }
                        typed_per_filter_config:
                          envoy.filters.http.fault:
                            "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                            disabled: true
                      - match: { prefix: "/" }
                        route: { cluster: backend }
                  http_filters:
                  - name: envoy.filters.http.fault
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                      delay: { header_delay: {}, percentage: { numerator: 100 } }
                      abort: { header_abort: {}, percentage: { numerator: 100 } }
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
          - name: backend
            connect_timeout: 5s
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{upstreamPort}} } } }
        """;
}
