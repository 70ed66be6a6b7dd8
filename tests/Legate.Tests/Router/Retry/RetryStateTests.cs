using RoutingPriority = Envoy.Config.Core.V3.RoutingPriority;
using RetryPolicy = Legate.Router.Retry.RetryPolicy;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Http.Http1;
using Legate.Router.Retry;
using Legate.Upstream;
using RouteRetryPolicy = Envoy.Config.Route.V3.RetryPolicy;

namespace Legate.Tests.Router.Retry;

/// <summary>Retry policy compilation and the per-request retry state.</summary>
public sealed class RetryStateTests
{
    private static readonly Cluster s_cluster = Legate.Tests.Upstream.UpstreamTestConfigs.Build("name: retry-test\nconnect_timeout: 1s\n");

    private static RetryPolicy Compile(RouteRetryPolicy config, ConfigErrors? errors = null) =>
        RetryPolicy.Compile(config, "retry_policy", errors ?? new ConfigErrors())!;

    private static HttpRequestHead Request(params (string Name, string Value)[] headers)
    {
        var head = new HttpRequestHead();
        foreach (var (name, value) in headers)
        {
            head.Headers.Add(name, value);
        }

        return head;
    }

    [Fact]
    public void RetryOnListsParseBothKinds()
    {
        Assert.Equal(RetryOn.FiveXx | RetryOn.ConnectFailure | RetryOn.GrpcUnavailable, RetryOnParser.Parse("5xx, connect-failure,unavailable", grpc: false));
        Assert.Equal(RetryOn.GrpcCancelled | RetryOn.GrpcDeadlineExceeded | RetryOn.GrpcInternal | RetryOn.GrpcResourceExhausted, RetryOnParser.Parse("cancelled,deadline-exceeded,internal,resource-exhausted", grpc: true));
    }

    [Fact]
    public void UnknownConditionsAndPredicatesAreConfigErrors()
    {
        var errors = new ConfigErrors();
        var config = new RouteRetryPolicy { RetryOn = "5xx,sometimes" };
        config.RetryHostPredicate.Add(new RouteRetryPolicy.Types.RetryHostPredicate { Name = "envoy.retry_host_predicates.made_up" });

        Compile(config, errors);

        Assert.Equal(["retry_policy.retry_on", "retry_policy.retry_host_predicate[0]"], errors.Errors.Select(e => e.Path));
        Assert.Contains("unknown retry condition 'sometimes'", errors.Errors[0].Message);
    }

    [Fact]
    public void DefaultsAreEnvoys()
    {
        var policy = Compile(new RouteRetryPolicy { RetryOn = "5xx" });

        Assert.Equal(1, policy.NumRetries);
        Assert.Equal(TimeSpan.FromMilliseconds(25), policy.BaseInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(250), policy.MaxInterval);
        Assert.Equal(TimeSpan.Zero, policy.PerTryTimeout);
        Assert.Equal(1, policy.HostSelectionRetryMaxAttempts);
    }

    [Fact]
    public void BackOffIsJitteredExponentialUpToTenTimesTheBase()
    {
        var policy = Compile(new RouteRetryPolicy { RetryOn = "5xx", NumRetries = 10 });
        var state = RetryState.Create(policy, Request(), s_cluster, RoutingPriority.Default, TimeSpan.Zero, random: max => max - 1)!;
        var stats = s_cluster.Info.Stats;

        // Always the top of the range: 25, 50, 100, 200 ms, then capped at 250 ms (minus the exclusive bound).
        var waits = Enumerable.Range(0, 6).Select(_ => (long)state.NextBackOff(null, stats).TotalMilliseconds).ToArray();
        Assert.Equal([24, 49, 99, 199, 249, 249], waits);

        var zero = RetryState.Create(policy, Request(), s_cluster, RoutingPriority.Default, TimeSpan.Zero, random: _ => 0)!;
        Assert.Equal(TimeSpan.Zero, zero.NextBackOff(null, stats));
    }

