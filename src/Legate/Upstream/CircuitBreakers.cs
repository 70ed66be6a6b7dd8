using Envoy.Config.Core.V3;
using Legate.Stats;
using CircuitBreakersConfig = Envoy.Config.Cluster.V3.CircuitBreakers;

namespace Legate.Upstream;

/// <summary>A cluster's circuit breakers, one <see cref="ResourceManager"/> per routing priority (DEFAULT, HIGH).</summary>
internal sealed class CircuitBreakers
{
    public CircuitBreakers(StatsStore store, string clusterName, CircuitBreakersConfig? config)
    {
        CircuitBreakersConfig.Types.Thresholds? defaults = null, high = null;
        if (config is not null)
        {
            // Envoy: the last thresholds entry for a priority wins.
            foreach (var thresholds in config.Thresholds)
            {
                if (thresholds.Priority == RoutingPriority.High)
                {
                    high = thresholds;
                }
                else
                {
                    defaults = thresholds;
                }
            }
        }

        Default = new ResourceManager(store, clusterName, "default", defaults);
        High = new ResourceManager(store, clusterName, "high", high);
        if (config is not null)
        {
            // per_host_thresholds: Envoy honours only max_connections (the last DEFAULT entry wins); no gauges.
            foreach (var thresholds in config.PerHostThresholds)
            {
                if (thresholds.Priority != RoutingPriority.High && thresholds.MaxConnections is { } max)
                {
                    PerHostMaxConnections = max;
                }
            }
        }
    }

    /// <summary><c>per_host_thresholds.max_connections</c>: connections one host may have at once (unlimited when unset).</summary>
    public long PerHostMaxConnections { get; } = long.MaxValue;

    public ResourceManager Default { get; }

    public ResourceManager High { get; }

    public ResourceManager For(RoutingPriority priority) => priority == RoutingPriority.High ? High : Default;
}
