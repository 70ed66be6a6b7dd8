namespace Legate.Http.Http1;

/// <summary>Outcome of one <see cref="Http1BodyReader.Read"/> call.</summary>
internal enum Http1BodyStatus
{
    /// <summary>Nothing more can be decoded from these bytes; <c>consumed</c> may still be non-zero (framing).</summary>
    NeedMoreData,

    /// <summary><c>data</c> holds body bytes; the body continues.</summary>
    Data,

    /// <summary>The body ended; <c>data</c> may hold its last bytes. Bytes after <c>consumed</c> belong to the next message.</summary>
    Complete,

    /// <summary>The body framing is invalid; see the error.</summary>
    Error,
}
