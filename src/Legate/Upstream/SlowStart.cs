using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// Envoy's slow start (<c>slow_start_config</c> of ROUND_ROBIN and LEAST_REQUEST): for
/// <c>slow_start_window</c> after a host became healthy (its last active health check pass, or
/// when a load balancer first saw it healthy), its weight is scaled by
/// <c>max(min_weight_percent, time_factor ^ (1 / aggression))</c> where
/// <c>time_factor = max(elapsed, 1 ms) / window</c>. Outside the window, or when not healthy, a
/// host keeps its weight.
/// </summary>
internal sealed class SlowStart
{
    private readonly long _windowTicks;

    public SlowStart(SlowStartSettings settings, TimeProvider time)
    {
        Settings = settings;
        Time = time;
        _windowTicks = (long)(settings.Window.TotalSeconds * time.TimestampFrequency);
    }

    public SlowStartSettings Settings { get; }

    public TimeProvider Time { get; }

    /// <summary>The runtime holding <c>aggression.runtime_key</c>, when there is one (set with the load balancer's).</summary>
    internal Legate.Runtime.RuntimeLoader? Runtime { get; set; }

    /// <summary>
    /// The aggression now: the runtime key's value when it holds a number (Envoy's Runtime::Double),
    /// else <c>default_value</c>; a value that is not above 0 counts as 1.0, as Envoy (which logs it).
    /// </summary>
    internal double Aggression
    {
        get
        {
            var aggression = Settings.Aggression;
            if (Settings.AggressionRuntimeKey is { } key && Runtime?.Snapshot.Get(key) is { } text
                && double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value))
            {
                aggression = value;
            }

            return aggression > 0 && !double.IsNaN(aggression) ? aggression : 1.0;
        }
    }

    /// <summary>Starts the window of every healthy host that has none yet (Envoy's recalculateHostsInSlowStart).</summary>
    public void Stamp(PrioritySnapshot snapshot)
    {
        var now = Time.GetTimestamp();
        foreach (var host in snapshot.Hosts)
        {
            if (host.Health == HostHealth.Healthy)
            {
                host.StampLastHcPassIfUnset(now);
            }
        }
    }

    /// <summary>The timestamp at which the last of <paramref name="hosts"/> leaves its window; 0 when none is in one.</summary>
    public long WindowEnd(ImmutableArray<Host> hosts)
    {
        long end = 0;
        var now = Time.GetTimestamp();
        foreach (var host in hosts)
        {
            var start = host.LastHcPassTimestamp;
            if (start != 0 && start + _windowTicks > now)
            {
                end = Math.Max(end, start + _windowTicks);
            }
        }

        return end;
    }

    /// <summary><paramref name="weight"/> scaled for <paramref name="host"/>'s place in its window as of <paramref name="now"/>.</summary>
    public double Apply(double weight, Host host, long now)
    {
        var start = host.LastHcPassTimestamp;
        if (start == 0 || host.Health != HostHealth.Healthy)
        {
            return weight;
        }

        var elapsed = now - start;
        if (elapsed >= _windowTicks)
        {
            return weight;
        }

        var oneMillisecond = Time.TimestampFrequency / 1000.0;
        var timeFactor = Math.Max(oneMillisecond, elapsed) / _windowTicks;
        var aggression = Aggression;
        var scaled = aggression == 1.0 || timeFactor == 1.0 ? timeFactor : Math.Pow(timeFactor, 1.0 / aggression);
        return weight * Math.Max(Settings.MinWeightFraction, scaled);
    }
}
