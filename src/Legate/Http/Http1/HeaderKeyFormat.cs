namespace Legate.Http.Http1;

/// <summary>
/// How header names are written on HTTP/1.1 (Envoy's <c>Http1ProtocolOptions.header_key_format</c>).
/// </summary>
internal enum HeaderKeyFormat
{
    /// <summary>Lowercase, Envoy's default ("When handling HTTP/1.1, Envoy will normalize the header keys to be all lowercase").</summary>
    Default,

    /// <summary>
    /// Envoy's <c>proper_case_words</c>: the first character and every character after a
    /// non-alphanumeric one are uppercased ("content-type" → "Content-Type", "te" → "Te").
    /// </summary>
    ProperCaseWords,

    /// <summary>The case the name was received or added with (Envoy's preserve_case stateful formatter).</summary>
    PreserveCase,
}
