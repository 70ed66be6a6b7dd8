using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Router.Matching;

namespace Legate.Router.Retry;

/// <summary>
/// A compiled <c>retry_policy</c> (route, or the virtual host's when the route has none). The
/// per-request decisions live in <see cref="RetryState"/>.
/// </summary>
internal sealed class RetryPolicy
{
    /// <summary>Envoy's default retry back-off base interval.</summary>
    public static readonly TimeSpan DefaultBaseInterval = TimeSpan.FromMilliseconds(25);

    /// <summary>No retry_policy, only the request's x-envoy-retry-* headers (Envoy honours those on any route).</summary>
    public static RetryPolicy Empty { get; } = new();

    public RetryOn RetryOn { get; private init; }

    /// <summary>num_retries (default 1).</summary>
    public int NumRetries { get; private init; } = 1;

    /// <summary>Zero when not set.</summary>
    public TimeSpan PerTryTimeout { get; private init; }

    /// <summary>Zero when not set.</summary>
    public TimeSpan PerTryIdleTimeout { get; private init; }

    public TimeSpan BaseInterval { get; private init; } = DefaultBaseInterval;

    /// <summary>Default 10 × the base interval.</summary>
    public TimeSpan MaxInterval { get; private init; } = DefaultBaseInterval * 10;

    public int[] RetriableStatusCodes { get; private init; } = [];

    public CompiledHeaderMatcher[] RetriableHeaders { get; private init; } = [];

    public CompiledHeaderMatcher[] RetriableRequestHeaders { get; private init; } = [];

    /// <summary>retry_host_predicate envoy.retry_host_predicates.previous_hosts.</summary>
    public bool AvoidPreviousHosts => HostPredicates?.PreviousHosts ?? false;

    /// <summary>The compiled retry_host_predicate list, or null when it is empty.</summary>
    public RetryHostPredicates? HostPredicates { get; private init; }

    /// <summary>retry_priority envoy.retry_priorities.previous_priorities' update_frequency; 0 without it.</summary>
    public int PreviousPrioritiesUpdateFrequency { get; private init; }

    /// <summary>host_selection_retry_max_attempts (Envoy's default 1).</summary>
    public int HostSelectionRetryMaxAttempts { get; private init; } = 1;

    /// <summary>rate_limited_retry_back_off reset headers (name lower-case, unix timestamp or seconds), or empty.</summary>
    public (string Name, bool UnixTimestamp)[] RateLimitedResetHeaders { get; private init; } = [];

    /// <summary>rate_limited_retry_back_off.max_interval (Envoy's default 300 s).</summary>
    public TimeSpan RateLimitedMaxInterval { get; private init; } = TimeSpan.FromSeconds(300);

    public static RetryPolicy? Compile(Envoy.Config.Route.V3.RetryPolicy? config, string path, ConfigErrors errors)
    {
        if (config is null)
        {
            return null;
        }

        var unknown = new List<string>();
        var retryOn = RetryOnParser.Parse(config.RetryOn, grpc: false, unknown);
        foreach (var name in unknown)
        {
            errors.Add(FieldPath.Field(path, "retry_on"), $"unknown retry condition '{name}'");
        }

        var baseInterval = DefaultBaseInterval;
        TimeSpan? maxInterval = null;
        if (config.RetryBackOff is { } backOff)
        {
            baseInterval = backOff.BaseInterval?.ToTimeSpan() ?? DefaultBaseInterval;
            if (backOff.MaxInterval is { } max)
            {
                maxInterval = max.ToTimeSpan();
                if (maxInterval < baseInterval)
                {
                    errors.Add(FieldPath.Field(FieldPath.Field(path, "retry_back_off"), "max_interval"), "max_interval must be greater than or equal to the base_interval");
                }
            }
        }

        var hostPredicates = RetryHostPredicates.Compile(config.RetryHostPredicate, FieldPath.Field(path, "retry_host_predicate"), errors);
        var updateFrequency = 0;
        if (config.RetryPriority is { } priority)
        {
            var priorityPath = FieldPath.Field(path, "retry_priority");
            const string previousPriorities = "envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig";
            var typeUrl = priority.TypedConfig?.TypeUrl ?? string.Empty;
            if (typeUrl.EndsWith("/" + previousPriorities, StringComparison.Ordinal) || (typeUrl.Length == 0 && priority.Name == "envoy.retry_priorities.previous_priorities"))
            {
                updateFrequency = typeUrl.Length > 0 ? priority.TypedConfig!.Unpack<Envoy.Extensions.Retry.Priority.PreviousPriorities.V3.PreviousPrioritiesConfig>().UpdateFrequency : 0;
                if (updateFrequency <= 0)
                {
                    errors.Add(FieldPath.Field(FieldPath.Field(priorityPath, "typed_config"), "update_frequency"), "update_frequency must be greater than 0");
                    updateFrequency = 1;
                }
            }
            else
            {
                errors.Add(priorityPath, $"retry priority '{priority.Name}' is not supported yet (only envoy.retry_priorities.previous_priorities)");
            }
        }

        var statusCodes = new int[config.RetriableStatusCodes.Count];
        for (var i = 0; i < statusCodes.Length; i++)
        {
            statusCodes[i] = (int)config.RetriableStatusCodes[i];
        }

        var resetHeaders = Array.Empty<(string, bool)>();
        var rateLimitedMax = TimeSpan.FromSeconds(300);
        if (config.RateLimitedRetryBackOff is { } rateLimited)
        {
            resetHeaders = rateLimited.ResetHeaders
                .Select(h => (h.Name.ToLowerInvariant(), h.Format == Envoy.Config.Route.V3.RetryPolicy.Types.ResetHeaderFormat.UnixTimestamp))
                .ToArray();
            rateLimitedMax = rateLimited.MaxInterval?.ToTimeSpan() ?? rateLimitedMax;
        }

        return new RetryPolicy
        {
            RetryOn = retryOn,
            NumRetries = (int)(config.NumRetries ?? 1),
            PerTryTimeout = config.PerTryTimeout?.ToTimeSpan() ?? TimeSpan.Zero,
            PerTryIdleTimeout = config.PerTryIdleTimeout?.ToTimeSpan() ?? TimeSpan.Zero,
            BaseInterval = baseInterval,
            MaxInterval = maxInterval ?? baseInterval * 10,
            RetriableStatusCodes = statusCodes,
            RetriableHeaders = CompileMatchers(config.RetriableHeaders, FieldPath.Field(path, "retriable_headers"), errors),
            RetriableRequestHeaders = CompileMatchers(config.RetriableRequestHeaders, FieldPath.Field(path, "retriable_request_headers"), errors),
            HostPredicates = hostPredicates,
            PreviousPrioritiesUpdateFrequency = updateFrequency,
            HostSelectionRetryMaxAttempts = config.HostSelectionRetryMaxAttempts > 0 ? (int)config.HostSelectionRetryMaxAttempts : 1,
            RateLimitedResetHeaders = resetHeaders,
            RateLimitedMaxInterval = rateLimitedMax,
        };
    }

    private static CompiledHeaderMatcher[] CompileMatchers(Google.Protobuf.Collections.RepeatedField<HeaderMatcher> matchers, string path, ConfigErrors errors)
    {
        var result = new List<CompiledHeaderMatcher>(matchers.Count);
        for (var i = 0; i < matchers.Count; i++)
        {
            if (CompiledHeaderMatcher.Create(matchers[i], errors, FieldPath.Index(path, i)) is { } compiled)
            {
                result.Add(compiled);
            }
        }

        return result.ToArray();
    }
}
