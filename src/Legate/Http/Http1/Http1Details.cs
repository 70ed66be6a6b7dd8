namespace Legate.Http.Http1;

/// <summary>
/// <c>%RESPONSE_CODE_DETAILS%</c> values for codec errors: Envoy's strings, so access logs and
/// dashboards built for Envoy keep working.
/// </summary>
internal static class Http1Details
{
    public const string CodecError = "http1.codec_error";
    public const string InvalidCharacters = "http1.invalid_characters";
    public const string HeadersTooLarge = "http1.headers_too_large";
    public const string TooManyHeaders = "http1.too_many_headers";
    public const string InvalidUrl = "http1.invalid_url";
    public const string InvalidScheme = "http1.invalid_scheme";
    public const string InvalidTransferEncoding = "http1.invalid_transfer_encoding";
    public const string BodyDisallowed = "http1.body_disallowed";
    public const string TransferEncodingNotAllowed = "http1.transfer_encoding_not_allowed";
    public const string ContentLengthNotAllowed = "http1.content_length_not_allowed";
    public const string UnexpectedUnderscore = "http1.unexpected_underscore";
    public const string ChunkedContentLength = "http1.content_length_and_chunked_not_allowed";

    // Not codec-specific in Envoy (stream info / HCM details), but detected here.
    public const string LowVersion = "low_version";
    public const string MissingHost = "missing_host_header";
    public const string AbsolutePath = "absolute_path_rejected";
    public const string InvalidAuthority = "http.invalid_authority";
}
