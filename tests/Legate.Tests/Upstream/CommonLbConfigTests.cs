using System.Net;
using Legate.Tests.Harness;
using Legate.Upstream;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Tests.Upstream;

/// <summary><c>common_lb_config</c> fields not covered elsewhere, against real upstreams or the balancers themselves.</summary>
public sealed class CommonLbConfigTests
{
    private static string Config(int port, string commonLbConfig) =>
        new ProxyConfig(port) { Cluster = "common_lb_config: " + commonLbConfig }.Build();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task CloseConnectionsOnHostSetChangeDrainsTheKeptHostsConnections(bool close)
    {
        await using var a = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("a"));
        await using var b = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("b"));
        await using var legate = await InProcessLegate.StartAsync(Config(a.Port, $"{{ close_connections_on_host_set_change: {(close ? "true" : "false")} }}"));
        var cluster = legate.Server.Clusters.Find("backend")!;
        using var client = TestHttp.CreateClient();
        var uri = legate.ListenerUri("web", "/");

        using (var response = await client.GetAsync(uri))
        {
            Assert.Equal("a", await response.Content.ReadAsStringAsync());
        }

        // A host joins (priority 1, so A keeps all the traffic): with the option, A's idle
        // keep-alive connection is closed and the next request opens a new one.
        cluster.PrioritySet.Update([.. cluster.PrioritySet.Current.Hosts, new Host(new IPEndPoint(IPAddress.Loopback, b.Port), priority: 1)]);
        using (var response = await client.GetAsync(uri))
        {
            Assert.Equal("a", await response.Content.ReadAsStringAsync());
        }

        var requests = a.Log.Requests;
        Assert.Equal(2, requests.Count);
        Assert.Equal(close, requests[0].ConnectionId != requests[1].ConnectionId);
        Assert.Equal(close ? 2 : 1, legate.Server.Stats.Counter("cluster.backend.upstream_cx_total").Value);

        // An update that adds or removes nothing drains nothing.
        cluster.PrioritySet.RefreshHealth();
        using (var response = await client.GetAsync(uri))
        {
            Assert.Equal("a", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(a.Log.Requests[1].ConnectionId, a.Log.Requests[2].ConnectionId);
    }

    [Fact]
    public void UseHostnameForHashingKeysTheRingByHostnameSoNewAddressesKeepTheirKeys()
    {
        // The same three pods, restarted on new addresses: hashing by hostname keeps every key on
        // the same pod; hashing by address moves them.
        Host[] Pods(int octet) => new[] { "pod-a", "pod-b", "pod-c" }.Select((name, i) => new Host(new IPEndPoint(IPAddress.Parse($"10.{octet}.0.{i + 1}"), 80), hostname: name)).ToArray();
        foreach (var policy in new[] { LbPolicy.RingHash, LbPolicy.Maglev })
        {
            foreach (var byHostname in new[] { true, false })
            {
                string[] Assignment(Host[] hosts)
                {
                    var set = new PrioritySet();
                    set.Update(hosts);
                    var settings = LoadBalancerSettings.Default with { Policy = policy, UseHostnameForHashing = byHostname };
                    ILoadBalancer lb = policy == LbPolicy.RingHash ? new RingHashLoadBalancer(set, settings, null, null) : new MaglevLoadBalancer(set, settings, null, null);
                    return Enumerable.Range(0, 300).Select(k => lb.ChooseHost(new Hash((ulong)k * 0x9E3779B97F4A7C15UL))!.Hostname).ToArray();
                }

                var before = Assignment(Pods(1));
                var after = Assignment(Pods(2));
                var moved = before.Zip(after).Count(p => p.First != p.Second);
                if (byHostname)
                {
                    Assert.Equal(0, moved);
                }
                else
                {
                    Assert.True(moved > 30, $"{policy}: only {moved} of 300 keys moved when hashing by address");
                }
            }
        }
    }

    private sealed class Hash(ulong hash) : LoadBalancerContext
    {
        public override ulong? HashKey => hash;
    }
}
