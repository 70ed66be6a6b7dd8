using System.Runtime.CompilerServices;
using Envoy.Config.Core.V3;
using Legate.Upstream;

namespace Legate.Router.Retry;

/// <summary>
/// The hook between retries and the cluster's circuit breakers: a retry may be scheduled only when
/// the cluster grants a retry slot (Envoy's <c>max_retries</c> threshold or <c>retry_budget</c>, per
/// routing priority), and gives it back when the retry starts or the request ends.
/// </summary>
internal interface IRetryResources
{
    bool TryAcquireRetry(RoutingPriority priority);

    void ReleaseRetry(RoutingPriority priority);
}

/// <summary>Where the router finds a cluster's <see cref="IRetryResources"/>.</summary>
internal static class RetryResources
{
    /// <summary>Envoy's default circuit-breaker max_retries.</summary>
    public const int DefaultMaxRetries = 3;

    private static readonly ConditionalWeakTable<Cluster, CircuitBreakerRetryResources> s_byCluster = new();

    public static IRetryResources For(Cluster cluster) => s_byCluster.GetValue(cluster, static c => new CircuitBreakerRetryResources(c.Info.CircuitBreakers));

    /// <summary>The cluster's <c>rq_retry_open</c> limit (max_retries or the retry budget).</summary>
    private sealed class CircuitBreakerRetryResources(CircuitBreakers breakers) : IRetryResources
    {
        public bool TryAcquireRetry(RoutingPriority priority) => breakers.For(priority).Retries.TryAcquire();

        public void ReleaseRetry(RoutingPriority priority) => breakers.For(priority).Retries.Release();
    }

    /// <summary>A counter per priority, never above its limit (tests of the retry state alone).</summary>
    internal sealed class DefaultRetryResources(int max) : IRetryResources
    {
        private readonly int[] _active = new int[2];

        public bool TryAcquireRetry(RoutingPriority priority)
        {
            ref var active = ref _active[priority == RoutingPriority.High ? 1 : 0];
            while (true)
            {
                var current = Volatile.Read(ref active);
                if (current >= max)
                {
                    return false;
                }

                if (Interlocked.CompareExchange(ref active, current + 1, current) == current)
                {
                    return true;
                }
            }
        }

        public void ReleaseRetry(RoutingPriority priority) => Interlocked.Decrement(ref _active[priority == RoutingPriority.High ? 1 : 0]);

        public int Active(RoutingPriority priority) => Volatile.Read(ref _active[priority == RoutingPriority.High ? 1 : 0]);
    }
}
