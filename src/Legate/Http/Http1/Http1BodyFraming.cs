namespace Legate.Http.Http1;

/// <summary>How the body of a message is delimited on the wire (RFC 9112 §6.3).</summary>
internal enum Http1BodyFraming : byte
{
    /// <summary>No body: the message ends with its head.</summary>
    None,

    /// <summary>Exactly <c>Content-Length</c> bytes.</summary>
    ContentLength,

    /// <summary><c>Transfer-Encoding: chunked</c>, possibly followed by trailers.</summary>
    Chunked,

    /// <summary>Responses only: the body runs until the connection closes.</summary>
    CloseDelimited,

    /// <summary>
    /// After CONNECT or an accepted Upgrade every following byte is opaque tunnel payload, until
    /// the connection closes; the connection cannot carry another HTTP message.
    /// </summary>
    Tunnel,
}
