using System.Net;
using Legate.Tests.Harness;
using static Legate.Tests.Router.RoutingConfigs;

namespace Legate.Tests.Router;

/// <summary>
/// The stream's random value, as Envoy's stream id (ConnectionManagerImpl::ActiveStream's
/// <c>stream_id_</c>, a fresh <c>random()</c> per stream; the request id extension's
/// <c>toInteger</c> only serves trace sampling): route <c>runtime_fraction</c>, weighted-cluster
/// selection and mirror <c>runtime_fraction</c> are decided on a new draw for every request, so
/// requests that carry the very same x-request-id land on both sides of a 50% split.
/// </summary>
/// <remarks>
/// Each test sends 64 requests with one x-request-id (kept: preserve_external_request_id); with a
/// 50% split, all of them on one side has probability 2⁻⁶³ — were the value taken from the request
/// id, every request would land on the same side.
/// </remarks>
public sealed class StreamRandomValueTests
{
    private const int Requests = 64;
    private const string RequestId = "00000032-0000-4000-8000-000000000000";

    private static async Task SendAllAsync(InProcessLegate legate)
    {
        for (var i = 0; i < Requests; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, legate.ListenerUri("web", "/r" + i));
            request.Headers.Add("x-request-id", RequestId);
            using var response = await legate.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task RouteRuntimeFractionDrawsAFreshValueForEveryRequest()
    {
        await using var canary = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("canary"));
        await using var stable = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("stable"));
        var routes = """
            - match:
                prefix: "/"
                runtime_fraction: { default_value: { numerator: 50 } }
              route: { cluster: canary }
            - match: { prefix: "/" }
              route: { cluster: stable }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("canary", [canary.Port]), ("stable", [stable.Port])], hcmExtra: "preserve_external_request_id: true\n"));

        await SendAllAsync(legate);

        Assert.Equal(Requests, canary.Log.Count + stable.Log.Count);
        Assert.InRange(canary.Log.Count, 1, Requests - 1);
        Assert.All(canary.Log.Requests, r => Assert.Equal(RequestId, r.Header("x-request-id")));
    }

    [Fact]
    public async Task WeightedClustersDrawAFreshValueForEveryRequest()
    {
        await using var blue = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("blue"));
        await using var green = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("green"));
        var routes = """
            - match: { prefix: "/" }
              route:
                weighted_clusters:
                  clusters:
                  - { name: blue, weight: 50 }
                  - { name: green, weight: 50 }
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("blue", [blue.Port]), ("green", [green.Port])], hcmExtra: "preserve_external_request_id: true\n"));

        await SendAllAsync(legate);

        Assert.Equal(Requests, blue.Log.Count + green.Log.Count);
        Assert.InRange(blue.Log.Count, 1, Requests - 1);
    }

    [Fact]
    public async Task MirrorRuntimeFractionDrawsAFreshValueForEveryRequest()
    {
        await using var main = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("main"));
        await using var half = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("half"));
        await using var witness = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("witness"));
        var routes = """
            - match: { prefix: "/" }
              route:
                cluster: main
                request_mirror_policies:
                - cluster: half
                  runtime_fraction: { default_value: { numerator: 50 } }
                - cluster: witness
            """;
        await using var legate = await InProcessLegate.StartAsync(Build(AllDomains(routes), [("main", [main.Port]), ("half", [half.Port]), ("witness", [witness.Port])], hcmExtra: "preserve_external_request_id: true\n"));

        await SendAllAsync(legate);

        // The witness is always mirrored, and decided with the half policy: once it has every copy, so has the half.
        await witness.Log.WaitForRequestsAsync(Requests);
        await WaitUntilAsync(() => Counter(legate, "cluster.half.upstream_rq_completed") == Counter(legate, "cluster.half.upstream_rq_total"), "the half shadow's copies answered");
        Assert.InRange(half.Log.Count, 1, Requests - 1);
        Assert.All(half.Log.Requests, r => Assert.Equal(RequestId, r.Header("x-request-id")));
    }
}
