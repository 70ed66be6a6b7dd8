using Legate.Http.Http1;

namespace Legate.Http;

/// <summary>
/// One HTTP filter instance, created per stream by its <see cref="HttpFilterFactory"/>. Requests
/// pass the filters in configuration order (decode), responses in reverse order (encode). Every
/// callback is asynchronous: a filter that needs to wait (a delay, an authorization call) simply
/// awaits, and the stream waits with it. A filter may change headers, body and trailers in place,
/// or answer on its own with <see cref="HttpStream.SendLocalReplyAsync"/> and return a Stop status.
/// The defaults pass everything through.
/// </summary>
internal abstract class HttpFilter
{
    public virtual ValueTask<FilterHeadersStatus> DecodeHeadersAsync(HttpStream stream, HttpRequestHead headers, bool endStream) =>
        ValueTask.FromResult(FilterHeadersStatus.Continue);

    public virtual ValueTask<FilterDataStatus> DecodeDataAsync(HttpStream stream, BodyBuffer data, bool endStream) =>
        ValueTask.FromResult(FilterDataStatus.Continue);

    public virtual ValueTask<FilterTrailersStatus> DecodeTrailersAsync(HttpStream stream, HttpHeaderMap trailers) =>
        ValueTask.FromResult(FilterTrailersStatus.Continue);

    public virtual ValueTask<FilterHeadersStatus> EncodeHeadersAsync(HttpStream stream, HttpResponseHead headers, bool endStream) =>
        ValueTask.FromResult(FilterHeadersStatus.Continue);

    public virtual ValueTask<FilterDataStatus> EncodeDataAsync(HttpStream stream, BodyBuffer data, bool endStream) =>
        ValueTask.FromResult(FilterDataStatus.Continue);

    public virtual ValueTask<FilterTrailersStatus> EncodeTrailersAsync(HttpStream stream, HttpHeaderMap trailers) =>
        ValueTask.FromResult(FilterTrailersStatus.Continue);

    /// <summary>
    /// The stream was reset (downstream went away, a timeout, a protocol error) before it ended
    /// normally: stop outstanding work. Called at most once, possibly while another callback runs.
    /// </summary>
    public virtual void OnStreamReset()
    {
    }

    /// <summary>The stream is over (always called once, last): release resources.</summary>
    public virtual void OnDestroy()
    {
    }

    /// <summary>
    /// Called after <see cref="OnDestroy"/> when the stream ended cleanly (response complete, not
    /// reset, all of its work awaited). A filter that can serve the connection's next stream clears
    /// its per-stream state and returns true; its factory then gets it back in
    /// <see cref="HttpFilterFactory.CreateFilter(HttpFilter?)"/> instead of allocating a new one.
    /// </summary>
    public virtual bool TryRecycle() => false;
}
