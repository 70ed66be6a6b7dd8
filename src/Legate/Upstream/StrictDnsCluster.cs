using System.Net;
using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>
/// A STRICT_DNS cluster: every lb_endpoint's name is resolved and each address it resolves to is a
/// host; the names are resolved again every dns_refresh_rate and the host set follows the
/// answers. Hosts whose address is still in the answer are kept (with their counters and pools).
/// A failed resolution keeps the name's last good hosts; an empty answer removes them, as Envoy.
/// </summary>
internal sealed class StrictDnsCluster : Cluster
{
    private readonly Lock _updateLock = new();
    private readonly DnsEndpoint[] _endpoints;
    private readonly ResolveTarget[] _targets;
    private readonly IPAddress[][] _answers;
    private readonly bool _waitForWarmOnInit;

    public StrictDnsCluster(
        string name,
        TimeSpan connectTimeout,
        LbPolicy lbPolicy,
        ulong lbSeed,
        IReadOnlyList<DnsEndpoint> endpoints,
        DnsSettings dns,
        ClusterFactoryContext context)
        : base(name, DiscoveryType.StrictDns, connectTimeout, lbPolicy, lbSeed)
    {
        _endpoints = endpoints.ToArray();
        _answers = new IPAddress[_endpoints.Length][];
        _targets = new ResolveTarget[_endpoints.Length];
        for (var i = 0; i < _endpoints.Length; i++)
        {
            _answers[i] = [];
            var index = i;
            _targets[i] = new ResolveTarget(_endpoints[i].DnsName, dns, context, addresses => OnResolved(index, addresses));
        }

        _waitForWarmOnInit = dns.WaitForWarmOnInit;
    }

    /// <summary>The DNS names, one per lb_endpoint, in config order.</summary>
    public IReadOnlyList<ResolveTarget> Targets => _targets;

    /// <summary>
    /// Starts resolving every name. Envoy reports the cluster initialized after the first answer
    /// for any one name; this waits for the first attempt of each name, successful or not, so the
    /// first requests do not see a partial host set.
    /// </summary>
    public override Task InitializeAsync(CancellationToken cancellationToken)
    {
        foreach (var target in _targets)
        {
            target.Start();
        }

        if (!_waitForWarmOnInit || _targets.Length == 0)
        {
            return Task.CompletedTask;
        }

        return Task.WhenAll(_targets.Select(t => t.FirstAttempt)).WaitAsync(cancellationToken);
    }

    public override ValueTask DisposeAsync()
    {
        foreach (var target in _targets)
        {
            target.Dispose();
        }

        return base.DisposeAsync();
    }

    private void OnResolved(int index, IPAddress[] addresses)
    {
        lock (_updateLock)
        {
            _answers[index] = addresses;

            // All names together make the host set; PrioritySet.Update keeps the hosts it already has.
            var hosts = new List<Host>();
            for (var i = 0; i < _endpoints.Length; i++)
            {
                // An address repeated in one answer is one host (Envoy drops the duplicates).
                var seen = new HashSet<IPAddress>();
                foreach (var address in _answers[i])
                {
                    if (seen.Add(address))
                    {
                        hosts.Add(_endpoints[i].CreateHost(address));
                    }
                }
            }

            PrioritySet.Update(hosts);
        }
    }
}
