namespace Legate.Http;

/// <summary>What a matched route does.</summary>
internal enum RouteActionKind
{
    /// <summary>Answer with the configured status and body.</summary>
    DirectResponse,

    /// <summary>Forward to a cluster (fixed, named by a header, or weighted): the router filter.</summary>
    Forward,

    /// <summary>Answer with a 3xx and a computed location.</summary>
    Redirect,

    /// <summary>filter_action, non_forwarding_action, cluster specifier plugins: not implemented yet, answered 503.</summary>
    NotImplemented,
}
