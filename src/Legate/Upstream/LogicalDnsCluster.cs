using System.Collections.Immutable;
using System.Net;
using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>
/// A LOGICAL_DNS cluster: one logical host for its single lb_endpoint, whose address is the first
/// address DNS returns, refreshed every dns_refresh_rate. The host (and so its connection pool)
/// stays when the address changes; new connections go to the new address, as in Envoy. An empty
/// answer or a failure keeps the current address. Until the first answer there is no host.
/// </summary>
internal sealed class LogicalDnsCluster : Cluster
{
    private readonly DnsEndpoint _endpoint;
    private readonly ResolveTarget _target;
    private readonly bool _waitForWarmOnInit;
    private Host? _host;

    public LogicalDnsCluster(
        string name,
        TimeSpan connectTimeout,
        LbPolicy lbPolicy,
        ulong lbSeed,
        DnsEndpoint endpoint,
        DnsSettings dns,
        ClusterFactoryContext context)
        : base(name, DiscoveryType.LogicalDns, connectTimeout, lbPolicy, lbSeed)
    {
        _endpoint = endpoint;
        _target = new ResolveTarget(endpoint.DnsName, dns, context, OnResolved, logical: true);
        _waitForWarmOnInit = dns.WaitForWarmOnInit;
    }

    public ResolveTarget Target => _target;

    public override Task InitializeAsync(CancellationToken cancellationToken)
    {
        _target.Start();
        return _waitForWarmOnInit ? _target.FirstAttempt.WaitAsync(cancellationToken) : Task.CompletedTask;
    }

    public override ValueTask DisposeAsync()
    {
        _target.Dispose();
        return base.DisposeAsync();
    }

    // Never called concurrently: one target, whose attempts do not overlap.
    private void OnResolved(IPAddress[] addresses)
    {
        if (addresses.Length == 0)
        {
            // Envoy: an empty answer does not take a resolved cluster back to zero hosts.
            return;
        }

        var builder = ImmutableArray.CreateBuilder<IPEndPoint>(addresses.Length);
        foreach (var address in addresses)
        {
            builder.Add(new IPEndPoint(address, _endpoint.Port));
        }

        var endpoints = builder.MoveToImmutable();
        if (_host is null)
        {
            _host = Host.CreateLogical(endpoints, _endpoint.Hostname, _endpoint.Weight, _endpoint.Locality, _endpoint.Metadata, _endpoint.HealthStatus, _endpoint.LocalityWeight);
            PrioritySet.Update([_host]);
        }
        else if (!endpoints.SequenceEqual(_host.AddressList))
        {
            _host.SetLogicalAddresses(endpoints);
        }
    }
}
