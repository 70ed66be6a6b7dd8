using System.Net;
using System.Net.Sockets;
using Envoy.Config.Core.V3;
using Legate.Upstream;
using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;

namespace Legate.Tests.Upstream;

public sealed class StrictDnsClusterTests : IAsyncLifetime
{
    private readonly ManualTimeProvider _time = new();
    private readonly FakeDnsResolver _dns;
    private Cluster? _cluster;

    public StrictDnsClusterTests() => _dns = new FakeDnsResolver(_time);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }

    [Fact]
    public async Task EachNameResolvesToAHostPerAddress()
    {
        _dns.Answer("api.internal", "10.0.0.1", "10.0.0.2");
        _dns.Answer("backup.internal", "10.0.1.1");
        var cluster = await Start("""
            lb_endpoints:
            - endpoint: { address: { socket_address: { address: api.internal, port_value: 8443 } } }
              load_balancing_weight: 3
            - endpoint:
                address: { socket_address: { address: backup.internal, port_value: 80 } }
                hostname: backup.example.com
              health_status: DEGRADED
            locality: { zone: z1 }
            """);

        var hosts = cluster.PrioritySet.Current.Hosts;
        Assert.IsType<StrictDnsCluster>(cluster);
        Assert.Equal(DiscoveryType.StrictDns, cluster.Type);
        Assert.Equal(["10.0.0.1:8443", "10.0.0.2:8443", "10.0.1.1:80"], UpstreamTestConfigs.Addresses(hosts));
        Assert.Equal(["api.internal", "api.internal", "backup.example.com"], hosts.Select(h => h.Hostname));
        Assert.Equal([3u, 3u, 1u], hosts.Select(h => h.Weight));
        Assert.All(hosts, h => Assert.Equal("z1", h.Locality!.Zone));
        Assert.Equal(HostHealth.Degraded, hosts[2].Health);
        Assert.Equal([("api.internal", AddressFamily.Unspecified), ("backup.internal", AddressFamily.Unspecified)], _dns.Queries);
    }

    [Fact]
    public async Task RefreshFollowsTheAnswersAndKeepsHostsWhoseAddressStayed()
    {
        _dns.Answer("api.internal", "10.0.0.1", "10.0.0.2");
        var cluster = await Start(Endpoint("api.internal"));
        var kept = cluster.PrioritySet.Current.Hosts[1];
        kept.RequestStarted();
        kept.ConnectionOpened();
        var updates = new List<HostUpdate>();
        cluster.PrioritySet.Updated += updates.Add;

        _dns.Answer("api.internal", "10.0.0.2", "10.0.0.3");
        _time.Advance(TimeSpan.FromSeconds(5));

        var hosts = cluster.PrioritySet.Current.Hosts;
        Assert.Equal(2, _dns.QueryCount("api.internal"));
        Assert.Equal(["10.0.0.2:80", "10.0.0.3:80"], UpstreamTestConfigs.Addresses(hosts));
        Assert.Same(kept, hosts[0]);
        Assert.Equal(1, kept.ActiveRequests);
        Assert.Equal(1, kept.ActiveConnections);
        var update = Assert.Single(updates);
        Assert.Equal(["10.0.0.3:80"], UpstreamTestConfigs.Addresses(update.Added));
        Assert.Equal(["10.0.0.1:80"], UpstreamTestConfigs.Addresses(update.Removed));
    }

    [Fact]
    public async Task AnUnchangedAnswerPublishesNoNewSnapshot()
    {
        _dns.Answer("api.internal", "10.0.0.1", "10.0.0.2");
        var cluster = await Start(Endpoint("api.internal"));
        var before = cluster.PrioritySet.Current;

        _dns.Answer("api.internal", "10.0.0.2", "10.0.0.1");
        _time.Advance(TimeSpan.FromSeconds(5));
        _dns.Answer("api.internal", "10.0.0.1", "10.0.0.2");
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(3, _dns.QueryCount("api.internal"));
        // The reordered answer made one new snapshot (order matters to round robin); the repeat none.
        Assert.Equal(before.Version + 2, cluster.PrioritySet.Current.Version);
        Assert.Equal(before.Hosts.ToArray(), cluster.PrioritySet.Current.Hosts.ToArray());
    }

    [Fact]
    public async Task ResolvesAgainEveryDnsRefreshRate()
    {
        _dns.Answer("api.internal", "10.0.0.1");
        await Start(Endpoint("api.internal"), "dns_refresh_rate: 30s");

        _time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, _dns.QueryCount("api.internal"));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(2, _dns.QueryCount("api.internal"));
        _time.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(4, _dns.QueryCount("api.internal"));
    }

    [Fact]
    public async Task AFailureKeepsTheLastGoodHostsAndRetriesAtTheRefreshRate()
    {
        _dns.Answer("api.internal", "10.0.0.1", "10.0.0.2");
        var cluster = await Start(Endpoint("api.internal"));
        var before = cluster.PrioritySet.Current;
        var target = ((StrictDnsCluster)cluster).Targets[0];

        _dns.Fail("api.internal");
        _time.Advance(TimeSpan.FromSeconds(5));
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(3, _dns.QueryCount("api.internal"));
        Assert.Equal(2, target.Failures);
        Assert.Same(before, cluster.PrioritySet.Current);
        Assert.NotNull(cluster.LoadBalancer.ChooseHost(null));

        _dns.Answer("api.internal", "10.0.0.3");
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(["10.0.0.3:80"], UpstreamTestConfigs.Addresses(cluster.PrioritySet.Current.Hosts));
    }

    [Fact]
    public async Task DnsFailureRefreshRateRetriesSoonerWithJitteredBackOff()
    {
        _dns.Fail("api.internal");
        var context = new ClusterFactoryContext { DnsResolver = _dns, TimeProvider = _time, Random = new TopOfRangeRandom() };
        var cluster = await Start(Endpoint("api.internal"), "dns_refresh_rate: 60s\ndns_failure_refresh_rate: { base_interval: 1s, max_interval: 4s }", context);

        // Full jitter draws from [0, base × 2^(n-1)), capped at max_interval; this random source
        // draws the top of each range.
        _time.Advance(TimeSpan.FromSeconds(14));
        Assert.Equal([Ms(999), Ms(1999), Ms(3999), Ms(3999)], Gaps(_dns.QueryTimes("api.internal")));

        // A success goes back to dns_refresh_rate...
        _dns.Answer("api.internal", "10.0.0.1");
        _time.Advance(TimeSpan.FromSeconds(4) + TimeSpan.FromSeconds(120));
        Assert.Single(cluster.PrioritySet.Current.Hosts);

        // ...and resets the back-off: the next failure is retried within base_interval again.
        _dns.Fail("api.internal");
        _time.Advance(TimeSpan.FromSeconds(60) + Ms(999 + 1999));
        var gaps = Gaps(_dns.QueryTimes("api.internal"));
        Assert.Equal([Ms(999), Ms(1999), Ms(3999), Ms(3999), Ms(3999), Ms(60_000), Ms(60_000), Ms(60_000), Ms(999), Ms(1999)], gaps);
        Assert.Single(cluster.PrioritySet.Current.Hosts);
    }

    [Fact]
    public async Task AnEmptyAnswerRemovesTheNamesHosts()
    {
        _dns.Answer("api.internal", "10.0.0.1");
        _dns.Answer("other.internal", "10.0.0.9");
        var cluster = await Start(Endpoint("api.internal") + Endpoint("other.internal", 1));

        _dns.Answer("api.internal");
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(["10.0.0.9:80"], UpstreamTestConfigs.Addresses(cluster.PrioritySet.Current.Hosts));
    }

    [Fact]
    public async Task OneNameFailingDoesNotDisturbTheOthers()
    {
        _dns.Answer("api.internal", "10.0.0.1");
        _dns.Answer("other.internal", "10.0.0.9");
        var cluster = await Start(Endpoint("api.internal") + Endpoint("other.internal", 1));

        _dns.Fail("api.internal");
        _dns.Answer("other.internal", "10.0.0.8");
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(["10.0.0.1:80", "10.0.0.8:80"], UpstreamTestConfigs.Addresses(cluster.PrioritySet.Current.Hosts));
    }

    [Fact]
    public async Task AnAddressRepeatedInAnAnswerIsOneHost()
    {
        _dns.Answer("api.internal", "10.0.0.1", "10.0.0.1", "10.0.0.2");
        var cluster = await Start(Endpoint("api.internal"));

        Assert.Equal(["10.0.0.1:80", "10.0.0.2:80"], UpstreamTestConfigs.Addresses(cluster.PrioritySet.Current.Hosts));
    }

    [Theory]
    [InlineData("AUTO", AddressFamily.Unspecified, "[2001:db8::1]:80")]
    [InlineData("V4_ONLY", AddressFamily.InterNetwork, "10.0.0.1:80")]
    [InlineData("V6_ONLY", AddressFamily.InterNetworkV6, "[2001:db8::1]:80")]
    [InlineData("V4_PREFERRED", AddressFamily.Unspecified, "10.0.0.1:80")]
    [InlineData("ALL", AddressFamily.Unspecified, "[2001:db8::1]:80,10.0.0.1:80")]
    public async Task DnsLookupFamilyChoosesTheAddresses(string family, AddressFamily query, string expected)
    {
        _dns.Answer("api.internal", "2001:db8::1", "10.0.0.1");
        var cluster = await Start(Endpoint("api.internal"), "dns_lookup_family: " + family);

        Assert.Equal(expected, string.Join(",", UpstreamTestConfigs.Addresses(cluster.PrioritySet.Current.Hosts)));
        Assert.Equal([("api.internal", query)], _dns.Queries);
    }

    [Fact]
    public async Task InitializationWaitsForTheFirstAnswerOfEveryName()
    {
        var api = _dns.Pending("api.internal");
        var other = _dns.Pending("other.internal");
        _cluster = UpstreamTestConfigs.Build(Config(Endpoint("api.internal") + Endpoint("other.internal", 1)), Context());

        var initialized = _cluster.InitializeAsync(CancellationToken.None);
        Assert.False(initialized.IsCompleted);
        api.SetResult([IPAddress.Parse("10.0.0.1")]);
        Assert.False(initialized.IsCompleted);
        other.SetException(new SocketException((int)SocketError.TryAgain));
        await initialized;

        // The failed name has no hosts yet; the other one does.
        Assert.Equal(["10.0.0.1:80"], UpstreamTestConfigs.Addresses(_cluster.PrioritySet.Current.Hosts));
    }

    [Fact]
    public async Task WithoutWaitForWarmOnInitInitializationDoesNotWait()
    {
        var api = _dns.Pending("api.internal");
        _cluster = UpstreamTestConfigs.Build(Config(Endpoint("api.internal"), "wait_for_warm_on_init: false"), Context());

        await _cluster.InitializeAsync(CancellationToken.None);

        Assert.Null(_cluster.LoadBalancer.ChooseHost(null));
        api.SetResult([IPAddress.Parse("10.0.0.1")]);
        await ((StrictDnsCluster)_cluster).Targets[0].FirstAttempt;
        Assert.Equal(IPEndPoint.Parse("10.0.0.1:80"), _cluster.LoadBalancer.ChooseHost(null)!.Address);
    }

    [Fact]
    public async Task DisposeStopsTheRefreshes()
    {
        _dns.Answer("api.internal", "10.0.0.1");
        var cluster = await Start(Endpoint("api.internal"));
        Assert.Equal(1, _time.ArmedTimers);

        await cluster.DisposeAsync();
        _time.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal(0, _time.ArmedTimers);
        Assert.Equal(1, _dns.QueryCount("api.internal"));
    }

    [Fact]
    public async Task AnAnswerArrivingAfterDisposeIsIgnored()
    {
        var pending = _dns.Pending("api.internal");
        var cluster = UpstreamTestConfigs.Build(Config(Endpoint("api.internal"), "wait_for_warm_on_init: false"), Context());
        await cluster.InitializeAsync(CancellationToken.None);

        await cluster.DisposeAsync();
        pending.TrySetResult([IPAddress.Parse("10.0.0.1")]);

        Assert.Empty(cluster.PrioritySet.Current.Hosts);
        Assert.Equal(0, _time.ArmedTimers);
    }

    private static TimeSpan Ms(int milliseconds) => TimeSpan.FromMilliseconds(milliseconds);

    private async Task<Cluster> Start(string endpoints, string extra = "", ClusterFactoryContext? context = null)
    {
        _cluster = UpstreamTestConfigs.Build(Config(endpoints, extra), context ?? Context());
        await _cluster.InitializeAsync(CancellationToken.None);
        return _cluster;
    }

    private static TimeSpan[] Gaps(DateTimeOffset[] times) => times.Zip(times.Skip(1), (a, b) => b - a).ToArray();

    private ClusterFactoryContext Context() => UpstreamTestConfigs.Deterministic(_dns, _time);

    private static string Config(string endpoints, string extra = "") =>
        "name: dns\ntype: STRICT_DNS\n" + extra + "\nload_assignment:\n  endpoints:\n  - " +
        endpoints.Replace("\n", "\n    ", StringComparison.Ordinal).TrimEnd();

    private static string Endpoint(string name, int index = 0) =>
        (index == 0 ? "lb_endpoints:\n" : "") +
        $"- endpoint: {{ address: {{ socket_address: {{ address: {name}, port_value: 80 }} }} }}\n";
}
