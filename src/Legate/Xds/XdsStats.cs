using Legate.Stats;

namespace Legate.Xds;

/// <summary>
/// Envoy's per-subscription stats under a prefix (<c>cluster_manager.cds.</c>, <c>listener_manager.lds.</c>,
/// <c>http.&lt;prefix&gt;.rds.&lt;name&gt;.</c>, <c>cluster.&lt;name&gt;.</c>): update_attempt/success/rejected/failure,
/// update_time (ms since the epoch), version (a hash of version_info), init_fetch_timeout.
/// </summary>
internal sealed class XdsStats
{
    public XdsStats(StatsStore store, string prefix)
    {
        UpdateAttempt = store.Counter(prefix, "update_attempt");
        UpdateSuccess = store.Counter(prefix, "update_success");
        UpdateRejected = store.Counter(prefix, "update_rejected");
        UpdateFailure = store.Counter(prefix, "update_failure");
        UpdateEmpty = store.Counter(prefix, "update_empty");
        InitFetchTimeout = store.Counter(prefix, "init_fetch_timeout");
        UpdateTime = store.Gauge(prefix, "update_time", ImportMode.NeverImport);
        Version = store.Gauge(prefix, "version", ImportMode.NeverImport);
    }

    public Counter UpdateAttempt { get; }

    public Counter UpdateSuccess { get; }

    public Counter UpdateRejected { get; }

    public Counter UpdateFailure { get; }

    public Counter UpdateEmpty { get; }

    public Counter InitFetchTimeout { get; }

    public Gauge UpdateTime { get; }

    public Gauge Version { get; }

    public void Accepted(string version, DateTimeOffset now)
    {
        UpdateSuccess.Inc();
        UpdateTime.Set(now.ToUnixTimeMilliseconds());
        Version.Set(HashVersion(version));
    }

    /// <summary>Envoy reports a hash of the version string; FNV-1a 64, folded to a non-negative long.</summary>
    public static long HashVersion(string version)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in version)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return (long)(hash >> 1);
    }
}
