namespace Legate.Http.Http1;

/// <summary>Outcome of parsing a message head.</summary>
internal enum Http1ParseStatus
{
    /// <summary>A whole head was parsed; <c>consumed</c> bytes belong to it.</summary>
    Complete,

    /// <summary>
    /// The head is not complete yet. Nothing was consumed: call again with the same bytes plus more
    /// (with a PipeReader: <c>AdvanceTo(buffer.Start, buffer.End)</c>).
    /// </summary>
    NeedMoreData,

    /// <summary>The bytes are not a valid head; see the error. The connection cannot be reused.</summary>
    Error,
}
