using System.Net;
using Legate.Tests.Harness;

namespace Legate.Tests.Extensions.Filters.Http.Fault;

/// <summary>
/// The fault filter's runtime keys, as Envoy reads them on every request: <c>fault.http.*</c> (or
/// the config's <c>*_runtime</c> names) override the configured percentages, delay, statuses and
/// the active-fault limit, and a request's <c>x-envoy-downstream-service-cluster</c> switches to
/// that cluster's keys. Changed live with <c>/runtime_modify</c>.
/// </summary>
public sealed class FaultRuntimeTests
{
    private const string Cluster = "x-envoy-downstream-service-cluster";

    [Fact]
    public async Task TheAbortPercentAndStatusKeysOverrideTheConfig()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));

        // Configured at 0%: never injected until the runtime says otherwise.
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "abort: { http_status: 503, percentage: { numerator: 0 } }"));

        Assert.Equal(HttpStatusCode.OK, (await SendAsync(legate, "/a")).StatusCode);

        await ModifyAsync(legate, "fault.http.abort.abort_percent=100");
        using (var aborted = await SendAsync(legate, "/b"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, aborted.StatusCode);
            Assert.Equal("fault filter abort", await aborted.Content.ReadAsStringAsync());
        }

        await ModifyAsync(legate, "fault.http.abort.http_status=418");
        Assert.Equal((HttpStatusCode)418, (await SendAsync(legate, "/c")).StatusCode);

        // Not an HTTP status Legate can send: the configured one stays (Envoy would send it as is).
        await ModifyAsync(legate, "fault.http.abort.http_status=700");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await SendAsync(legate, "/d")).StatusCode);

        await ModifyAsync(legate, "fault.http.abort.abort_percent=0");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(legate, "/e")).StatusCode);

        Assert.Equal(["/a", "/e"], upstream.Log.Requests.Select(r => r.Path));
        Assert.Equal(3, legate.Counter("http.web.fault.aborts_injected"));
    }

    [Fact]
    public async Task TheDownstreamClustersKeysReplaceTheGlobalOnes()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "abort: { http_status: 503, percentage: { numerator: 0 } }",
            staticLayer: "fault.http.abort.abort_percent: 100\nfault.http.web.abort.abort_percent: 100\nfault.http.web.abort.http_status: 429\nfault.http.abort.http_status: 418"));

        // No header: the global keys.
        Assert.Equal((HttpStatusCode)418, (await SendAsync(legate, "/global")).StatusCode);

        // Cluster "web": its own percentage and status.
        Assert.Equal((HttpStatusCode)429, (await SendAsync(legate, "/web", (Cluster, "web"))).StatusCode);

        // Cluster "api" has no keys: the configured 0% (the global percentage key is not read
        // when the request names a cluster, as Envoy).
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(legate, "/api", (Cluster, "api"))).StatusCode);

        Assert.Equal(["/api"], upstream.Log.Requests.Select(r => r.Path));
        Assert.Equal(1, legate.Counter("http.web.fault.web.aborts_injected"));
    }

    [Fact]
    public async Task TheDelayKeysSetThePercentAndTheDuration()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));

        // A configured delay of an hour at 0%: the runtime turns it on and shortens it to 1 ms, so
        // the request completes (the client's 30 s timeout would fail it otherwise).
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "delay: { fixed_delay: 3600s, percentage: { numerator: 0 } }",
            staticLayer: "fault.http.delay.fixed_delay_percent: 100\nfault.http.delay.fixed_duration_ms: 1"));
        legate.Http.Timeout = TimeSpan.FromSeconds(30);

        using var delayed = await SendAsync(legate, "/delayed");

        Assert.Equal(HttpStatusCode.OK, delayed.StatusCode);
        Assert.Equal(1, legate.Counter("http.web.fault.delays_injected"));
        Assert.Equal(0, legate.Gauge("http.web.fault.active_faults"));
    }

    [Fact]
    public async Task TheGrpcStatusKeyOverridesTheConfiguredOne()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "abort: { grpc_status: 14, percentage: { numerator: 100 } }",
            staticLayer: "fault.http.abort.grpc_status: 7"));

        // A gRPC request (content-type application/grpc) gets its abort as a gRPC status.
        using var request = new HttpRequestMessage(HttpMethod.Post, legate.ListenerUri("web", "/pkg.Service/Method"))
        {
            Content = new ByteArrayContent([0, 0, 0, 0, 0]),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        using var aborted = await legate.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, aborted.StatusCode);
        Assert.True(aborted.Headers.TryGetValues("grpc-status", out var status), "no grpc-status");
        Assert.Equal("7", Assert.Single(status));
    }

    [Fact]
    public async Task NamedKeysAndTheActiveFaultLimit()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port,
            "abort: { http_status: 503, percentage: { numerator: 0 } }\nabort_percent_runtime: my.abort\nmax_active_faults_runtime: my.limit",
            staticLayer: "my.abort: 100\nfault.http.abort.abort_percent: 0"));

        // The config's key, not Envoy's default one, is read.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await SendAsync(legate, "/a")).StatusCode);

        // A limit of 0 active faults: no fault is injected and each attempt overflows.
        await ModifyAsync(legate, "my.limit=0");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(legate, "/b")).StatusCode);
        Assert.Equal(1, legate.Counter("http.web.fault.faults_overflow"));
        Assert.Equal(1, legate.Counter("http.web.fault.aborts_injected"));
    }

    [Fact]
    public async Task TheRuntimeFieldsAreNoLongerWarnedAsIgnored()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("from upstream"));
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port,
            "abort: { http_status: 503, percentage: { numerator: 0 } }\nabort_percent_runtime: a\ndelay_percent_runtime: b\ndelay_duration_runtime: c\nabort_http_status_runtime: d\nabort_grpc_status_runtime: e\nmax_active_faults_runtime: f"));

        Assert.DoesNotContain(legate.Logs.Lines, line => line.Contains("_runtime", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(legate, "/")).StatusCode);
    }

    private static Task<HttpResponseMessage> SendAsync(InProcessLegate legate, string path, params (string Name, string Value)[] headers) =>
        legate.GetAsync("web", path, headers);

    private static async Task ModifyAsync(InProcessLegate legate, string query)
    {
        using var response = await legate.Http.PostAsync(new Uri(legate.AdminUri, "runtime_modify?" + query), null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static string Config(int upstreamPort, string fault, string staticLayer = "{}") => new ProxyConfig(upstreamPort)
    {
        Bootstrap = $"layered_runtime:\n  layers:\n  - name: static\n    static_layer:\n{Indent(staticLayer, 6)}\n  - name: admin\n    admin_layer: {{}}",
        HttpFilters = $"- name: envoy.filters.http.fault\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n{Indent(fault, 4)}",
    }.Build();

    private static string Indent(string text, int spaces) =>
        string.Join("\n", text.Split('\n').Select(line => new string(' ', spaces) + line.TrimStart()));
}
