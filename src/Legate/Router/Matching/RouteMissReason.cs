namespace Legate.Router.Matching;

/// <summary>Which condition of a route's <c>match</c> rejected the request.</summary>
internal enum RouteMissKind
{
    /// <summary>prefix, path, safe_regex or path_separated_prefix did not match the path.</summary>
    Path,

    /// <summary>connect_matcher, and the method was not CONNECT.</summary>
    ConnectMethod,

    /// <summary>runtime_fraction did not select the request.</summary>
    RuntimeFraction,

    Header,

    QueryParameter,

    /// <summary>grpc was set and content-type was not application/grpc or application/grpc+*.</summary>
    Grpc,

    TlsContext,
}

/// <summary>Why one route did not match, for <c>legate explain</c>.</summary>
internal sealed record RouteMissReason(int RouteIndex, string RouteName, RouteMissKind Kind, string Detail);
