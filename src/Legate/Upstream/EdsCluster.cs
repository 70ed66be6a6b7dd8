using System.Collections.Immutable;
using Envoy.Config.Endpoint.V3;
using Legate.Config;
using DiscoveryType = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Legate.Upstream;

/// <summary>
/// An EDS cluster: its hosts come from ClusterLoadAssignments pushed by the control plane (or a
/// file). It warms until the first assignment arrives (or the EDS initial_fetch_timeout passes,
/// leaving it without hosts, as Envoy does). Each assignment goes through
/// <see cref="PrioritySet.Update"/>, so hosts that stay keep their counters and connection pools.
/// </summary>
internal sealed class EdsCluster : Cluster
{
    private readonly TaskCompletionSource _warmed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IEdsWatch _watch;
    private readonly Lock _applyLock = new();
    private ClusterLoadAssignment? _applied;
    private ImmutableArray<Host> _appliedHosts;

    public EdsCluster(string name, TimeSpan connectTimeout, LbPolicy lbPolicy, ulong lbSeed, string serviceName, IEdsWatch watch)
        : base(name, DiscoveryType.Eds, connectTimeout, lbPolicy, lbSeed)
    {
        ServiceName = serviceName;
        _watch = watch;
    }

    /// <summary>The ClusterLoadAssignment name: eds_cluster_config.service_name, else the cluster name.</summary>
    public string ServiceName { get; }

    /// <summary>True once the first assignment (or the initial fetch timeout) arrived.</summary>
    public bool IsWarm => _warmed.Task.IsCompleted;

    /// <summary>The hosts of <paramref name="assignment"/>, or null with errors added (EDS endpoints must be IP addresses).</summary>
    public static List<Host>? HostsOf(ClusterLoadAssignment assignment, ConfigErrors errors)
    {
        var before = errors.Errors.Count;
        CheckPolicy(assignment, errors);
        var hosts = ClusterFactory.StaticHosts(assignment, "", errors, pathIsAssignment: true);
        return errors.Errors.Count == before ? hosts : null;
    }

    /// <summary>
    /// The assignment's policy as Envoy checks it on each EDS update: more than one
    /// drop_overloads category rejects the assignment (a NACK), with Envoy's message.
    /// </summary>
    private static void CheckPolicy(ClusterLoadAssignment assignment, ConfigErrors errors)
    {
        if (assignment.Policy?.DropOverloads is { Count: > 1 } drops)
        {
            errors.Add("policy.drop_overloads", $"Cluster drop_overloads config has {drops.Count} categories. Envoy only support one.");
        }
    }

    /// <summary>
    /// The hosts of <paramref name="assignment"/> for this cluster, or null with errors added. An
    /// lb_endpoint equal to the one at the same place in the assignment applied last (and in a
    /// locality with the same locality, priority and weight) keeps its Host object, with its
    /// counters, pools and health: only the endpoints the update changed are compiled, so one
    /// changed endpoint among 10,000 costs one comparison per endpoint. Errors can only come
    /// from those (the others were accepted before), at their full path.
    /// </summary>
    public List<Host>? HostsFor(ClusterLoadAssignment assignment, ConfigErrors errors)
    {
        ClusterLoadAssignment? previous;
        ImmutableArray<Host> previousHosts;
        lock (_applyLock)
        {
            previous = _applied;
            previousHosts = _appliedHosts;
        }

        if (previous is null || previousHosts.Length != CountEndpoints(previous))
        {
            return HostsOf(assignment, errors);
        }

        var before = errors.Errors.Count;
        CheckPolicy(assignment, errors);
        var hosts = new List<Host>(CountEndpoints(assignment));
        var offset = 0;
        for (var l = 0; l < assignment.Endpoints.Count; l++)
        {
            var locality = assignment.Endpoints[l];
            var old = l < previous.Endpoints.Count ? previous.Endpoints[l] : null;
            var sameLocality = old is not null && old.Priority == locality.Priority
                && old.LoadBalancingWeight == locality.LoadBalancingWeight && Equals(old.Locality, locality.Locality);
            for (var e = 0; e < locality.LbEndpoints.Count; e++)
            {
                var lbEndpoint = locality.LbEndpoints[e];
                if (sameLocality && e < old!.LbEndpoints.Count && lbEndpoint.Equals(old.LbEndpoints[e]))
                {
                    hosts.Add(previousHosts[offset + e]);
                }
                else if (ClusterFactory.HostOf(locality, lbEndpoint, $"endpoints[{l}].lb_endpoints[{e}]", errors) is { } host)
                {
                    hosts.Add(host);
                }
            }

            offset += old?.LbEndpoints.Count ?? 0;
        }

        return errors.Errors.Count == before ? hosts : null;
    }

    /// <summary>Replaces the hosts (an EDS update) and ends warming.</summary>
    public HostUpdate Apply(IReadOnlyList<Host> hosts) => Apply(null, hosts);

    /// <summary>
    /// Replaces the hosts with those compiled from <paramref name="assignment"/> (an EDS update)
    /// and ends warming. The assignment and the hosts now in force (kept ones in place of equal
    /// new ones) are remembered for the next <see cref="HostsFor"/>.
    /// </summary>
    public HostUpdate Apply(ClusterLoadAssignment? assignment, IReadOnlyList<Host> hosts)
    {
        HostUpdate update;
        lock (_applyLock)
        {
            if (assignment is not null)
            {
                // The assignment's policy comes with it, as for a static load_assignment:
                // overprovisioning, weighted priority health and the drop_overloads share.
                var policy = assignment.Policy;
                update = PrioritySet.Update(hosts, policy?.OverprovisioningFactor ?? PrioritySet.DefaultOverprovisioningFactor, policy?.WeightedPriorityHealth ?? false);
                ApplyDropOverload(policy);
            }
            else
            {
                update = PrioritySet.Update(hosts);
            }

            // In input order: an update returns kept hosts where it was given equal ones.
            _applied = assignment;
            _appliedHosts = assignment is null ? default : PrioritySet.Current.Hosts;
        }

        _warmed.TrySetResult();
        return update;
    }

    /// <summary>
    /// One drop_overloads category sets the share dropped, none clears it (more than one never
    /// gets here: <see cref="CheckPolicy"/> rejects the assignment).
    /// </summary>
    private void ApplyDropOverload(ClusterLoadAssignment.Types.Policy? policy)
    {
        var drops = policy?.DropOverloads;
        if (drops is null || drops.Count == 0)
        {
            SetDropOverload(0, 1);
        }
        else if (drops.Count == 1 && drops[0].DropPercentage is { } percentage)
        {
            SetDropOverload(percentage);
        }
    }

    private static int CountEndpoints(ClusterLoadAssignment assignment)
    {
        var count = 0;
        foreach (var locality in assignment.Endpoints)
        {
            count += locality.LbEndpoints.Count;
        }

        return count;
    }

    /// <summary>The EDS initial fetch timed out: the cluster is usable without hosts (503 UH) until endpoints arrive.</summary>
    public void EndWarming() => _warmed.TrySetResult();

    public override Task InitializeAsync(CancellationToken cancellationToken)
    {
        _watch.Start(this);
        return _warmed.Task.WaitAsync(cancellationToken);
    }

    public override ValueTask DisposeAsync()
    {
        _watch.Dispose();
        return base.DisposeAsync();
    }
}
