using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// A live EDF scheduler, as Envoy runs it (floating-point deadlines, ties to the earliest
/// scheduled), for host lists whose weights make one period too long to precompute. A pick is a
/// heap pop and push under a short lock; such weights are rare.
/// </summary>
internal sealed class LockedEdfScheduler : HostScheduler
{
    private readonly Lock _lock = new();
    private readonly Host[] _hosts;
    private readonly double[] _intervals;
    private readonly PriorityQueue<int, (double Deadline, ulong Order)> _queue;
    private ulong _order;

    public LockedEdfScheduler(ImmutableArray<Host> hosts, ulong start)
    {
        ArgumentOutOfRangeException.ThrowIfZero(hosts.Length);
        _hosts = hosts.ToArray();
        _intervals = new double[_hosts.Length];
        _queue = new PriorityQueue<int, (double, ulong)>(_hosts.Length);
        for (var i = 0; i < _hosts.Length; i++)
        {
            _intervals[i] = 1.0 / _hosts[i].Weight;
            _queue.Enqueue(i, (_intervals[i], _order++));
        }

        // Start somewhere else than every other proxy, as Envoy does.
        for (var i = start % (ulong)_hosts.Length; i > 0; i--)
        {
            Pick();
        }
    }

    public override Host Pick()
    {
        lock (_lock)
        {
            _queue.TryDequeue(out var index, out var deadline);
            _queue.Enqueue(index, (deadline.Deadline + _intervals[index], _order++));
            return _hosts[index];
        }
    }
}
