using System.Net;
using System.Net.Sockets;
using Legate.Tests.Harness;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>
/// <c>respect_dns_ttl</c> and <c>dns_resolvers</c> through Legate's own DNS client, against a
/// scripted DNS server on a real UDP (and TCP) socket. The refresh timers run on a manual clock, so
/// "the next query comes after the TTL, not before" is exact; the queries themselves are real.
/// </summary>
public sealed class DnsTtlTests
{
    private static string Yaml(string type, int dnsPort, string extra) => $$"""
        name: pods
        type: {{type}}
        dns_refresh_rate: 3600s
        dns_lookup_family: V4_ONLY
        dns_resolvers: [ { socket_address: { address: 127.0.0.1, port_value: {{dnsPort}} } } ]
        {{extra}}
        load_assignment:
          cluster_name: pods
          endpoints:
          - lb_endpoints:
            - endpoint: { address: { socket_address: { address: pods.test, port_value: 8080 } } }
        """;

    private static async Task<(Cluster Cluster, ResolveTarget Target, ManualTimeProvider Time)> StartAsync(string type, ScriptedDnsServer dns, string extra)
    {
        var time = new ManualTimeProvider();
        // The context's resolver answers nothing: every answer must come from the scripted server.
        var cluster = UpstreamTestConfigs.Build(Yaml(type, dns.Port, extra), UpstreamTestConfigs.Deterministic(new FakeDnsResolver(), time));
        await cluster.InitializeAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        var target = cluster is StrictDnsCluster strict ? strict.Targets[0] : ((LogicalDnsCluster)cluster).Target;
        await WaitForArmedTimerAsync(time);
        return (cluster, target, time);
    }

