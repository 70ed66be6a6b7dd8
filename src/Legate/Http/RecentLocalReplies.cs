namespace Legate.Http;

/// <summary>
/// The last few streams that did not end as a plain upstream answer — local replies (503 UF, 404
/// NR, 504 UT…) and resets — with what explains them: flags, details, route, cluster, host. The
/// admin dashboard shows them ("why did I get a 503"). A fixed ring written with one atomic
/// increment; only such streams pay for a record, ordinary requests cost nothing.
/// </summary>
internal sealed class RecentLocalReplies
{
    private readonly Entry?[] _ring;
    private long _next;

    public RecentLocalReplies(int capacity = 100) => _ring = new Entry?[capacity];

    public int Capacity => _ring.Length;

    /// <summary>Records <paramref name="stream"/> if it ended in a local reply, a reset or with response flags.</summary>
    public void OnStreamEnd(HttpStream stream, string statPrefix)
    {
        var info = stream.Info;
        if (!stream.IsLocalReply && !stream.IsReset && info.ResponseFlags == ResponseFlags.None)
        {
            return;
        }

        var head = stream.RequestHeaders;
        var entry = new Entry(
            info.StartTime,
            statPrefix,
            head.Method,
            stream.AuthorityString(),
            head.Path,
            info.ResponseCode,
            info.ResponseFlags,
            info.ResponseCodeDetails ?? (stream.IsReset ? "reset" : "-"),
            info.RouteName,
            info.UpstreamCluster?.Name,
            info.UpstreamHost?.Address.ToString(),
            stream.IsReset);
        var slot = (Interlocked.Increment(ref _next) - 1) % _ring.Length;
        Volatile.Write(ref _ring[slot], entry);
    }

    /// <summary>Newest first.</summary>
    public IReadOnlyList<Entry> Snapshot()
    {
        var end = Interlocked.Read(ref _next);
        var list = new List<Entry>(_ring.Length);
        for (var i = end - 1; i >= 0 && i >= end - _ring.Length; i--)
        {
            if (Volatile.Read(ref _ring[i % _ring.Length]) is { } entry)
            {
                list.Add(entry);
            }
        }

        return list;
    }

    /// <summary>One remembered stream.</summary>
    internal sealed record Entry(
        DateTimeOffset Time,
        string StatPrefix,
        string Method,
        string Authority,
        string Path,
        int Status,
        ResponseFlags Flags,
        string Details,
        string? Route,
        string? Cluster,
        string? Host,
        bool Reset);
}
