namespace Legate.Tests.Http.Http1;

/// <summary>
/// Everything observable about one parsed message, as plain values so two parses (all at once and
/// byte by byte) compare with record equality.
/// </summary>
internal sealed record ParsedMessage
{
    public string StartLine { get; init; } = "";

    /// <summary>"name: value" lines as the map holds them (lowercase names), in order.</summary>
    public string Headers { get; init; } = "";

    public string Body { get; init; } = "";

    public string Trailers { get; init; } = "";

    public string Framing { get; init; } = "";

    public long ContentLength { get; init; } = -1;

    public bool KeepAlive { get; init; }

    /// <summary>0 when the message parsed; else the error status.</summary>
    public int ErrorStatus { get; init; }

    public string ErrorDetails { get; init; } = "";

    public string ErrorCode { get; init; } = "";

    /// <summary>The input ended inside a head.</summary>
    public bool Truncated { get; init; }

    public bool IsError => ErrorStatus != 0;

    public override string ToString() => IsError
        ? $"error {ErrorStatus} {ErrorDetails} ({ErrorCode}) after [{StartLine}] body=[{Body}]"
        : $"[{StartLine}] {Framing} cl={ContentLength} ka={KeepAlive} headers=[{Headers.Replace("\n", " | ", StringComparison.Ordinal)}] body=[{Body}] trailers=[{Trailers}]";
}
