namespace Legate.Http;

/// <summary>What a matched route does.</summary>
internal enum RouteActionKind
{
    /// <summary>Answer with the configured status and body.</summary>
    DirectResponse,

    /// <summary>Forward to one cluster (the router filter).</summary>
    Forward,

    /// <summary>redirect, weighted clusters, cluster_header and the rest: not implemented yet, answered 503.</summary>
    NotImplemented,
}
