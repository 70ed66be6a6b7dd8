namespace Legate.Http.Http1;

/// <summary>What exactly was wrong with the bytes; <see cref="Http1Error"/> maps it to a status and details.</summary>
internal enum Http1ErrorCode
{
    None,

    // Start line.
    InvalidRequestLine,
    InvalidMethod,
    InvalidRequestTarget,
    InvalidVersion,
    Http10NotAllowed,
    InvalidUrl,
    InvalidScheme,
    AbsoluteUrlNotAllowed,
    InvalidStatusLine,

    // Header and trailer fields.
    InvalidHeaderLine,
    InvalidHeaderName,
    WhitespaceBeforeColon,
    ObsoleteLineFolding,
    InvalidHeaderValue,
    HeadersTooLarge,
    TooManyHeaders,
    UnderscoreInHeaderName,
    MissingHost,
    InvalidHost,

    // Framing.
    InvalidContentLength,
    MultipleContentLength,
    ContentLengthAndChunked,
    InvalidTransferEncoding,
    TransferEncodingInHttp10,
    BodyNotAllowed,
    TransferEncodingNotAllowed,
    ContentLengthNotAllowed,
    UnexpectedSwitchingProtocols,
    InvalidChunkSize,
    InvalidChunkFraming,
    ChunkHeaderTooLong,
    PrematureEndOfMessage,
}
