using System.Diagnostics.Tracing;

namespace Legate.Bench;

/// <summary>
/// The runtime's allocation sampling (one GCAllocationTick event per ~100 KB allocated, naming the
/// type that crossed the threshold), summed by type between marks: where the bytes of a phase go,
/// without a profiler. BENCH_ALLOC=1 turns it on in the xDS bench.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private readonly Dictionary<string, long> _bytes = new();
    private readonly object _lock = new();

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword: AllocationTick is verbose
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || e.Payload is null)
        {
            return;
        }

        var type = e.Payload[e.PayloadNames!.IndexOf("TypeName")] as string ?? "?";
        var amount = Convert.ToInt64(e.Payload[e.PayloadNames.IndexOf("AllocationAmount64")], System.Globalization.CultureInfo.InvariantCulture);
        lock (_lock)
        {
            _bytes[type] = _bytes.GetValueOrDefault(type) + amount;
        }
    }

    public void Mark(string phase)
    {
        lock (_lock)
        {
            var total = _bytes.Values.Sum();
            Console.Error.WriteLine($"allocations sampled in {phase}: {total / 1024.0 / 1024.0:N0} MiB");
            foreach (var (type, bytes) in _bytes.OrderByDescending(p => p.Value).Take(25))
            {
                Console.Error.WriteLine($"  {bytes / 1024.0 / 1024.0,8:N1} MiB  {type}");
            }

            _bytes.Clear();
        }
    }
}
