using Legate.Stats;

namespace Legate.Upstream;

/// <summary>
/// Passive health checking of one cluster (Envoy's outlier detection). The router reports each
/// exchange to the host's <see cref="HostOutlierMonitor"/>; consecutive 5xx, gateway failures and
/// local-origin failures eject at once, success rate and failure percentage are judged every
/// <c>interval</c>. An ejected host carries <see cref="HostHealthFlags.FailedOutlierCheck"/> for
/// <c>base_ejection_time × n</c> (n goes up with each ejection and down with each healthy interval;
/// capped at <c>max_ejection_time</c>, plus up to <c>max_ejection_time_jitter</c>), and comes back at
/// the first interval sweep after that. At most <c>max_ejection_percent</c> of the hosts are ejected
/// at once (ejecting one more must stay within it), unless <c>always_eject_one_host</c> lets the
/// first one go regardless; each kind of ejection happens only in its <c>enforcing_*</c> percent of
/// cases. Time comes from a <see cref="TimeProvider"/> so tests move it.
/// </summary>
internal sealed class OutlierDetector : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Cluster _cluster;
    private readonly TimeProvider _time;
    private readonly Func<long, long> _random;
    private readonly Dictionary<Host, HostOutlierMonitor> _monitors = new(ReferenceEqualityComparer.Instance);
    private readonly ITimer _timer;
    private readonly Gauge _ejectionsActive;
    private readonly Counter _ejectionsTotal;
    private readonly Counter _ejectionsOverflow;
    private readonly Counter _ejectionsEnforcedTotal;
    private readonly Counter[] _enforced;
    private readonly Counter[] _detected;

    public OutlierDetector(Cluster cluster, OutlierDetectionSettings config, TimeProvider time, Func<long, long> random)
    {
        _cluster = cluster;
        Config = config;
        _time = time;
        _random = random;
        var store = cluster.Info.Stats.Store;
        var p = "cluster." + cluster.Name + ".outlier_detection.";
        _ejectionsActive = store.Gauge(p, "ejections_active", ImportMode.Accumulate);
        _ejectionsTotal = store.Counter(p, "ejections_total");
        _ejectionsOverflow = store.Counter(p, "ejections_overflow");
        _ejectionsEnforcedTotal = store.Counter(p, "ejections_enforced_total");
        _enforced = new Counter[TypeNames.Length];
        _detected = new Counter[TypeNames.Length];
        for (var i = 0; i < TypeNames.Length; i++)
        {
            _enforced[i] = store.Counter(p, "ejections_enforced_" + TypeNames[i]);
            _detected[i] = store.Counter(p, "ejections_detected_" + TypeNames[i]);
        }

        lock (_lock)
        {
            foreach (var host in cluster.PrioritySet.Current.Hosts)
            {
                AddMonitor(host);
            }
        }

        cluster.PrioritySet.Updated += OnHostsChanged;
        _timer = time.CreateTimer(static state => ((OutlierDetector)state!).OnInterval(), this, config.Interval, config.Interval);
    }

    /// <summary>Kinds of ejection, in Envoy's stat names.</summary>
    internal enum EjectionType
    {
        Consecutive5xx,
        SuccessRate,
        ConsecutiveGatewayFailure,
        ConsecutiveLocalOriginFailure,
        LocalOriginSuccessRate,
        FailurePercentage,
        LocalOriginFailurePercentage,
    }

    private static readonly string[] TypeNames =
    [
        "consecutive_5xx", "success_rate", "consecutive_gateway_failure", "consecutive_local_origin_failure",
        "local_origin_success_rate", "failure_percentage", "local_origin_failure_percentage",
    ];

    public OutlierDetectionSettings Config { get; }

    /// <summary>Hosts ejected right now.</summary>
    public long EjectionsActive => _ejectionsActive.Value;

    public void Dispose()
    {
        _timer.Dispose();
        _cluster.PrioritySet.Updated -= OnHostsChanged;
    }

    /// <summary>A monitor reached a consecutive-error threshold (any thread).</summary>
    internal void OnConsecutiveError(HostOutlierMonitor monitor, EjectionType type)
    {
        bool changed;
        lock (_lock)
        {
            var host = monitor.Host;
            if (!_monitors.ContainsKey(host) || (host.HealthFlags & HostHealthFlags.FailedOutlierCheck) != 0)
            {
                return;
            }

            // Start counting the next bout afresh even if no success comes in between.
            monitor.ResetConsecutive(type);
            _detected[(int)type].Inc();
            changed = EjectHost(monitor, type);
        }

        if (changed)
        {
            _cluster.PrioritySet.RefreshHealth();
        }
    }

    /// <summary>
    /// An active health check passed: with <c>successful_active_health_check_uneject_host</c>
    /// (Envoy's default), an ejected host returns at once, its consecutive error counters cleared.
    /// </summary>
    public void OnActiveHealthCheckSuccess(Host host)
    {
        if (!Config.SuccessfulActiveHealthCheckUnejectHost)
        {
            return;
        }

        bool changed;
        lock (_lock)
        {
            changed = _monitors.TryGetValue(host, out var monitor) && Uneject(monitor);
            if (changed)
            {
                monitor!.ResetConsecutive(EjectionType.Consecutive5xx);
                monitor.ResetConsecutive(EjectionType.ConsecutiveGatewayFailure);
                monitor.ResetConsecutive(EjectionType.ConsecutiveLocalOriginFailure);
            }
        }

        if (changed)
        {
            _cluster.PrioritySet.RefreshHealth();
        }
    }

    /// <summary>The interval sweep: returns hosts whose time is up, lowers backoffs, judges success rates.</summary>
    internal void OnInterval()
    {
        var changed = false;
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            var external = new List<(HostOutlierMonitor Monitor, long Total, long Success)>();
            var local = new List<(HostOutlierMonitor Monitor, long Total, long Success)>();
            foreach (var monitor in _monitors.Values)
            {
                var (total, success, localTotal, localSuccess) = monitor.TakeCounts();
                if ((monitor.Host.HealthFlags & HostHealthFlags.FailedOutlierCheck) == 0)
                {
                    if (monitor.EjectTimeBackoff > 0)
                    {
                        monitor.EjectTimeBackoff--;
                    }

                    external.Add((monitor, total, success));
                    local.Add((monitor, localTotal, localSuccess));
                }
                else if (monitor.LastEjectionTime is { } ejected && now - ejected >= monitor.EjectionDuration)
                {
                    changed |= Uneject(monitor);
                }
            }

            changed |= JudgeRates(external, local: false);
            if (Config.SplitExternalLocalOriginErrors)
            {
                changed |= JudgeRates(local, local: true);
            }
        }

        if (changed)
        {
            _cluster.PrioritySet.RefreshHealth();
        }
    }

    private bool JudgeRates(List<(HostOutlierMonitor Monitor, long Total, long Success)> counts, bool local)
    {
        var changed = false;
        var rates = new List<(HostOutlierMonitor Monitor, double Rate)>();
        foreach (var (monitor, total, success) in counts)
        {
            var rate = total >= Config.SuccessRateRequestVolume ? 100.0 * success / total : -1;
            if (local)
            {
                monitor.LocalOriginSuccessRate = rate;
            }
            else
            {
                monitor.SuccessRate = rate;
            }

            if (rate >= 0)
            {
                rates.Add((monitor, rate));
            }
        }

        if (_monitors.Count >= Config.SuccessRateMinimumHosts && rates.Count >= Config.SuccessRateMinimumHosts)
        {
            var mean = 0.0;
            foreach (var (_, rate) in rates)
            {
                mean += rate;
            }

            mean /= rates.Count;
            var variance = 0.0;
            foreach (var (_, rate) in rates)
            {
                variance += (rate - mean) * (rate - mean);
            }

            var threshold = mean - (Math.Sqrt(variance / rates.Count) * (Config.SuccessRateStdevFactor / 1000.0));
            foreach (var (monitor, rate) in rates)
            {
                if (rate < threshold && (monitor.Host.HealthFlags & HostHealthFlags.FailedOutlierCheck) == 0)
                {
                    var type = local ? EjectionType.LocalOriginSuccessRate : EjectionType.SuccessRate;
                    _detected[(int)type].Inc();
                    changed |= EjectHost(monitor, type);
                }
            }
        }

        var volume = 0;
        foreach (var (_, total, _) in counts)
        {
            volume += total >= Config.FailurePercentageRequestVolume ? 1 : 0;
        }

        if (_monitors.Count >= Config.FailurePercentageMinimumHosts && volume >= Config.FailurePercentageMinimumHosts)
        {
            foreach (var (monitor, total, success) in counts)
            {
                if (total >= Config.FailurePercentageRequestVolume
                    && 100.0 * (total - success) / total >= Config.FailurePercentageThreshold
                    && (monitor.Host.HealthFlags & HostHealthFlags.FailedOutlierCheck) == 0)
                {
                    var type = local ? EjectionType.LocalOriginFailurePercentage : EjectionType.FailurePercentage;
                    _detected[(int)type].Inc();
                    changed |= EjectHost(monitor, type);
                }
            }
        }

        return changed;
    }

    /// <summary>Ejects if the ejection limit and the enforcement percentage allow; true when the host was ejected.</summary>
    private bool EjectHost(HostOutlierMonitor monitor, EjectionType type)
    {
        var active = _ejectionsActive.Value;
        var percentAfter = 100.0 * (active + 1) / Math.Max(1, _monitors.Count);
        if (percentAfter > Config.MaxEjectionPercent && !(Config.AlwaysEjectOneHost && active == 0))
        {
            _ejectionsOverflow.Inc();
            return false;
        }

        if (type is EjectionType.Consecutive5xx or EjectionType.SuccessRate)
        {
            // Envoy's deprecated total.
            _ejectionsTotal.Inc();
        }

        if (_random(100) >= Enforcing(type))
        {
            return false;
        }

        _ejectionsActive.Inc();
        _ejectionsEnforcedTotal.Inc();
        _enforced[(int)type].Inc();
        monitor.NumEjections++;
        monitor.EjectTimeBackoff++;
        var jitterMs = (long)Config.MaxEjectionTimeJitter.TotalMilliseconds;
        var duration = TimeSpan.FromTicks(Math.Min(Config.BaseEjectionTime.Ticks * monitor.EjectTimeBackoff, Config.MaxEjectionTime.Ticks));
        monitor.EjectionDuration = duration + TimeSpan.FromMilliseconds(jitterMs > 0 ? _random(jitterMs + 1) : 0);
        monitor.LastEjectionTime = _time.GetUtcNow();
        monitor.Host.SetHealthFlag(HostHealthFlags.FailedOutlierCheck);
        return true;
    }

    private bool Uneject(HostOutlierMonitor monitor)
    {
        if (!monitor.Host.ClearHealthFlag(HostHealthFlags.FailedOutlierCheck))
        {
            return false;
        }

        _ejectionsActive.Dec();
        monitor.LastEjectionTime = null;
        return true;
    }

    private int Enforcing(EjectionType type) => type switch
    {
        EjectionType.Consecutive5xx => Config.EnforcingConsecutive5xx,
        EjectionType.ConsecutiveGatewayFailure => Config.EnforcingConsecutiveGatewayFailure,
        EjectionType.ConsecutiveLocalOriginFailure => Config.EnforcingConsecutiveLocalOriginFailure,
        EjectionType.SuccessRate => Config.EnforcingSuccessRate,
        EjectionType.LocalOriginSuccessRate => Config.EnforcingLocalOriginSuccessRate,
        EjectionType.FailurePercentage => Config.EnforcingFailurePercentage,
        _ => Config.EnforcingFailurePercentageLocalOrigin,
    };

    private void OnHostsChanged(HostUpdate update)
    {
        lock (_lock)
        {
            foreach (var host in update.Added)
            {
                AddMonitor(host);
            }

            foreach (var host in update.Removed)
            {
                if (_monitors.Remove(host) && (host.HealthFlags & HostHealthFlags.FailedOutlierCheck) != 0)
                {
                    _ejectionsActive.Dec();
                }
            }
        }
    }

    private void AddMonitor(Host host)
    {
        var monitor = new HostOutlierMonitor(this, host);
        _monitors[host] = monitor;
        host.OutlierMonitor = monitor;
    }
}
