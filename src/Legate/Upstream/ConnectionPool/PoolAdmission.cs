namespace Legate.Upstream.ConnectionPool;

/// <summary>
/// A pool's <c>max_connection_pools</c> slot, taken when the pool is first used rather than when it
/// is made: two requests that race to make a host's pool both make one and only one is kept
/// (<see cref="Host.ConnectionPool{T}(int, Func{Host, T})"/>, and a concurrent dictionary's
/// <c>GetOrAdd</c>); a slot taken at creation would stay with the discarded one forever, and
/// with a limit of one refuse every request on the kept one.
/// </summary>
internal struct PoolAdmission
{
    private const int Undecided = 0;
    private const int Admitted = 1;
    private const int Refused = 2;

    private int _state;

    /// <summary>Whether the pool may be used; the first call decides, once, for every caller.</summary>
    public bool IsAdmitted(ResourceManager resources) => _state switch
    {
        Admitted => true,
        Refused => false,
        _ => Decide(resources),
    };

    private bool Decide(ResourceManager resources)
    {
        var admitted = resources.ConnectionPools.TryAcquire();
        var previous = Interlocked.CompareExchange(ref _state, admitted ? Admitted : Refused, Undecided);
        if (previous == Undecided)
        {
            return admitted;
        }

        // Another caller decided first: its answer stands, and a slot taken meanwhile goes back.
        if (admitted)
        {
            resources.ConnectionPools.Release();
        }

        return previous == Admitted;
    }
}
