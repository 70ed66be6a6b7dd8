using Legate.Tests.Harness;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>Updates applied while traffic flows: no request may fail.</summary>
public sealed class XdsUnderLoadTests
{
    [Fact]
    public async Task TwentyRouteAndEndpointUpdatesUnderContinuousLoadFailNoRequest()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        await using var green2 = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", EdsCluster("blue"), EdsCluster("green"));
        xds.Set(EndpointType, "e0", Endpoints("blue", blue.Port), Endpoints("green", green.Port));
        xds.Set(ListenerType, "l1", RdsListener("ingress", "main"));
        xds.Set(RouteType, "r0", Routes("main", "blue"));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        var uri = legate.ListenerUri("ingress");

        // A client looping requests (two connections at a time) for the whole run.
        using var stop = new CancellationTokenSource();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        long total = 0;
        async Task LoopAsync()
        {
            using var http = TestHttp.CreateClient();
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await http.GetAsync(uri);
                    var body = await response.Content.ReadAsStringAsync();
                    if (!response.IsSuccessStatusCode)
                    {
                        failures.Enqueue($"{(int)response.StatusCode} {body}");
                    }
                    else
                    {
                        seen.AddOrUpdate(body, 1, (_, n) => n + 1);
                    }
                }
                catch (Exception ex)
                {
                    failures.Enqueue(ex.Message);
                }

                Interlocked.Increment(ref total);
            }
        }

        var clients = new[] { Task.Run(LoopAsync), Task.Run(LoopAsync) };
        var started = DateTime.UtcNow;
        for (var i = 1; i <= 20; i++)
        {
            if (i % 2 == 0)
            {
                xds.Set(RouteType, $"r{i}", Routes("main", i % 4 == 0 ? "blue" : "green"));
                await xds.WaitForRequestAsync(r => r.TypeUrl == RouteType && r.VersionInfo == $"r{i}");
            }
            else
            {
                // Endpoint churn: the green cluster moves between two hosts (one kept, one added/removed).
                var ports = i % 4 == 1 ? new[] { green.Port, green2.Port } : new[] { green2.Port };
                xds.Set(EndpointType, $"e{i}", Endpoints("blue", blue.Port), Endpoints("green", ports));
                await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.VersionInfo == $"e{i}");
            }

            // Spread the updates over about ten seconds of traffic.
            var due = started + TimeSpan.FromMilliseconds(500 * i);
            if (due > DateTime.UtcNow)
            {
                await Task.Delay(due - DateTime.UtcNow);
            }
        }

        stop.Cancel();
        await Task.WhenAll(clients);
        Assert.True(failures.IsEmpty, $"{failures.Count} of {total} requests failed: {string.Join(" | ", failures.Take(5))}");
        Assert.True(total > 100, $"only {total} requests were sent");
        Assert.Contains("blue", seen.Keys);
        Assert.Contains("green", seen.Keys);
        Assert.True(XdsWait.Counter(legate, "http.ingress.rds.main.update_success") >= 11);
    }

    [Fact]
    public async Task RequestsInFlightFinishOnTheRouteAndHostTheyStartedWith()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue") with { HoldUntil = gate.Task }));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", EdsCluster("blue"), EdsCluster("green"));
        xds.Set(EndpointType, "e1", Endpoints("blue", blue.Port), Endpoints("green", green.Port));
        xds.Set(ListenerType, "l1", RdsListener("ingress", "main"));
        xds.Set(RouteType, "r1", Routes("main", "blue"));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));

        // Two requests held at blue's host.
        using var http = TestHttp.CreateClient();
        var first = http.GetAsync(legate.ListenerUri("ingress"));
        var second = http.GetAsync(legate.ListenerUri("ingress"));
        await blue.Log.WaitForRequestsAsync(2);

        // The route moves to green and blue's only endpoint moves to green's port: new requests follow.
        xds.Set(RouteType, "r2", Routes("main", "green"));
        xds.Set(EndpointType, "e2", Endpoints("blue", green.Port), Endpoints("green", green.Port));
        await xds.WaitForRequestAsync(r => r.TypeUrl == EndpointType && r.VersionInfo == "e2");
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "new requests to take the new route");

        // The held requests finish where they started, with their whole response.
        gate.SetResult();
        foreach (var held in new[] { first, second })
        {
            using var response = await held.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("blue", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(2, blue.Log.Count);
    }
}
