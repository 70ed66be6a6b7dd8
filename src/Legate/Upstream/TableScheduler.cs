namespace Legate.Upstream;

/// <summary>
/// Walks a precomputed pick order round and round: a shared counter bumped with one atomic
/// increment is the whole pick, so threads never wait on each other. For equal weights the table
/// is the hosts themselves (Envoy's plain rotation); for unequal weights it is one period of the
/// earliest-deadline-first order (<see cref="EdfSchedule"/>).
/// </summary>
internal sealed class TableScheduler : HostScheduler
{
    private readonly Host[] _table;
    private long _next;

    /// <param name="table">The pick order; not copied, never changed.</param>
    /// <param name="start">Where in the table to start, so that many proxies do not all send their first request to the same host (Envoy seeds the same way).</param>
    public TableScheduler(Host[] table, ulong start)
    {
        ArgumentOutOfRangeException.ThrowIfZero(table.Length);
        _table = table;
        _next = (long)(start % (ulong)table.Length);
    }

    public int Length => _table.Length;

    public override Host Pick()
    {
        if (_table.Length == 1)
        {
            return _table[0];
        }

        var index = (ulong)(Interlocked.Increment(ref _next) - 1);
        return _table[(int)(index % (ulong)_table.Length)];
    }
}
