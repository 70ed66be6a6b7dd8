using Envoy.Config.Route.V3;
using Legate.Http;
using Legate.Stats;

namespace Legate.Xds;

/// <summary>
/// One RDS route configuration as the connection managers see it: the compiled
/// <see cref="RouteTable"/>, swapped atomically on each accepted update. A stream matches its
/// route once, against the table it read, so in-flight requests finish on the snapshot they
/// started with. Stats: <c>http.&lt;stat_prefix&gt;.rds.&lt;name&gt;.*</c> (config_reload, update_*, version).
/// </summary>
internal sealed class RdsRouteConfigProvider
{
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile RouteTable _current = RouteTable.Empty;

    private readonly Action<RdsRouteConfigProvider>? _release;

    public RdsRouteConfigProvider(string name, StatsStore stats, string statPrefix, Action<RdsRouteConfigProvider>? release = null)
    {
        _release = release;
        Name = name;
        Stats = new XdsStats(stats, $"http.{statPrefix}.rds.{name}.");
        ConfigReload = stats.Counter($"http.{statPrefix}.rds.{name}.config_reload");
        ConfigReloadTime = stats.Gauge($"http.{statPrefix}.rds.{name}.config_reload_time_ms", ImportMode.NeverImport);
    }

    public string Name { get; }

    /// <summary>The table in force (empty, i.e. 404 NR, until the first update).</summary>
    public RouteTable Current => _current;

    /// <summary>The config in force, for config_dump.</summary>
    public RouteConfiguration? Config { get; private set; }

    public string Version { get; private set; } = string.Empty;

    public DateTimeOffset LastUpdated { get; private set; }

    public XdsStats Stats { get; }

    public Counter ConfigReload { get; }

    public Gauge ConfigReloadTime { get; }

    /// <summary>Completes at the first update (or the initial fetch timeout): listeners using it warm until then.</summary>
    public Task Ready => _ready.Task;

    public void Update(RouteTable table, RouteConfiguration config, string version, DateTimeOffset now)
    {
        _current = table;
        Config = config;
        Version = version;
        LastUpdated = now;
        ConfigReload.Inc();
        ConfigReloadTime.Set(now.ToUnixTimeMilliseconds());
        _ready.TrySetResult();
    }

    public void EndWarming() => _ready.TrySetResult();

    /// <summary>How many connection managers use this table; guarded by the dispatcher's lock.</summary>
    internal int References { get; set; }

    /// <summary>
    /// A connection manager that used this table is gone (its LDS listener was replaced, removed and
    /// drained, or never made it): the last one to go ends the subscription to the name, as Envoy's
    /// RDS provider does when its last user is destroyed.
    /// </summary>
    public void Release() => _release?.Invoke(this);
}
