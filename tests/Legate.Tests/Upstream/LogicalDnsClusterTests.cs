using System.Net;
using Legate.Upstream;
using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;

namespace Legate.Tests.Upstream;

public sealed class LogicalDnsClusterTests : IAsyncLifetime
{
    private const string Yaml = """
        name: logical
        type: LOGICAL_DNS
        dns_lookup_family: V4_ONLY
        load_assignment:
          endpoints:
          - priority: 1
            lb_endpoints:
            - endpoint: { address: { socket_address: { address: db.internal, port_value: 5432 } } }
              load_balancing_weight: 7
        """;

    private readonly ManualTimeProvider _time = new();
    private readonly FakeDnsResolver _dns;
    private Cluster? _cluster;

    public LogicalDnsClusterTests() => _dns = new FakeDnsResolver(_time);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }

    [Fact]
    public async Task OneLogicalHostAtTheFirstAddress()
    {
        _dns.Answer("db.internal", "10.0.0.5", "10.0.0.6", "2001:db8::5");
        var cluster = await Start();

        var host = Assert.Single(cluster.PrioritySet.Current.Hosts);
        Assert.IsType<LogicalDnsCluster>(cluster);
        Assert.Equal(DiscoveryType.LogicalDns, cluster.Type);
        Assert.True(host.IsLogical);
        Assert.Equal(IPEndPoint.Parse("10.0.0.5:5432"), host.Address);
        Assert.Equal(["10.0.0.5:5432", "10.0.0.6:5432"], host.AddressList.Select(a => a.ToString()));
        Assert.Equal("db.internal", host.Hostname);
        Assert.Equal(7u, host.Weight);
        // Envoy rewrites a logical host's priority to 0.
        Assert.Equal(0u, host.Priority);
        Assert.Same(host, cluster.LoadBalancer.ChooseHost(null));
    }

    [Fact]
    public async Task TheHostStaysWhileItsAddressFollowsDns()
    {
        _dns.Answer("db.internal", "10.0.0.5");
        var cluster = await Start();
        var snapshot = cluster.PrioritySet.Current;
        var host = snapshot.Hosts[0];
        host.ConnectionOpened();

        _dns.Answer("db.internal", "10.0.0.9", "10.0.0.5");
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Same(snapshot, cluster.PrioritySet.Current);
        Assert.Equal(IPEndPoint.Parse("10.0.0.9:5432"), host.Address);
        Assert.Equal(1, host.ActiveConnections);
        Assert.Same(host, cluster.LoadBalancer.ChooseHost(null));
    }

    [Fact]
    public async Task AnEmptyAnswerOrAFailureKeepsTheAddress()
    {
        _dns.Answer("db.internal", "10.0.0.5");
        var cluster = await Start();
        var host = cluster.PrioritySet.Current.Hosts[0];

        _dns.Answer("db.internal");
        _time.Advance(TimeSpan.FromSeconds(5));
        _dns.Fail("db.internal");
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(3, _dns.QueryCount("db.internal"));
        Assert.Same(host, Assert.Single(cluster.PrioritySet.Current.Hosts));
        Assert.Equal(IPEndPoint.Parse("10.0.0.5:5432"), host.Address);
    }

    [Fact]
    public async Task NoHostUntilTheFirstAnswer()
    {
        _dns.Fail("db.internal");
        var cluster = await Start();

        Assert.Null(cluster.LoadBalancer.ChooseHost(null));

        _dns.Answer("db.internal", "10.0.0.5");
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(IPEndPoint.Parse("10.0.0.5:5432"), cluster.LoadBalancer.ChooseHost(null)!.Address);
    }

    private async Task<Cluster> Start()
    {
        _cluster = UpstreamTestConfigs.Build(Yaml, UpstreamTestConfigs.Deterministic(_dns, _time));
        await _cluster.InitializeAsync(CancellationToken.None);
        return _cluster;
    }
}
