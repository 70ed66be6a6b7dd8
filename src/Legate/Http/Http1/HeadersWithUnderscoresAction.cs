namespace Legate.Http.Http1;

/// <summary>
/// Envoy's <c>HttpProtocolOptions.headers_with_underscores_action</c>: what the server codec does
/// with a request header (or trailer) whose name contains '_'.
/// </summary>
internal enum HeadersWithUnderscoresAction
{
    /// <summary>Envoy's default: keep the header.</summary>
    Allow,

    /// <summary>Reject the request: 400 with details <c>http1.unexpected_underscore</c>.</summary>
    RejectRequest,

    /// <summary>Drop the header and count it (Envoy's <c>dropped_headers_with_underscores</c> stat).</summary>
    DropHeader,
}
