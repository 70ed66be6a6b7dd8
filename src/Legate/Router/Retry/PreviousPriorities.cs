using Legate.Upstream;

namespace Legate.Router.Retry;

/// <summary>
/// <c>retry_priority</c> <c>envoy.retry_priorities.previous_priorities</c> for one request (Envoy's
/// PreviousPrioritiesRetryPriority): once <c>update_frequency</c> attempts have been made, and again
/// after every further <c>update_frequency</c>, the priorities of the hosts tried so far get no load
/// and the others share it by their health; when that leaves no priority with any health, the
/// attempted priorities are forgotten and the original load applies again. For an aggregate
/// cluster the priorities are the linearized ones (Envoy maps a host to its cluster's position).
/// </summary>
internal sealed class PreviousPriorities(int updateFrequency)
{
    private PriorityLoad? _load;

    /// <summary>Hosts before this index (in the attempted list) were forgotten by a reset.</summary>
    private int _from;

    public PriorityLoad DetermineLoad(PrioritySnapshot snapshot, PriorityLoad original, List<Host> attempted)
    {
        var count = attempted.Count - _from;
        if (count < updateFrequency)
        {
            return original;
        }

        if (count % updateFrequency == 0 || _load is null)
        {
            var sets = snapshot.HostSets;
            Span<bool> excluded = sets.Length <= 64 ? stackalloc bool[sets.Length] : new bool[sets.Length];
            for (var i = _from; i < attempted.Count; i++)
            {
                // An aggregate's snapshot is linearized: the host's own cluster's priority there.
                if (snapshot.PriorityIndexOf(attempted[i]) is >= 0 and var p)
                {
                    excluded[p] = true;
                }
            }

            var load = original.Excluding(excluded);
            if (load is null)
            {
                _from = attempted.Count;
            }

            _load = load ?? original;
        }

        return _load;
    }
}
