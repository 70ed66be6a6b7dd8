namespace Legate.Http.Http2;

/// <summary>Envoy's <c>%RESPONSE_CODE_DETAILS%</c> values of its HTTP/2 codec that Legate produces.</summary>
internal static class Http2Details
{
    /// <summary>A request header field that cannot be represented (invalid name or value).</summary>
    public const string InvalidHeaderField = "http2.invalid.header.field";
}
