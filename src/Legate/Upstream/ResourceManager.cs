using Legate.Stats;
using Thresholds = Envoy.Config.Cluster.V3.CircuitBreakers.Types.Thresholds;

namespace Legate.Upstream;

/// <summary>
/// A cluster's circuit breakers for one routing priority (Envoy's ResourceManager): connections,
/// pending requests (waiting for a connection), requests, retries and connection pools, with
/// Envoy's defaults 1024 / 1024 / 1024 / 3 / unlimited. With a <c>retry_budget</c>, the retry limit
/// is <c>budget_percent</c> of the requests active and pending, but at least
/// <c>min_retry_concurrency</c>.
/// </summary>
internal sealed class ResourceManager
{
    public const long DefaultMaxConnections = 1024;
    public const long DefaultMaxPendingRequests = 1024;
    public const long DefaultMaxRequests = 1024;
    public const long DefaultMaxRetries = 3;

    public ResourceManager(StatsStore store, string clusterName, string priorityName, Thresholds? thresholds)
    {
        var p = "cluster." + clusterName + ".circuit_breakers." + priorityName + ".";
        var track = thresholds?.TrackRemaining ?? false;
        Gauge Open(string name) => store.Gauge(p, name, ImportMode.Accumulate);
        Gauge? Remaining(string name) => track ? store.Gauge(p, name, ImportMode.Accumulate) : null;

        Connections = new ResourceLimit(thresholds?.MaxConnections ?? DefaultMaxConnections, Open("cx_open"), Remaining("remaining_cx"));
        PendingRequests = new ResourceLimit(thresholds?.MaxPendingRequests ?? DefaultMaxPendingRequests, Open("rq_pending_open"), Remaining("remaining_pending"));
        Requests = new ResourceLimit(thresholds?.MaxRequests ?? DefaultMaxRequests, Open("rq_open"), Remaining("remaining_rq"));
        ConnectionPools = new ResourceLimit(thresholds?.MaxConnectionPools ?? long.MaxValue, Open("cx_pool_open"), Remaining("remaining_cx_pools"));
        if (thresholds?.RetryBudget is { } budget)
        {
            var percent = budget.BudgetPercent?.Value ?? 20.0;
            var minimum = (long)(budget.MinRetryConcurrency ?? 3);
            RetryBudget = (percent, minimum);
            Retries = new ResourceLimit(0, Open("rq_retry_open"), Remaining("remaining_retries"),
                () => Math.Max((long)(percent / 100 * (Requests.Count + PendingRequests.Count)), minimum));
        }
        else
        {
            Retries = new ResourceLimit(thresholds?.MaxRetries ?? DefaultMaxRetries, Open("rq_retry_open"), Remaining("remaining_retries"));
        }
    }

    public ResourceLimit Connections { get; }

    public ResourceLimit PendingRequests { get; }

    public ResourceLimit Requests { get; }

    public ResourceLimit Retries { get; }

    public ResourceLimit ConnectionPools { get; }

    /// <summary>The retry budget (percent, minimum concurrency) when one is configured.</summary>
    public (double Percent, long MinConcurrency)? RetryBudget { get; }
}
