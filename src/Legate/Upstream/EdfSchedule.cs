using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// Envoy's weighted round robin is earliest-deadline-first scheduling: each host has a deadline
/// 1/weight ahead of the last time it was picked, the host with the earliest deadline is picked
/// next, and ties go to the entry scheduled first. Heavier hosts come up more often and the picks
/// interleave (weights 1, 2, 3 give C B C A B C, not A B B C C C).
/// </summary>
/// <remarks>
/// With integer weights the order repeats: in every unit of time host i has exactly weight_i
/// deadlines, so one period is sum(weights) picks (after dividing the weights by their greatest
/// common divisor). <see cref="BuildTable"/> computes one period with exact fractions (k/w
/// compared by cross-multiplying, so ties are real ties, not floating-point accidents) and the
/// load balancer walks it with an atomic counter instead of locking a live scheduler.
/// </remarks>
internal static class EdfSchedule
{
    /// <summary>
    /// One period of the EDF pick order of <paramref name="hosts"/> with their current weights, or
    /// null when the period would be longer than <paramref name="maxLength"/> picks.
    /// </summary>
    public static Host[]? BuildTable(ImmutableArray<Host> hosts, int maxLength)
    {
        var weights = new ulong[hosts.Length];
        ulong divisor = 0;
        for (var i = 0; i < hosts.Length; i++)
        {
            // Read once: a weight may be updated in place while we build.
            weights[i] = hosts[i].Weight;
            divisor = Gcd(divisor, weights[i]);
        }

        ulong period = 0;
        for (var i = 0; i < weights.Length; i++)
        {
            weights[i] /= divisor;
            period += weights[i];
        }

        if (period > (ulong)maxLength)
        {
            return null;
        }

        if (period == (ulong)hosts.Length)
        {
            // All weights equal: Envoy rotates through the hosts in order.
            return hosts.ToArray();
        }

        var queue = new PriorityQueue<int, Deadline>(hosts.Length, DeadlineComparer.Instance);
        ulong order = 0;
        for (var i = 0; i < hosts.Length; i++)
        {
            queue.Enqueue(i, new Deadline(1, weights[i], order++));
        }

        var table = new Host[period];
        for (var t = 0; t < table.Length; t++)
        {
            queue.TryDequeue(out var index, out var deadline);
            table[t] = hosts[index];
            queue.Enqueue(index, new Deadline(deadline.Picks + 1, deadline.Weight, order++));
        }

        return table;
    }

    private static ulong Gcd(ulong a, ulong b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return a;
    }

    /// <summary>The deadline Picks/Weight, and the order it was scheduled in (the tie-breaker).</summary>
    private readonly record struct Deadline(ulong Picks, ulong Weight, ulong Order);

    private sealed class DeadlineComparer : IComparer<Deadline>
    {
        public static readonly DeadlineComparer Instance = new();

        public int Compare(Deadline x, Deadline y)
        {
            // Picks <= Weight + 1 and both are at most the table length, so the products fit.
            var byTime = (x.Picks * y.Weight).CompareTo(y.Picks * x.Weight);
            return byTime != 0 ? byTime : x.Order.CompareTo(y.Order);
        }
    }
}
