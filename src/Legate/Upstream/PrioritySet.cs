using System.Collections.Immutable;
using System.Runtime.InteropServices;

namespace Legate.Upstream;

/// <summary>
/// The hosts of a cluster by priority (Envoy's PrioritySet). Long-lived, one per cluster; what it
/// holds is an immutable <see cref="PrioritySnapshot"/> replaced by one reference swap. Readers
/// (load balancers, on every pick) never lock; writers (config, DNS, EDS, health checkers) are
/// serialised among themselves.
/// </summary>
internal sealed class PrioritySet
{
    /// <summary>Envoy's default <c>overprovisioning_factor</c>: a priority at 1/1.4 ≈ 72% health still takes all its load.</summary>
    public const uint DefaultOverprovisioningFactor = 140;

    private readonly Lock _writeLock = new();
    private volatile PrioritySnapshot _current = PrioritySnapshot.Empty;
    private uint _overprovisioningFactor = DefaultOverprovisioningFactor;
    private bool _weightedPriorityHealth;
    private UpdateMergeWindow? _merge;

    // What an update held by the merge window will publish (the hosts the writers see); null = none held.
    private Held? _held;

    /// <summary>The hosts as of the last update. Keep the reference for a consistent view.</summary>
    public PrioritySnapshot Current => _current;

    /// <summary>
    /// Raised after each update that changed something, with the hosts added and removed, in
    /// update order, on the updating thread (under the write lock: keep handlers short).
    /// </summary>
    public event Action<HostUpdate>? Updated;

    /// <summary>
    /// Raised after every new snapshot (membership or health), on the updating thread under the
    /// write lock: membership gauges, admin views.
    /// </summary>
    public event Action<PrioritySnapshot>? Published;

    /// <summary>
    /// Called for each new host before the snapshot that adds it is published (a health checker
    /// marks it pending, so it takes no traffic before its first check).
    /// </summary>
    public Action<Host>? HostAdding { get; set; }

    /// <summary>
    /// Locality weights other than the hosts' configured ones (priority, locality, configured weight
    /// → weight): a subset's <c>scale_locality_weight</c>. Read by the next update.
    /// </summary>
    public Func<uint, Envoy.Config.Core.V3.Locality?, uint, uint>? LocalityWeightOf { get; set; }

    /// <summary>
    /// Replaces every host with <paramref name="hosts"/> (all priorities). A host whose key
    /// (hostname and address) and locality match a current host is not taken: the current host
    /// stays, with the new weight, priority, metadata and health status written into it, so its
    /// counters and connection pools survive, as Envoy's updateDynamicHostList does. A changed
    /// locality makes a new host, as in Envoy.
    /// </summary>
    public HostUpdate Update(IReadOnlyList<Host> hosts)
    {
        lock (_writeLock)
        {
            return Update(hosts, _overprovisioningFactor, _weightedPriorityHealth);
        }
    }

    /// <summary>
    /// Sets the load assignment's policy (<c>overprovisioning_factor</c>,
    /// <c>weighted_priority_health</c>) that updates without one use; republishes the hosts when it changed.
    /// </summary>
    public void ConfigurePolicy(uint overprovisioningFactor, bool weightedPriorityHealth)
    {
        lock (_writeLock)
        {
            _overprovisioningFactor = overprovisioningFactor;
            _weightedPriorityHealth = weightedPriorityHealth;
            var latest = Latest;
            if (latest.Factor != overprovisioningFactor || latest.Weighted != weightedPriorityHealth)
            {
                Deliver(new Held(latest.Hosts, overprovisioningFactor, weightedPriorityHealth), HostUpdate.None, mergeable: true);
            }
        }
    }

