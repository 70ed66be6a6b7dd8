namespace Legate.Extensions.Filters.Http.Buffer;

/// <summary>
/// A compiled buffer config: the filter-level <c>Buffer</c>, or a route's <c>BufferPerRoute</c>
/// (<c>disabled: true</c>, or a <c>buffer</c> with its own max_request_bytes).
/// </summary>
internal sealed class BufferSettings
{
    public static BufferSettings Disabled { get; } = new(0, disabled: true);

    public BufferSettings(long maxRequestBytes, bool disabled = false)
    {
        MaxRequestBytes = maxRequestBytes;
        IsDisabled = disabled;
    }

    /// <summary>The request is answered 413 when its body passes this many bytes.</summary>
    public long MaxRequestBytes { get; }

    public bool IsDisabled { get; }
}
