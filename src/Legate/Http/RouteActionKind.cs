namespace Legate.Http;

/// <summary>What a matched route does in this interim connection manager.</summary>
internal enum RouteActionKind
{
    /// <summary>Answer with the configured status and body.</summary>
    DirectResponse,

    /// <summary>route, redirect and the rest: the router's job, answered with 503 for now.</summary>
    NotImplemented,
}