    /// <summary>
    /// <see cref="Update(IReadOnlyList{Host})"/> with the load assignment's policy. Priorities whose
    /// hosts did not change keep their <see cref="HostSet"/> (and what load balancers built for it),
    /// so an EDS update that touches one priority or a few hosts rebuilds only that.
    /// </summary>
    public HostUpdate Update(IReadOnlyList<Host> hosts, uint overprovisioningFactor, bool weightedPriorityHealth)
    {
        lock (_writeLock)
        {
            _overprovisioningFactor = overprovisioningFactor;
            _weightedPriorityHealth = weightedPriorityHealth;
            // Against the hosts the writers last saw (a change held by the merge window included).
            var latest = Latest;
            var currentHosts = latest.Hosts;

            // First the hosts passed back as the very objects at the same place (an EDS update
            // reuses the Host of every endpoint it did not change): kept without a lookup, so
            // one changed endpoint among 10,000 costs one comparison per host, not a map of them.
            var next = new Host[hosts.Count];
            var taken = new bool[currentHosts.Length];
            var unmatched = 0;
            for (var i = 0; i < next.Length; i++)
            {
                var candidate = hosts[i];
                if (i < taken.Length && ReferenceEquals(currentHosts[i], candidate))
                {
                    next[i] = candidate;
                    taken[i] = true;
                }
                else
                {
                    unmatched++;
                }
            }

            var added = ImmutableArray.CreateBuilder<Host>();
            var removed = ImmutableArray.CreateBuilder<Host>();
            var attributesChanged = false;
            var moved = false;
            if (unmatched > 0)
            {
                var existing = new Dictionary<HostKey, List<Host>>();
                for (var i = 0; i < taken.Length; i++)
                {
                    if (taken[i])
                    {
                        continue;
                    }

                    var host = currentHosts[i];
                    if (!existing.TryGetValue(host.Key, out var same))
                    {
                        same = new List<Host>(1);
                        existing.Add(host.Key, same);
                    }

                    same.Add(host);
                }

                for (var i = 0; i < next.Length; i++)
                {
                    if (next[i] is not null)
                    {
                        continue;
                    }

                    var candidate = hosts[i];
                    var kept = TakeMatching(existing, candidate);
                    if (kept is null)
                    {
                        HostAdding?.Invoke(candidate);
                        next[i] = candidate;
                        added.Add(candidate);
                    }
                    else
                    {
                        // A host moving to another priority leaves one host set and joins another:
                        // Envoy's removed + added, so not an update the merge window may hold.
                        moved |= kept.Priority != candidate.Priority;
                        attributesChanged |= !ReferenceEquals(kept, candidate) && kept.UpdateFrom(candidate);
                        next[i] = kept;
                    }
                }

                foreach (var left in existing.Values)
                {
                    removed.AddRange(left);
                }
            }
            else
            {
                for (var i = next.Length; i < taken.Length; i++)
                {
                    removed.Add(currentHosts[i]);
                }
            }

            var nextHosts = ImmutableCollectionsMarshal.AsImmutableArray(next);
            var policyChanged = overprovisioningFactor != latest.Factor || weightedPriorityHealth != latest.Weighted;
            if (added.Count == 0 && removed.Count == 0 && !attributesChanged && !policyChanged && SameOrder(currentHosts, nextHosts))
            {
                return HostUpdate.None;
            }

            var update = new HostUpdate(added.DrainToImmutable(), removed.DrainToImmutable(), changed: true);
            Deliver(new Held(nextHosts, overprovisioningFactor, weightedPriorityHealth), update, mergeable: update.Added.IsEmpty && update.Removed.IsEmpty && !moved);
            return update;
        }
    }

    /// <summary>
    /// Rebuilds the healthy and degraded lists after hosts' health flags changed (a health checker
    /// or outlier detection calls this after flipping a flag). Same hosts, new snapshot.
    /// </summary>
    public void RefreshHealth()
    {
        lock (_writeLock)
        {
            Deliver(Latest, HostUpdate.None, mergeable: true);
        }
    }

    /// <summary>
    /// From now on (the cluster has warmed), updates go through <paramref name="merge"/>: Envoy's
    /// <c>update_merge_window</c>, which may hold health, weight and metadata changes for a while.
    /// </summary>
    internal void StartMerging(UpdateMergeWindow merge)
    {
        lock (_writeLock)
        {
            _merge?.Dispose();
            merge.Flush = FlushHeld;
            _merge = merge;
        }
    }

    /// <summary>Stops the merge window (the cluster stopped); a held update is delivered now.</summary>
    internal void StopMerging()
    {
        lock (_writeLock)
        {
            _merge?.Dispose();
            _merge = null;
            if (_held is { } held)
            {
                _held = null;
                Publish(Build(held), HostUpdate.None);
            }
        }
    }

    private Held Latest => _held ?? new Held(_current.Hosts, _current.OverprovisioningFactor, _current.WeightedPriorityHealth);

    private void Deliver(Held next, HostUpdate update, bool mergeable)
    {
        if (_merge is { } merge && merge.Hold(mergeable))
        {
            // The snapshot is built when the timer fires, from the hosts' flags as they are then.
            _held = next;
            return;
        }

        _held = null;
        Publish(Build(next), update);
    }

    private void FlushHeld()
    {
        lock (_writeLock)
        {
            if (_merge is { } merge && merge.TakeHeld() && _held is { } held)
            {
                _held = null;
                Publish(Build(held), HostUpdate.None);
            }
        }
    }

    private PrioritySnapshot Build(Held next) =>
        PrioritySnapshot.Build(next.Hosts, _current.Version + 1, next.Factor, next.Weighted, _current, LocalityWeightOf);

    private void Publish(PrioritySnapshot snapshot, HostUpdate update)
    {
        _current = snapshot;
        if (update.Changed)
        {
            Updated?.Invoke(update);
        }

        Published?.Invoke(snapshot);
    }

    private static Host? TakeMatching(Dictionary<HostKey, List<Host>> existing, Host candidate)
    {
        if (!existing.TryGetValue(candidate.Key, out var same))
        {
            return null;
        }

        for (var i = 0; i < same.Count; i++)
        {
            var host = same[i];
            // A changed health_check_config makes a new host, as Envoy's (its checks start over).
            if (ReferenceEquals(host, candidate) || (Equals(host.Locality, candidate.Locality) && host.SameHealthCheckConfig(candidate)))
            {
                same.RemoveAt(i);
                if (same.Count == 0)
                {
                    existing.Remove(candidate.Key);
                }

                return host;
            }
        }

        return null;
    }

    private sealed record Held(ImmutableArray<Host> Hosts, uint Factor, bool Weighted);

    private static bool SameOrder(ImmutableArray<Host> a, ImmutableArray<Host> b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (!ReferenceEquals(a[i], b[i]))
            {
                return false;
            }
        }

        return true;
    }
}
