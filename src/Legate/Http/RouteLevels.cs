using Legate.Router.Actions;

namespace Legate.Http;

/// <summary>
/// What a route inherits from its route configuration and virtual host when it is compiled:
/// header mutations of the enclosing levels and the order flag (retry and mirror policies join
/// here with their stages).
/// </summary>
internal sealed record RouteLevels(
    bool MostSpecificWins,
    HeaderMutation? RouteConfigRequest,
    HeaderMutation? RouteConfigResponse,
    HeaderMutation? VirtualHostRequest,
    HeaderMutation? VirtualHostResponse)
{
    public static RouteLevels None { get; } = new(false, null, null, null, null);

    /// <summary>The virtual host's retry_policy (a route's own replaces it whole).</summary>
    public Legate.Router.Retry.RetryPolicy? VirtualHostRetryPolicy { get; init; }

    /// <summary>The virtual host's request_mirror_policies (a route's own replace them).</summary>
    public Legate.Router.Mirror.MirrorPolicy[]? VirtualHostMirrorPolicies { get; init; }

    /// <summary>The virtual host's include_request_attempt_count.</summary>
    public bool IncludeRequestAttemptCount { get; init; }

    /// <summary>The virtual host's include_attempt_count_in_response.</summary>
    public bool IncludeAttemptCountInResponse { get; init; }

    /// <summary>The virtual host's hedge_policy.hedge_on_per_try_timeout (a route's own hedge_policy replaces it whole).</summary>
    public bool VirtualHostHedgeOnPerTryTimeout { get; init; }
}