    // The refresh timer is armed just after the answer is applied: wait for it before moving the clock.
    private static async Task WaitForArmedTimerAsync(ManualTimeProvider time)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (time.ArmedTimers == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the refresh timer was never armed");
            await Task.Delay(10);
        }
    }

    /// <summary>
    /// The next lookup (query number <paramref name="query"/>) is due exactly <paramref name="due"/>
    /// from now: none a millisecond before it, one at it.
    /// </summary>
    private static async Task ExpectLookupAtAsync(ManualTimeProvider time, ResolveTarget target, ScriptedDnsServer dns, TimeSpan due, int query)
    {
        time.Advance(due - TimeSpan.FromMilliseconds(1));
        Assert.Equal(query - 1, target.Attempts);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await dns.WaitForQueriesAsync("pods.test", query);
    }

    private static string[] Hosts(Cluster cluster) => UpstreamTestConfigs.Addresses(cluster.PrioritySet.Current.Hosts);

    [Fact]
    public async Task StrictDnsResolvesAgainAfterTheLowestTtlInsteadOfTheRefreshRate()
    {
        await using var dns = ScriptedDnsServer.Start();
        dns.Set("pods.test", ("10.0.0.1", 30), ("10.0.0.2", 7));
        var (cluster, target, time) = await StartAsync("STRICT_DNS", dns, "respect_dns_ttl: true");
        await using var _ = cluster;
        Assert.Equal(["10.0.0.1:8080", "10.0.0.2:8080"], Hosts(cluster));
        Assert.Equal(1, dns.Queries("pods.test"));

        // Not before the lowest TTL (7 s) ...
        dns.Set("pods.test", ("10.0.0.3", 0));
        time.Advance(TimeSpan.FromMilliseconds(6999));
        Assert.Equal(1, target.Attempts);

        // ... but at it, and the new answer replaces the hosts.
        time.Advance(TimeSpan.FromMilliseconds(1));
        await dns.WaitForQueriesAsync("pods.test", 2);
        await WaitForArmedTimerAsync(time);
        Assert.Equal(["10.0.0.3:8080"], Hosts(cluster));

        // A TTL of 0 leaves dns_refresh_rate in force, as Envoy.
        await ExpectLookupAtAsync(time, target, dns, TimeSpan.FromSeconds(3600), 3);
    }

    [Fact]
    public async Task WithoutRespectDnsTtlTheRefreshRateApplies()
    {
        await using var dns = ScriptedDnsServer.Start();
        dns.Set("pods.test", ("10.0.0.1", 5));
        var (cluster, target, time) = await StartAsync("STRICT_DNS", dns, "");
        await using var _ = cluster;
        Assert.Equal(["10.0.0.1:8080"], Hosts(cluster));
        await ExpectLookupAtAsync(time, target, dns, TimeSpan.FromSeconds(3600), 2);
    }

    [Fact]
    public async Task LogicalDnsFollowsTheFirstAddresssTtl()
    {
        await using var dns = ScriptedDnsServer.Start();
        dns.Set("pods.test", ("10.0.0.1", 9), ("10.0.0.2", 2));
        var (cluster, target, time) = await StartAsync("LOGICAL_DNS", dns, "respect_dns_ttl: true");
        await using var _ = cluster;
        Assert.Equal(["10.0.0.1:8080"], Hosts(cluster));
        await ExpectLookupAtAsync(time, target, dns, TimeSpan.FromSeconds(9), 2);
    }

    [Fact]
    public async Task AServerFailureKeepsTheHostsAndRetriesAtTheFailureRefreshRate()
    {
        await using var dns = ScriptedDnsServer.Start();
        dns.Set("pods.test", ("10.0.0.1", 60));
        var (cluster, target, time) = await StartAsync("STRICT_DNS", dns,
            "respect_dns_ttl: true\ndns_failure_refresh_rate: { base_interval: 2s, max_interval: 2s }");
        await using var _ = cluster;
        Assert.Equal(["10.0.0.1:8080"], Hosts(cluster));

        dns.Set("pods.test", ScriptedDnsServer.Behaviour.ServerFailure);
        time.Advance(TimeSpan.FromSeconds(60));
        await dns.WaitForQueriesAsync("pods.test", 2);
        await WaitForArmedTimerAsync(time);
        Assert.Equal(1, target.Failures);
        Assert.Equal(["10.0.0.1:8080"], Hosts(cluster));

        // The jittered back-off retries within base_interval (2 s), far before the TTL or the refresh rate.
        dns.Set("pods.test", ("10.0.0.4", 60));
        time.Advance(TimeSpan.FromSeconds(2));
        await dns.WaitForQueriesAsync("pods.test", 3);
        await WaitForArmedTimerAsync(time);
        Assert.Equal(["10.0.0.4:8080"], Hosts(cluster));
    }

    [Fact]
    public async Task AServerThatDoesNotAnswerIsAFailureAndTheNextServerIsAsked()
    {
        await using var silent = ScriptedDnsServer.Start();
        await using var good = ScriptedDnsServer.Start();
        silent.Set("pods.test", ScriptedDnsServer.Behaviour.Silent);
        good.Set("pods.test", ("10.0.0.7", 30));

        var alone = new DnsClient([silent.EndPoint], timeout: TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAsync<DnsResolutionException>(() => alone.ResolveRecordsAsync("pods.test", AddressFamily.InterNetwork, CancellationToken.None));

        var both = new DnsClient([silent.EndPoint, good.EndPoint], timeout: TimeSpan.FromMilliseconds(300));
        var records = await both.ResolveRecordsAsync("pods.test", AddressFamily.InterNetwork, CancellationToken.None);
        Assert.Equal([new DnsRecord(IPAddress.Parse("10.0.0.7"), TimeSpan.FromSeconds(30))], records);
        Assert.Equal(2, silent.Queries("pods.test"));
    }

    [Fact]
    public async Task ATruncatedAnswerIsAskedAgainOverTcp()
    {
        await using var dns = ScriptedDnsServer.Start();
        dns.Set("pods.test", ScriptedDnsServer.Behaviour.TruncateOverUdp, ("10.0.0.1", 11), ("10.0.0.2", 12), ("fd00::1", 13));
        var client = new DnsClient([dns.EndPoint]);
        var records = await client.ResolveRecordsAsync("pods.test", AddressFamily.Unspecified, CancellationToken.None);
        Assert.Equal(
            ["[fd00::1]:13", "10.0.0.1:11", "10.0.0.2:12"],
            records.Select(r => $"{(r.Address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{r.Address}]" : r.Address)}:{r.Ttl.TotalSeconds}").ToArray());
        Assert.Equal(2, dns.Queries("pods.test", tcp: false));
        Assert.Equal(2, dns.Queries("pods.test", tcp: true));
    }

    [Fact]
    public async Task NxdomainIsAnEmptyAnswerAndTheSearchListIsTriedByNdots()
    {
        await using var dns = ScriptedDnsServer.Start();
        dns.Set("backend.svc.cluster.local", ("10.1.0.1", 5));
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(path, $"# test\nnameserver 127.0.0.1\nsearch ns.svc.cluster.local svc.cluster.local\noptions ndots:2 timeout:1\n");
            var parsed = DnsClient.FromResolvConf(path);
            Assert.Equal([new IPEndPoint(IPAddress.Loopback, 53)], parsed.Servers);
        }
        finally
        {
            File.Delete(path);
        }

        var client = new DnsClient([dns.EndPoint], ["ns.svc.cluster.local", "svc.cluster.local"], ndots: 2);
        var records = await client.ResolveRecordsAsync("backend", AddressFamily.InterNetwork, CancellationToken.None);
        Assert.Equal("10.1.0.1", Assert.Single(records).Address.ToString());
        Assert.Equal(["backend.ns.svc.cluster.local", "backend.svc.cluster.local"], dns.QueriedNames);

        // A name with enough dots is asked as it is first; NXDOMAIN everywhere is an empty answer.
        Assert.Empty(await client.ResolveRecordsAsync("no.such.name", AddressFamily.InterNetwork, CancellationToken.None));
        Assert.Equal("no.such.name", dns.QueriedNames[2]);
        Assert.Equal(5, dns.QueriedNames.Count);
    }
}
