namespace Legate.Xds;

/// <summary>
/// The xDS names one compile took (an RDS route table per connection manager, an SDS secret per
/// TLS context), recorded so that a listener or cluster version that fails to compile gives them
/// back: a compiled object releases what it holds through its own path when it goes (LdsApi's held
/// resources, <see cref="Legate.Upstream.Cluster.DisposeAsync"/>), but a compile that fails half
/// way never produces that object, so this record is the only one of what it took. Compiles are
/// synchronous, hence one scope per thread; a scope nested in another hands what it kept to the
/// outer one when it ends.
/// </summary>
internal sealed class SubscriptionHolds : IDisposable
{
    [ThreadStatic]
    private static SubscriptionHolds? t_current;

    private readonly SubscriptionHolds? _outer;
    private readonly List<Action> _releases = [];
    private bool _ended;

    private SubscriptionHolds()
    {
        _outer = t_current;
        t_current = this;
    }

    /// <summary>Starts recording on this thread until <see cref="Dispose"/>.</summary>
    public static SubscriptionHolds Begin() => new();

    /// <summary>A reference was taken; <paramref name="release"/> gives it back. A no-op outside a scope.</summary>
    public static void Record(Action release) => t_current?._releases.Add(release);

    /// <summary>The compile failed: every reference it took is given back (names nobody else uses leave their subscription).</summary>
    public void ReleaseAll()
    {
        var releases = _releases.ToArray();
        _releases.Clear();
        foreach (var release in releases)
        {
            release();
        }
    }

    /// <summary>Ends the scope; what was not released now belongs to the compiled object (or to the outer scope).</summary>
    public void Dispose()
    {
        if (_ended)
        {
            return;
        }

        _ended = true;
        t_current = _outer;
        _outer?._releases.AddRange(_releases);
        _releases.Clear();
    }
}
