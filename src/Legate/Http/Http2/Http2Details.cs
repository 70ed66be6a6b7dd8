namespace Legate.Http.Http2;

/// <summary>Envoy's <c>%RESPONSE_CODE_DETAILS%</c> values of its HTTP/2 codec that Legate produces.</summary>
internal static class Http2Details
{
    /// <summary>A request header field that cannot be represented (invalid name or value).</summary>
    public const string InvalidHeaderField = "http2.invalid.header.field";

    /// <summary>A request header name with an underscore under <c>headers_with_underscores_action: REJECT_REQUEST</c>.</summary>
    public const string UnexpectedUnderscore = "http2.unexpected_underscore";

    /// <summary>A request the HTTP/2 messaging rules (or the codec's settings) do not allow, e.g. CONNECT without <c>allow_connect</c>.</summary>
    public const string ViolationOfMessagingRule = "http2.violation.of.messaging.rule";
}
