using Legate.Stats;

namespace Legate.Http;

/// <summary>
/// Envoy's per-codec statistics on the downstream side, rooted at <c>http1.</c> or <c>http2.</c>
/// (not under the connection manager's <c>http.&lt;stat_prefix&gt;.</c>: Envoy creates them in the
/// listener's root scope, so every connection manager of the process shares them).
/// </summary>
internal sealed class HttpCodecStats
{
    public HttpCodecStats(StatsStore store, string prefix)
    {
        DroppedHeadersWithUnderscores = store.Counter(prefix + "dropped_headers_with_underscores");
        RequestsRejectedWithUnderscoresInHeaders = store.Counter(prefix + "requests_rejected_with_underscores_in_headers");
    }

    /// <summary>Header (and trailer) fields dropped under <c>headers_with_underscores_action: DROP_HEADER</c>.</summary>
    public Counter DroppedHeadersWithUnderscores { get; }

    /// <summary>Requests refused under <c>headers_with_underscores_action: REJECT_REQUEST</c>.</summary>
    public Counter RequestsRejectedWithUnderscoresInHeaders { get; }
}
