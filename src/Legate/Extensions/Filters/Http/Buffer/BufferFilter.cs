using System.Globalization;
using Legate.Http;
using Legate.Http.Http1;

namespace Legate.Extensions.Filters.Http.Buffer;

/// <summary>
/// Envoy's buffer filter (<c>envoy.filters.http.buffer</c>): holds the request headers until the
/// whole body has arrived, then passes headers and body on together with a content-length when
/// the request had none. The stream's buffer limit becomes max_request_bytes, so a larger body is
/// answered 413 "Payload Too Large" by the connection manager (details request_payload_too_large,
/// <c>downstream_rq_too_large</c>), before anything reaches the upstream.
/// </summary>
internal sealed class BufferFilter : HttpFilter
{
    private readonly BufferFilterFactory _factory;
    private HttpRequestHead? _headers;
    private long _contentLength;

    public BufferFilter(BufferFilterFactory factory) => _factory = factory;

    public override ValueTask<FilterHeadersStatus> DecodeHeadersAsync(HttpStream stream, HttpRequestHead headers, bool endStream)
    {
        if (endStream)
        {
            // A header-only request has nothing to buffer.
            return ValueTask.FromResult(FilterHeadersStatus.Continue);
        }

        var settings = stream.Route?.PerFilterConfig(_factory.Name) switch
        {
            BufferSettings perRoute => perRoute,
            DisabledFilterConfig => BufferSettings.Disabled,
            _ => _factory.Settings,
        };
        if (settings.IsDisabled)
        {
            return ValueTask.FromResult(FilterHeadersStatus.Continue);
        }

        stream.SetDecoderBufferLimit(settings.MaxRequestBytes);
        _headers = headers;
        return ValueTask.FromResult(FilterHeadersStatus.StopIteration);
    }

    public override ValueTask<FilterDataStatus> DecodeDataAsync(HttpStream stream, BodyBuffer data, bool endStream)
    {
        if (_headers is null)
        {
            return ValueTask.FromResult(FilterDataStatus.Continue);
        }

        _contentLength += data.Length;
        if (endStream)
        {
            AddContentLengthIfAbsent();
            return ValueTask.FromResult(FilterDataStatus.Continue);
        }

        // Buffer until the whole request is here, or the connection manager answers 413.
        return ValueTask.FromResult(FilterDataStatus.StopIterationAndBuffer);
    }

    public override ValueTask<FilterTrailersStatus> DecodeTrailersAsync(HttpStream stream, HttpHeaderMap trailers)
    {
        AddContentLengthIfAbsent();
        return ValueTask.FromResult(FilterTrailersStatus.Continue);
    }

    private void AddContentLengthIfAbsent()
    {
        if (_headers is { } headers && !headers.Headers.Contains(KnownHeader.ContentLength))
        {
            headers.Headers.Set(KnownHeader.ContentLength, _contentLength.ToString(CultureInfo.InvariantCulture));
        }
    }
}
