using System.Buffers;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Router.Matching;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>
/// Envoy's HTTP tap filter (<c>envoy.filters.http.tap</c>): records a stream that matches the tap's
/// predicate — request and response headers, the first max_buffered_rx/tx_bytes of each body
/// (<c>truncated</c> when there was more) and trailers — and hands the finished
/// <c>envoy.data.tap.v3.TraceWrapper</c> (<c>http_buffered_trace</c>) to the tap's sink when the
/// stream ends. Headers are read when the stream ends, so what later filters (the router) added
/// shows, as in Envoy. With no tap in effect, or once the predicate can no longer match, every
/// callback returns at once and nothing is allocated.
/// </summary>
internal sealed class TapFilter : HttpFilter
{
    private readonly TapFilterFactory _factory;
    private TapResponseLookup? _responseLookup;

    // Per stream; all null/zero while the stream is not being tapped.
    private TapSettings? _settings;
    private HttpStream? _stream;
    private DateTimeOffset? _requestHeadersTime;
    private DateTimeOffset? _responseHeadersTime;
    private HttpRequestHead? _request;
    private HttpHeaderMap? _requestTrailers;
    private HttpResponseHead? _response;
    private HttpHeaderMap? _responseTrailers;
    private TapBody _requestBody;
    private TapBody _responseBody;

    public TapFilter(TapFilterFactory factory) => _factory = factory;

    public override ValueTask<FilterHeadersStatus> DecodeHeadersAsync(HttpStream stream, HttpRequestHead headers, bool endStream)
    {
        if (_factory.Active is { } settings && settings.Sample(_factory.Runtime))
        {
            _settings = settings;
            _stream = stream;
            _request = headers;
            if (_factory.RecordHeadersReceivedTime)
            {
                _requestHeadersTime = _factory.Time.GetUtcNow();
            }

            Reevaluate();
        }

        return ValueTask.FromResult(FilterHeadersStatus.Continue);
    }

    public override ValueTask<FilterDataStatus> DecodeDataAsync(HttpStream stream, BodyBuffer data, bool endStream)
    {
        if (_settings is { } settings)
        {
            _requestBody.Append(data, settings.MaxBufferedRxBytes);
        }

        return ValueTask.FromResult(FilterDataStatus.Continue);
    }

    public override ValueTask<FilterTrailersStatus> DecodeTrailersAsync(HttpStream stream, HttpHeaderMap trailers)
    {
        if (_settings is not null)
        {
            _requestTrailers = trailers;
            Reevaluate();
        }

        return ValueTask.FromResult(FilterTrailersStatus.Continue);
    }

    public override ValueTask<FilterHeadersStatus> EncodeHeadersAsync(HttpStream stream, HttpResponseHead headers, bool endStream)
    {
        if (_settings is not null)
        {
            _response = headers;
            if (_factory.RecordHeadersReceivedTime)
            {
                _responseHeadersTime = _factory.Time.GetUtcNow();
            }

            Reevaluate();
        }

        return ValueTask.FromResult(FilterHeadersStatus.Continue);
    }

    public override ValueTask<FilterDataStatus> EncodeDataAsync(HttpStream stream, BodyBuffer data, bool endStream)
    {
        if (_settings is { } settings)
        {
            _responseBody.Append(data, settings.MaxBufferedTxBytes);
        }

        return ValueTask.FromResult(FilterDataStatus.Continue);
    }

    public override ValueTask<FilterTrailersStatus> EncodeTrailersAsync(HttpStream stream, HttpHeaderMap trailers)
    {
        if (_settings is not null)
        {
            _responseTrailers = trailers;
            Reevaluate();
        }

        return ValueTask.FromResult(FilterTrailersStatus.Continue);
    }

    public override void OnDestroy()
    {
        if (_settings is not { } settings)
        {
            return;
        }

        try
        {
            // Reset streams are traced too: Envoy writes the trace when the stream is destroyed.
            if (settings.Matcher.Evaluate(Input(final: true)) == TapMatchResult.Match)
            {
                var trace = TapTraceBuilder.Build(
                    _request!, _requestBody, _requestTrailers, _response, _responseBody, _responseTrailers, settings.Sink.BodyAsString);
                TapTraceBuilder.AddDetails(
                    trace.HttpBufferedTrace, _requestHeadersTime, _responseHeadersTime, _factory.RecordDownstreamConnection ? _stream?.Info : null);
                settings.Sink.Submit(trace, (ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue));
            }
        }
        catch (Exception ex)
        {
            _factory.Log.Error($"tap: could not write the trace: {ex.Message}");
        }
        finally
        {
            Clear();
        }
    }

    public override bool TryRecycle()
    {
        Clear();
        return true;
    }

    /// <summary>Stops tapping the stream as soon as the predicate can no longer match.</summary>
    private void Reevaluate()
    {
        if (_settings!.Matcher.Evaluate(Input(final: false)) == TapMatchResult.NoMatch)
        {
            Clear();
        }
    }

    private TapMatchInput Input(bool final)
    {
        var authority = _settings!.Matcher.NeedsAuthority && _request is { } request
            ? System.Text.Encoding.Latin1.GetString(request.Authority)
            : string.Empty;
        IHeaderLookup? response = _response is null ? null : (_responseLookup ??= new TapResponseLookup()).Reset(_response);
        return new TapMatchInput(_request, authority, _requestTrailers?.Lookup, response, _responseTrailers?.Lookup, final);
    }

    private void Clear()
    {
        _settings = null;
        _stream = null;
        _requestHeadersTime = null;
        _responseHeadersTime = null;
        _request = null;
        _requestTrailers = null;
        _response = null;
        _responseTrailers = null;
        _responseLookup?.Reset(null);
        _requestBody.Release();
        _responseBody.Release();
    }
}

/// <summary>The first bytes of a tapped body, in a pooled buffer, and whether more came.</summary>
internal struct TapBody
{
    private byte[]? _buffer;

    public int Length { get; private set; }

    public bool Truncated { get; private set; }

    /// <summary>True once any body data (even empty) was seen: the trace then has a <c>body</c>.</summary>
    public bool Seen { get; private set; }

    public readonly ReadOnlySpan<byte> Span => _buffer is null ? default : _buffer.AsSpan(0, Length);

    public void Append(BodyBuffer data, int max)
    {
        var incoming = data.Length;
        if (incoming == 0)
        {
            return;
        }

        Seen = true;
        var room = max - Length;
        if (incoming > room)
        {
            Truncated = true;
        }

        var take = (int)Math.Min(incoming, room);
        if (take <= 0)
        {
            return;
        }

        if (_buffer is null || _buffer.Length < Length + take)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Min(max, Math.Max(Length + take, 256)));
            if (_buffer is not null)
            {
                _buffer.AsSpan(0, Length).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_buffer);
            }

            _buffer = larger;
        }

        data.Data.Slice(0, take).CopyTo(_buffer.AsSpan(Length));
        Length += take;
    }

    public void Release()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }

        Length = 0;
        Truncated = false;
        Seen = false;
    }
}
