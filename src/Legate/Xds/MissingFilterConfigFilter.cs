using Legate.Http;
using Legate.Http.Http1;

namespace Legate.Xds;

/// <summary>
/// Stands in for a discovered HTTP filter that has no configuration (none arrived within
/// initial_fetch_timeout, or ECDS removed it, and there is no default_config): every request is
/// answered 500 with response flag NFCF, as Envoy's missing-config filter does.
/// </summary>
internal sealed class MissingFilterConfigFilter : HttpFilter
{
    public override async ValueTask<FilterHeadersStatus> DecodeHeadersAsync(HttpStream stream, HttpRequestHead headers, bool endStream)
    {
        await stream.SendLocalReplyAsync(500, string.Empty, string.Empty, ResponseFlags.NoFilterConfigFound).ConfigureAwait(false);
        return FilterHeadersStatus.StopIteration;
    }
}
