namespace Legate.Upstream;

/// <summary>
/// The random numbers load balancers draw on every pick (priority choice, random and
/// least-request picks, hash-less ring lookups). The default draws from <see cref="Random.Shared"/>
/// (thread-local, no lock); a seeded one makes tests repeatable and takes a lock, which tests can
/// afford.
/// </summary>
internal sealed class LbRandom
{
    public static readonly LbRandom Shared = new(null);

    private readonly Random? _seeded;
    private readonly Lock _lock = new();

    private LbRandom(Random? seeded) => _seeded = seeded;

    /// <summary>A repeatable sequence (tests, benchmarks).</summary>
    public static LbRandom Seeded(int seed) => new(new Random(seed));

    public ulong Next()
    {
        if (_seeded is null)
        {
            return (ulong)Random.Shared.NextInt64() ^ ((ulong)Random.Shared.Next() << 63);
        }

        lock (_lock)
        {
            return (ulong)_seeded.NextInt64() ^ ((ulong)_seeded.Next() << 63);
        }
    }
}
