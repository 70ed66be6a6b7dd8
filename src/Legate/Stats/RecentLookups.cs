using System.Globalization;
using System.Text;

namespace Legate.Stats;

/// <summary>
/// Envoy's recent stat-name lookups (<c>/stats/recentlookups</c>): the names components asked the
/// store for by string, with a count each, keeping the most recently used <see cref="Capacity"/>
/// names. Off (capacity 0) until <c>/stats/recentlookups/enable</c>, as in Envoy; the total counts
/// every lookup either way. Components look their stats up once when their config is compiled, so
/// a name that keeps being looked up points at a component that builds names per request.
/// </summary>
internal sealed class RecentLookups
{
    /// <summary>Envoy's capacity when enabled from the admin.</summary>
    public const int EnabledCapacity = 100;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, (long Count, long LastUse)> _names = new(StringComparer.Ordinal);
    private long _total;
    private long _sequence;
    private int _capacity;

    public int Capacity => Volatile.Read(ref _capacity);

    public long Total => Interlocked.Read(ref _total);

    public void Record(string name) => Record(new StatKey("", name));

    /// <summary>Counts a lookup; the name is joined only while tracking is on.</summary>
    public void Record(StatKey key)
    {
        Interlocked.Increment(ref _total);
        if (Volatile.Read(ref _capacity) == 0)
        {
            return;
        }

        var name = key.Join();
        lock (_lock)
        {
            var count = _names.TryGetValue(name, out var seen) ? seen.Count : 0;
            _names[name] = (count + 1, ++_sequence);
            if (_names.Count > _capacity)
            {
                EvictLeastRecent();
            }
        }
    }

    public void SetCapacity(int capacity)
    {
        lock (_lock)
        {
            Volatile.Write(ref _capacity, capacity);
            while (_names.Count > capacity)
            {
                EvictLeastRecent();
            }
        }
    }

    /// <summary>Forgets the names and resets the total (<c>/stats/recentlookups/clear</c>, <c>/reset_counters</c>).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _names.Clear();
            Interlocked.Exchange(ref _total, 0);
        }
    }

    /// <summary>Envoy's text: a <c>   Count Lookup</c> table sorted by name, then <c>total: N</c>.</summary>
    public string Render()
    {
        var table = new StringBuilder();
        lock (_lock)
        {
            foreach (var (name, (count, _)) in _names.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                table.Append(count.ToString(CultureInfo.InvariantCulture).PadLeft(8)).Append(' ').Append(name).Append('\n');
            }
        }

        var text = new StringBuilder();
        if (table.Length == 0 && Capacity == 0)
        {
            text.Append("Lookup tracking is not enabled. Use /stats/recentlookups/enable to enable.\n");
        }
        else
        {
            text.Append("   Count Lookup\n").Append(table);
        }

        return text.Append("\ntotal: ").Append(Total.ToString(CultureInfo.InvariantCulture)).Append('\n').ToString();
    }

    private void EvictLeastRecent()
    {
        string? oldest = null;
        var oldestUse = long.MaxValue;
        foreach (var (name, (_, lastUse)) in _names)
        {
            if (lastUse < oldestUse)
            {
                oldest = name;
                oldestUse = lastUse;
            }
        }

        if (oldest is not null)
        {
            _names.Remove(oldest);
        }
    }
}
