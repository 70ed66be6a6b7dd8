namespace Legate.Http.Http1;

/// <summary>What the Transfer-Encoding fields of a message amount to.</summary>
internal enum TransferCoding
{
    /// <summary>No Transfer-Encoding field.</summary>
    Absent,

    /// <summary>Exactly one field whose value is exactly <c>chunked</c> (any case).</summary>
    Chunked,

    /// <summary>Anything else: other codings, lists, empty values, several fields.</summary>
    Unsupported,
}