    [Fact]
    public void RetryHeadersExtendThePolicyAndAreRemoved()
    {
        var head = Request(("x-envoy-retry-on", "connect-failure"), ("x-envoy-retry-grpc-on", "unavailable"), ("x-envoy-max-retries", "4"), ("x-other", "kept"));

        var state = RetryState.Create(Compile(new RouteRetryPolicy { RetryOn = "5xx" }), head, s_cluster, RoutingPriority.Default, TimeSpan.Zero)!;

        Assert.Equal(RetryOn.FiveXx | RetryOn.ConnectFailure | RetryOn.GrpcUnavailable, state.RetryOn);
        Assert.Null(head.Headers.GetValue("x-envoy-retry-on"));
        Assert.Null(head.Headers.GetValue("x-envoy-max-retries"));
        Assert.Equal("kept", head.Headers.GetValue("x-other"));
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(RetryDecision.Retry, state.Decide(s_cluster.Info.Stats));
            state.ReleaseSlot();
        }

        Assert.Equal(RetryDecision.LimitExceeded, state.Decide(s_cluster.Info.Stats));
    }

    [Fact]
    public void NoPolicyAndNoHeadersMeansNoRetryState() =>
        Assert.Null(RetryState.Create(null, Request(), s_cluster, RoutingPriority.Default, TimeSpan.Zero));

    [Fact]
    public void RetriableRequestHeadersGateRetries()
    {
        var config = new RouteRetryPolicy { RetryOn = "5xx" };
        config.RetriableRequestHeaders.Add(new Envoy.Config.Route.V3.HeaderMatcher { Name = ":method", StringMatch = new Envoy.Type.Matcher.V3.StringMatcher { Exact = "GET" } });
        var policy = Compile(config);

        var get = Request();
        get.SetMethod("GET");
        var post = Request();
        post.SetMethod("POST");

        Assert.NotNull(RetryState.Create(policy, get, s_cluster, RoutingPriority.Default, TimeSpan.Zero));
        Assert.Null(RetryState.Create(policy, post, s_cluster, RoutingPriority.Default, TimeSpan.Zero));
    }

    [Fact]
    public void TheClusterRetryBudgetAllowsThreeConcurrentRetriesPerPriority()
    {
        var resources = new RetryResources.DefaultRetryResources(RetryResources.DefaultMaxRetries);

        Assert.True(resources.TryAcquireRetry(RoutingPriority.Default));
        Assert.True(resources.TryAcquireRetry(RoutingPriority.Default));
        Assert.True(resources.TryAcquireRetry(RoutingPriority.Default));
        Assert.False(resources.TryAcquireRetry(RoutingPriority.Default));
        Assert.True(resources.TryAcquireRetry(RoutingPriority.High));
        resources.ReleaseRetry(RoutingPriority.Default);
        Assert.True(resources.TryAcquireRetry(RoutingPriority.Default));
    }

    [Fact]
    public void ResetFailuresAreRetriableByTheirConditions()
    {
        RetryState State(string on) => RetryState.Create(Compile(new RouteRetryPolicy { RetryOn = on }), Request(), s_cluster, RoutingPriority.Default, TimeSpan.Zero)!;

        Assert.True(State("connect-failure").IsRetriable(AttemptFailure.ConnectFailure));
        Assert.False(State("connect-failure").IsRetriable(AttemptFailure.Reset));
        Assert.True(State("reset").IsRetriable(AttemptFailure.Reset));
        Assert.True(State("5xx").IsRetriable(AttemptFailure.PerTryTimeout));
        Assert.True(State("refused-stream").IsRetriable(AttemptFailure.RefusedStream));
        Assert.False(State("refused-stream").IsRetriable(AttemptFailure.Reset));
        Assert.False(State("retriable-4xx").IsRetriable(AttemptFailure.ConnectFailure));
    }

    [Fact]
    public void PerTryTimeoutHeaderOverridesThePolicy()
    {
        var policy = Compile(new RouteRetryPolicy { RetryOn = "5xx", PerTryTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)) });

        Assert.Equal(TimeSpan.FromSeconds(2), RetryState.Create(policy, Request(), s_cluster, RoutingPriority.Default, TimeSpan.Zero)!.PerTryTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(300), RetryState.Create(policy, Request(), s_cluster, RoutingPriority.Default, TimeSpan.FromMilliseconds(300))!.PerTryTimeout);
    }
}
