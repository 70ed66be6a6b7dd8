using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// A host list's picker while some of its hosts are in their slow start window: a live EDF
/// scheduler whose weights are re-evaluated each time a host is rescheduled (Envoy's
/// <c>pickAndAdd</c> with the slow start factor), under a short lock. Once the last host leaves
/// its window, picks go to the policy's usual picker (lock-free for round robin).
/// </summary>
internal sealed class SlowStartPicker : HostPicker
{
    private readonly Lock _lock = new();
    private readonly HostPicker _steady;
    private readonly SlowStart _slowStart;
    private readonly Func<Host, double> _baseWeight;
    private readonly long _windowEnd;
    private readonly Host[] _hosts;
    private readonly PriorityQueue<int, (double Deadline, ulong Order)> _queue;
    private ulong _order;

    /// <param name="steady">The policy's picker, used once no host is in its window.</param>
    /// <param name="baseWeight">The policy's weight of a host before slow start (least request divides by active requests).</param>
    public SlowStartPicker(ImmutableArray<Host> hosts, HostPicker steady, SlowStart slowStart, Func<Host, double> baseWeight)
    {
        _steady = steady;
        _slowStart = slowStart;
        _baseWeight = baseWeight;
        _windowEnd = slowStart.WindowEnd(hosts);
        _hosts = hosts.ToArray();
        _queue = new PriorityQueue<int, (double, ulong)>(_hosts.Length);
        var now = slowStart.Time.GetTimestamp();
        for (var i = 0; i < _hosts.Length; i++)
        {
            _queue.Enqueue(i, (1.0 / Weight(_hosts[i], now), _order++));
        }
    }

    /// <summary>True while some host is in its window (tests).</summary>
    internal bool InSlowStart => _slowStart.Time.GetTimestamp() < _windowEnd;

    public override bool UsesRandom => _steady.UsesRandom;

    public override Host? Pick(ulong random, ILoadBalancerContext? context)
    {
        var now = _slowStart.Time.GetTimestamp();
        if (now >= _windowEnd)
        {
            return _steady.Pick(random, context);
        }

        lock (_lock)
        {
            _queue.TryDequeue(out var index, out var deadline);
            var host = _hosts[index];
            _queue.Enqueue(index, (deadline.Deadline + 1.0 / Weight(host, now), _order++));
            return host;
        }
    }

    private double Weight(Host host, long now) =>
        // Never zero: a host must keep a finite deadline.
        Math.Max(_slowStart.Apply(_baseWeight(host), host, now), 1e-9);
}
