using System.Buffers;
using System.Runtime.CompilerServices;
using System.Diagnostics;
using System.Text;
using Legate.Http.Http1;

namespace Legate.Http;

/// <summary>
/// One request/response exchange inside a connection manager (Envoy's ActiveStream and its
/// filter manager): runs request events through the HTTP filters in order and response events in
/// reverse order, then hands the response to the codec's <see cref="ResponseEncoder"/>.
/// </summary>
/// <remarks>
/// Codec → stream: <see cref="DecodeHeadersAsync"/>, <see cref="DecodeDataAsync"/>,
/// <see cref="DecodeTrailersAsync"/>. Terminal filter (router) → stream: <see cref="EncodeHeadersAsync"/>,
/// <see cref="EncodeDataAsync"/>, <see cref="EncodeTrailersAsync"/>. Decode events come from one
/// caller at a time, encode events from one caller at a time; the two directions may run
/// concurrently (a streaming upstream response while the request body still arrives).
/// An HTTP/1.1 connection reuses one instance for each of its requests (<see cref="Begin"/>).
/// </remarks>
internal sealed class HttpStream
{
    private static readonly byte[] s_textPlain = "text/plain"u8.ToArray();

    private readonly HttpConnectionManagerConfig _config;
    private readonly ResponseEncoder _encoder;
    private readonly HttpResponseHead _localReplyHead = new();
    private HttpFilter[] _filters = [];
    private int _count;
    private CancellationTokenSource _resetSource = new();

    // Decode state: the filter holding the headers (later filters have not seen them), the filter
    // whose data is being buffered, the chunk in flight and the buffered bytes.
    private int _decodeHeldAt = -1;
    private int _decodeBufferedAt = -1;
    private BodyBuffer _decodeData = new();
    private BodyBuffer _decodeBuffered = new();

    // Encode state, the same in reverse order (positions count from the last filter).
    private int _encodeHeldAt = -1;
    private int _encodeBufferedAt = -1;
    private BodyBuffer _encodeData = new();
    private BodyBuffer _encodeBuffered = new();
    private HttpResponseHead? _encodeHead;

    private long _decoderBufferLimit;
    private bool _routeResolved;
    private RouteEntry? _route;
    private int _reset;
    private bool _stopDecoding;
    private bool _encodingLocalReply;
    private ValueTask<bool> _pendingAttempt;
    private bool _hasPendingAttempt;

    // Data a filter sends on later by itself (Envoy's injectEncodedDataToFilterChain), see
    // EnableEncodeInjection. Null for every stream that does not use it.
    private SemaphoreSlim? _encodeGate;
    private BodyBuffer? _injectData;
    private IEncodeInjector? _injector;

    public HttpStream(HttpConnectionManagerConfig config, ResponseEncoder encoder)
    {
        _config = config;
        _encoder = encoder;
    }

    public HttpConnectionManagerConfig Config => _config;

    public StreamInfo Info { get; } = new();

    public HttpRequestHead RequestHeaders { get; private set; } = null!;

    /// <summary>The response head being (or last) encoded; null before the response starts.</summary>
    public HttpResponseHead? ResponseHeaders => _encodeHead;

    /// <summary>The request's spans when the connection manager traces with a provider; null otherwise.</summary>
    public Tracing.ActiveTrace? Trace { get; private set; }

    /// <summary>The response trailers, once encoded; null otherwise.</summary>
    public HttpHeaderMap? ResponseTrailers { get; private set; }

    /// <summary>Fires when the stream is reset: downstream gone, timeout, protocol error.</summary>
    public CancellationToken ResetToken => _resetSource.Token;

    public bool IsReset => Volatile.Read(ref _reset) != 0;

    /// <summary>Between <see cref="Begin"/> and <see cref="End"/>.</summary>
    public bool Active { get; private set; }

    /// <summary>True once the response head went to the codec (a local reply is no longer possible, only a reset).</summary>
    public bool ResponseStarted { get; private set; }

    /// <summary>True once the whole response went to the codec.</summary>
    public bool ResponseComplete { get; private set; }

    /// <summary>True once the whole request went through the filters (end of stream seen).</summary>
    public bool RequestComplete { get; private set; }

    /// <summary>True when the response is a local reply (Envoy's "local complete").</summary>
    public bool IsLocalReply { get; private set; }

    /// <summary>
    /// The proxy answered 400 itself (Envoy's onLocalReply(BadRequest), whatever
    /// <c>local_reply_config</c> maps it to): an HTTP/1.x connection closes after this response
    /// unless <c>stream_error_on_invalid_http_message</c> keeps it open.
    /// </summary>
    public bool BadRequestLocalReply { get; private set; }

    /// <summary>The matched route (resolved on first use, cached until <see cref="ClearRouteCache"/>); null for no match.</summary>
    public RouteEntry? Route
    {
        get
        {
            if (!_routeResolved)
            {
                _route = _config.Routes.Match(this);
                _routeResolved = true;
            }

            return _route;
        }
    }

    /// <summary>
    /// The request's authority as a string. Keep-alive clients send the same Host on every
    /// request, so the last one is remembered and compared byte by byte instead of decoded again.
    /// </summary>
    public string AuthorityString()
    {
        var authority = RequestHeaders.Authority;
        if (_authorityString is null || !authority.SequenceEqual(_authorityBytes.AsSpan(0, _authorityLength)))
        {
            if (_authorityBytes.Length < authority.Length)
            {
                _authorityBytes = new byte[Math.Max(authority.Length, 64)];
            }

            authority.CopyTo(_authorityBytes);
            _authorityLength = authority.Length;
            _authorityString = Encoding.Latin1.GetString(authority);
        }

        return _authorityString;
    }

    private byte[] _authorityBytes = [];
    private int _authorityLength;
    private string? _authorityString;

    /// <summary>Makes the next <see cref="Route"/> read match again (after a filter changed headers).</summary>
    public void ClearRouteCache() => _routeResolved = false;

    /// <summary>Puts back a route resolved before (an internal redirect that failed after matching again).</summary>
    public void RestoreRoute(RouteEntry? route)
    {
        _route = route;
        _routeResolved = true;
    }

    /// <summary>The per-route config of filter <paramref name="filterName"/> (most specific wins), or null.</summary>
    public T? PerFilterConfig<T>(string filterName)
        where T : class => Route?.PerFilterConfig(filterName) as T;

    /// <summary>
    /// The most request body bytes the filters may buffer (StopIterationAndBuffer) before the
    /// request is answered 413; starts as the connection's buffer limit each request.
    /// </summary>
    public long DecoderBufferLimit => _decoderBufferLimit;

    /// <summary>
    /// Changes <see cref="DecoderBufferLimit"/> for this request, up or down (Envoy's
    /// setDecoderBufferLimit: the buffer filter sets its max_request_bytes).
    /// </summary>
    public void SetDecoderBufferLimit(long limit) => _decoderBufferLimit = limit;

    /// <summary>
    /// Work of the terminal filter that outlives its decode callbacks (the upstream response
    /// arriving while the request body is still decoded); the codec awaits it before the next request.
    /// </summary>
    public void SetPendingResponse(Task response) => SetPendingResponse(AwaitAsPending(response));

    private static async ValueTask<bool> AwaitAsPending(Task response)
    {
        await response.ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// The terminal filter's response work as a <see cref="ValueTask{TResult}"/> (awaited once, by
    /// the codec's stream loop). The router hands its upstream exchange over this way instead of
    /// awaiting it inside the filter chain, so the decode path's state machines do not stay
    /// suspended (and allocated) for the whole upstream round trip.
    /// </summary>
    public void SetPendingResponse(ValueTask<bool> response)
    {
        _pendingAttempt = response;
        _hasPendingAttempt = true;
    }

    /// <summary>
    /// Takes the pending response work set with <see cref="SetPendingResponse(ValueTask{bool})"/>
    /// so the caller awaits it in its own state machine; <see cref="WaitForResponseAsync"/> then
    /// finds nothing of it left. Exceptions it ends with are for <see cref="IsExpectedResponseEnd"/>.
    /// </summary>
    public bool TryTakePendingResponse(out ValueTask<bool> response)
    {
        response = _pendingAttempt;
        var had = _hasPendingAttempt;
        _pendingAttempt = default;
        _hasPendingAttempt = false;
        return had;
    }

    /// <summary>An exception the response work may end with that the stream has already accounted for.</summary>
    public bool IsExpectedResponseEnd(Exception ex) => ex is OperationCanceledException || IsReset;

    private int _originalIpRejectStatus;
    private ITimer? _periodicLog;

    /// <summary>An access log entry of <paramref name="type"/> now (Envoy's AccessLogType names), besides the one at the end.</summary>
    private void LogAccess(string type) =>
        AccessLog.AccessLogInstance.LogAll(_config.AccessLogs, Formatter.FormatterContext.For(this) with { AccessLogType = type });

    /// <summary>A CONNECT or upgrade tunnel is up (the 2xx / 101 went downstream): the DownstreamTunnelSuccessfullyEstablished entry, when asked for.</summary>
    public void OnTunnelEstablished()
    {
        if (_config.FlushAccessLogOnTunnelEstablished)
        {
            LogAccess("DownstreamTunnelSuccessfullyEstablished");
        }
    }

    /// <summary>
    /// An original IP detection extension rejects the request (custom_header's
    /// <c>reject_with_status</c>): <see cref="DecodeHeadersAsync"/> answers with
    /// <paramref name="status"/> and an empty body instead of running the filters.
    /// </summary>
    public void RejectOnOriginalIpDetection(int status) => _originalIpRejectStatus = status;

    /// <summary>Starts a new exchange: resets the per-request state and creates the filter instances.</summary>
    public void Begin(HttpRequestHead headers, long startTimestamp)
    {
        RequestHeaders = headers;
        Active = true;
        EndedCleanly = false;
        Info.Reset(Network.EventClock.UtcAt(startTimestamp), startTimestamp);
        _routeResolved = false;
        _route = null;
        _decoderBufferLimit = _config.BufferLimitBytes;
        _reset = 0;
        _stopDecoding = false;
        _encodingLocalReply = false;
        _pendingAttempt = default;
        _hasPendingAttempt = false;
        _injector = null;
        _originalIpRejectStatus = 0;
        _responseAwaited = false;
        _decodeHeldAt = _decodeBufferedAt = _encodeHeldAt = _encodeBufferedAt = -1;
        _encodeHead = null;
        Trace = null;
        ResponseTrailers = null;
        ResponseStarted = ResponseComplete = RequestComplete = IsLocalReply = BadRequestLocalReply = false;
        _responseOwner = ResponseOwnerNone;
        _timeoutReply = null;
        _idleTimeout = null;
        if (!_resetSource.TryReset())
        {
            _resetSource.Dispose();
            _resetSource = new CancellationTokenSource();
        }

        var factories = _config.FilterFactories;
        if (_filters.Length < factories.Length)
        {
            _filters = new HttpFilter[factories.Length];
        }

        _count = factories.Length;
        var recycled = _recycled;
        for (var i = 0; i < factories.Length; i++)
        {
            if (recycled is not null && i < recycled.Length && recycled[i] is { } previous)
            {
                recycled[i] = null;
                _filters[i] = factories[i].CreateFilter(previous);
            }
            else
            {
                _filters[i] = factories[i].CreateFilter();
            }
        }
    }

    /// <summary>Filters of the previous stream that agreed to serve the next one (see <see cref="HttpFilter.TryRecycle"/>).</summary>
    private HttpFilter?[]? _recycled;

    /// <summary>Set when <see cref="WaitForResponseAsync"/> has seen all of the stream's response work end.</summary>
    private bool _responseAwaited;

    /// <summary>
    /// Set by <see cref="End"/>: the exchange ended with its whole response sent, no reset and no
    /// response work still running, so the object may serve another stream (HTTP/2 pools them).
    /// </summary>
    public bool EndedCleanly { get; private set; }

    /// <summary>Ends the exchange: destroys the filters and releases buffers. Called once per <see cref="Begin"/>.</summary>
    public void End()
    {
        Active = false;
        if (_periodicLog is { } periodic)
        {
            _periodicLog = null;
            periodic.Dispose();
        }

        _idleTimer?.Clear();
        _requestTimer?.Clear();
        _durationTimer?.Clear();
        Info.EndTimestamp = Network.EventClock.Timestamp;

        // Only a stream that ended cleanly, with nothing of it still running, lends its filters to
        // the next one (a reset or an abandoned wait may leave work that still uses them).
        var recycle = _responseAwaited && ResponseComplete && !IsReset;
        EndedCleanly = recycle;
        for (var i = 0; i < _count; i++)
        {
            try
            {
                _filters[i].OnDestroy();
                if (recycle && _filters[i].TryRecycle())
                {
                    _recycled ??= new HttpFilter?[_count];
                    if (i < _recycled.Length)
                    {
                        _recycled[i] = _filters[i];
                    }
                }
            }
            catch (Exception ex)
            {
                _config.Log.Error($"http filter '{_config.FilterFactories[i].Name}' failed in OnDestroy: {ex.Message}");
            }

            _filters[i] = null!;
        }

        _decodeData.Clear();
        _decodeBuffered.Clear();
        _encodeData.Clear();
        _encodeBuffered.Clear();
        Trace?.Finish(this);
        _config.Stats.OnStreamEnd(this);
        _config.RecentLocalReplies?.OnStreamEnd(this, _config.StatPrefix);
        if (_config.AccessLogs.Length > 0)
        {
            if (ResponseComplete)
            {
                Info.LastDownstreamTxByteSent = Info.EndTimestamp;
            }

            AccessLog.AccessLogInstance.LogAll(_config.AccessLogs, Formatter.FormatterContext.For(this));
        }
    }

    /// <summary>Waits for the terminal filter's outstanding response work, if any.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WaitForResponseAsync()
    {
        if (TryTakePendingResponse(out var attempt))
        {
            try
            {
                await attempt.ConfigureAwait(false);
            }
            catch (Exception ex) when (IsExpectedResponseEnd(ex))
            {
                // The reset already decided the outcome.
            }
        }

        if (Volatile.Read(ref _timeoutReply) is { } timeoutReply)
        {
            await timeoutReply.Task.ConfigureAwait(false);
        }

        if (_injector is { } injector)
        {
            // The filter's own sends (a paced body) end the response after the upstream's did.
            try
            {
                await injector.Completion.ConfigureAwait(false);
            }
            catch (Exception ex) when (IsExpectedResponseEnd(ex))
            {
                // The reset already decided the outcome.
            }
        }

        if (!ResponseComplete && !IsReset)
        {
            // Every filter continued or stopped, yet nobody answered: a filter bug, not the client's.
            _config.Log.Error("http filter chain ended without a response; answering 500");
            await SendLocalReplyAsync(500, "filter chain ended without a response", "filter_chain_without_response").ConfigureAwait(false);
        }

        _responseAwaited = true;
    }

    // ------------------------------------------------------------------ decode (request) path

    public ValueTask DecodeHeadersAsync(bool endStream)
    {
        RequestComplete = endStream;
        ArmTimers(endStream);
        if (endStream)
        {
            Info.LastDownstreamRxByteReceived = Network.EventClock.Timestamp;
        }

        if (_originalIpRejectStatus != 0)
        {
            // An original IP detection extension refused the request: no filter sees it (Envoy's
            // decodeHeaders answers before it creates the filter chain).
            _config.Stats.DownstreamRqRejectedViaIpDetection.Inc();
            _encodingLocalReply = true;
            return SendLocalReplyAsync(_originalIpRejectStatus, [], ResponseCodeDetails.OriginalIpDetectionFailed);
        }

        if (_config.TransformsPath && RequestHeaders.MethodKind != HttpMethodKind.Connect && RequestHeaders.PathBytes is [(byte)'/', ..])
        {
            // Envoy's ConnectionManagerUtility::maybeNormalizePath, before the route is chosen.
            var outcome = PathNormalizer.Apply(RequestHeaders.Path, _config, out var normalized);
            if (outcome == PathNormalizer.Outcome.Redirect && IsGrpcRequest())
            {
                outcome = PathNormalizer.Outcome.Reject;
            }

            switch (outcome)
            {
                case PathNormalizer.Outcome.Changed:
                    RequestHeaders.SetPath(normalized);
                    break;
                case PathNormalizer.Outcome.Reject:
                    _config.Stats.DownstreamRqFailedPathNormalization.Inc();
                    return SendLocalReplyAsync(400, [], ResponseCodeDetails.PathNormalizationFailed);
                case PathNormalizer.Outcome.Redirect:
                    _config.Stats.DownstreamRqRedirectedWithNormalizedPath.Inc();
                    return SendLocalReplyAsync(307, [], ResponseCodeDetails.PathNormalizationFailed, ResponseFlags.None, [("location", normalized)]);
            }
        }

        if (_config.Tracing is { } decision)
        {
            // Envoy's mutateTracingRequestHeader: after the request id exists and the route is known,
            // because a route's tracing block replaces the connection manager's percentages.
            Info.TraceReason = decision.Apply(RequestHeaders.Headers, Route?.Tracing);
        }

        if (Route is { HasDisabledFilters: true } route)
        {
            SkipDisabledFilters(route);
        }

        if (_config.TracingConfig is { } tracing)
        {
            // Envoy's traceRequest: after the header mutations and the route, before the filters.
            Trace = Tracing.ActiveTrace.Start(this, tracing);
        }

        if (_config.FlushAccessLogOnNewRequest)
        {
            LogAccess("DownstreamStart");
        }

        if (_config.AccessLogFlushInterval > TimeSpan.Zero)
        {
            var interval = _config.AccessLogFlushInterval;
            _periodicLog ??= _config.Time.CreateTimer(static state => ((HttpStream)state!).LogAccess("DownstreamPeriodic"), this, interval, interval);
        }

        return DecodeHeadersFromAsync(0, endStream);
    }

    /// <summary>Envoy's Grpc::Common::hasGrpcContentType: application/grpc or application/grpc+…</summary>
    public bool IsGrpcRequest()
    {
        if (!RequestHeaders.Headers.TryGetValue(KnownHeader.ContentType, out ReadOnlySpan<byte> type) || !type.StartsWith("application/grpc"u8))
        {
            return false;
        }

        return type.Length == 16 || type[16] == (byte)'+';
    }

    /// <summary>
    /// Envoy's recreateStream for an internal redirect, on the decode side: the filters before
    /// <paramref name="caller"/> (the router) are replaced by fresh instances, as Envoy builds a new
    /// filter chain for the redirected request, and decode it again: its headers (already rewritten
    /// and routed), then the buffered <paramref name="body"/> when there is one. They also encode its
    /// response. False when one of them answered the request (a local reply) or it was reset.
    /// </summary>
    /// <remarks>
    /// Filters here are async (a delay is awaited in the callback), so all of them have run when
    /// this returns; a filter that holds the headers for the body gets the whole body at once.
    /// </remarks>
    public async ValueTask<bool> RecreateDecodeBeforeAsync(HttpFilter caller, bool headersEndStream, BodyBuffer? body)
    {
        var end = Array.IndexOf(_filters, caller, 0, _count);
        var factories = _config.FilterFactories;
        var route = Route;
        for (var i = 0; i < end; i++)
        {
            _filters[i].OnDestroy();
            _filters[i] = route is { HasDisabledFilters: true } && route.PerFilterConfig(factories[i].Name) is DisabledFilterConfig
                ? PassThroughFilter.Instance
                : factories[i].CreateFilter();
        }

        for (var i = 0; i < end; i++)
        {
            await _filters[i].DecodeHeadersAsync(this, RequestHeaders, headersEndStream).ConfigureAwait(false);
            if (_stopDecoding || IsReset || ResponseStarted)
            {
                return false;
            }
        }

        if (!headersEndStream)
        {
            body ??= new BodyBuffer();
            for (var i = 0; i < end; i++)
            {
                await _filters[i].DecodeDataAsync(this, body, endStream: true).ConfigureAwait(false);
                if (_stopDecoding || IsReset || ResponseStarted)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>A route's <c>FilterConfig{disabled: true}</c> turns that filter into a pass-through for the stream.</summary>
    private void SkipDisabledFilters(RouteEntry route)
    {
        var factories = _config.FilterFactories;
        for (var i = 0; i < _count; i++)
        {
            if (!factories[i].IsTerminal && route.PerFilterConfig(factories[i].Name) is DisabledFilterConfig)
            {
                _filters[i].OnDestroy();
                _filters[i] = PassThroughFilter.Instance;
            }
        }
    }

    /// <summary>Stands in for a filter disabled on the route: every callback continues.</summary>
    private sealed class PassThroughFilter : HttpFilter
    {
        public static readonly PassThroughFilter Instance = new();
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask DecodeDataAsync(ReadOnlySequence<byte> data, bool endStream)
    {
        if (_stopDecoding)
        {
            return;
        }

        RequestComplete = endStream;
        RefreshIdleTimer();
        if (endStream)
        {
            _requestTimer?.Clear();
        }

        Info.BytesReceived += data.Length;
        if (endStream)
        {
            Info.LastDownstreamRxByteReceived = Network.EventClock.Timestamp;
        }

        _decodeData.SetBorrowed(data);
        await DecodeDataFromAsync(0, endStream).ConfigureAwait(false);
        _decodeData.Clear();
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask DecodeTrailersAsync(HttpHeaderMap trailers)
    {
        if (_stopDecoding)
        {
            return;
        }

        RequestComplete = true;
        _requestTimer?.Clear();
        Info.LastDownstreamRxByteReceived = Network.EventClock.Timestamp;
        var limit = _decodeHeldAt >= 0 ? _decodeHeldAt + 1 : _count;
        for (var i = 0; i < limit; i++)
        {
            var status = await _filters[i].DecodeTrailersAsync(this, trailers).ConfigureAwait(false);
            if (_stopDecoding)
            {
                return;
            }

            // Trailers end the stream: a filter holding headers or data lets them go now.
            if (i == _decodeHeldAt || i == _decodeBufferedAt)
            {
                if (!await ReleaseDecodeAsync(i, endStream: false).ConfigureAwait(false))
                {
                    return;
                }

                limit = _decodeHeldAt >= 0 ? _decodeHeldAt + 1 : _count;
            }

            if (status == FilterTrailersStatus.StopIteration)
            {
                return;
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask DecodeHeadersFromAsync(int start, bool endStream)
    {
        for (var i = start; i < _count; i++)
        {
            var status = await _filters[i].DecodeHeadersAsync(this, RequestHeaders, endStream).ConfigureAwait(false);
            if (_stopDecoding)
            {
                return;
            }

            if (status == FilterHeadersStatus.StopIteration && !endStream)
            {
                _decodeHeldAt = i;
                return;
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask DecodeDataFromAsync(int start, bool endStream)
    {
        var limit = _decodeHeldAt >= 0 ? _decodeHeldAt + 1 : _count;
        for (var i = start; i < limit; i++)
        {
            var status = await _filters[i].DecodeDataAsync(this, _decodeData, endStream).ConfigureAwait(false);
            if (_stopDecoding)
            {
                return;
            }

            switch (status)
            {
                case FilterDataStatus.Continue:
                    if (i == _decodeHeldAt || i == _decodeBufferedAt)
                    {
                        // Headers (if held) go on first, then everything buffered here plus this chunk.
                        if (i == _decodeBufferedAt)
                        {
                            _decodeBuffered.AppendFrom(_decodeData);
                            (_decodeData, _decodeBuffered) = (_decodeBuffered, _decodeData);
                            _decodeBufferedAt = -1;
                        }

                        if (i == _decodeHeldAt)
                        {
                            // Envoy buffers data that continues past a filter that held the headers,
                            // so the buffer limit applies to it too (a held request's last chunk).
                            if (_decodeData.Length > _decoderBufferLimit)
                            {
                                _config.Stats.DownstreamRqTooLarge.Inc();
                                await SendLocalReplyAsync(413, "Payload Too Large", ResponseCodeDetails.RequestPayloadTooLarge).ConfigureAwait(false);
                                return;
                            }

                            _decodeHeldAt = -1;
                            var headersEnd = endStream && _decodeData.IsEmpty;
                            await DecodeHeadersFromAsync(i + 1, headersEnd).ConfigureAwait(false);
                            if (_stopDecoding || headersEnd)
                            {
                                return;
                            }
                        }

                        limit = _decodeHeldAt >= 0 ? _decodeHeldAt + 1 : _count;
                    }

                    continue;
                case FilterDataStatus.StopIterationAndBuffer:
                    _decodeBufferedAt = i;
                    _decodeBuffered.AppendFrom(_decodeData);
                    if (_decodeBuffered.Length > _decoderBufferLimit)
                    {
                        // Envoy: a request buffered past the limit is answered 413.
                        _config.Stats.DownstreamRqTooLarge.Inc();
                        await SendLocalReplyAsync(413, "Payload Too Large", ResponseCodeDetails.RequestPayloadTooLarge).ConfigureAwait(false);
                    }

                    return;
                default:
                    _decodeData.Clear();
                    return;
            }
        }
    }

    /// <summary>A filter at <paramref name="i"/> let go of held headers and/or buffered data; false when the stream stopped.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ReleaseDecodeAsync(int i, bool endStream)
    {
        if (i == _decodeHeldAt)
        {
            _decodeHeldAt = -1;
            await DecodeHeadersFromAsync(i + 1, endStream: false).ConfigureAwait(false);
            if (_stopDecoding)
            {
                return false;
            }
        }

        if (i == _decodeBufferedAt)
        {
            _decodeBufferedAt = -1;
            (_decodeData, _decodeBuffered) = (_decodeBuffered, _decodeData);
            _decodeBuffered.Clear();
            await DecodeDataFromAsync(i + 1, endStream).ConfigureAwait(false);
            _decodeData.Clear();
            if (_stopDecoding)
            {
                return false;
            }
        }

        return true;
    }

    // ------------------------------------------------------------------ encode (response) path

    /// <summary>Sends what the codec has buffered (the router calls this before it waits for more upstream bytes).</summary>
    public ValueTask FlushAsync() =>
        IsReset ? ValueTask.CompletedTask : _injector is not null ? GatedFlushAsync() : _encoder.FlushAsync();

    /// <summary>An informational head (100-continue, 103) goes straight to the codec; filters are not involved.</summary>
    public ValueTask Encode1xxHeadersAsync(HttpResponseHead head) =>
        ResponseStarted || IsReset ? ValueTask.CompletedTask : _encoder.Encode1xxHeadersAsync(head);

    public ValueTask EncodeHeadersAsync(HttpResponseHead head, bool endStream)
    {
        if (!ClaimResponse(ResponseOwnerStream))
        {
            // A timeout answered already; the late upstream response is dropped.
            return ValueTask.CompletedTask;
        }

        RefreshIdleTimer();
        _encodeHead = head;
        return EncodeHeadersFromAsync(0, endStream);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask EncodeDataAsync(ReadOnlySequence<byte> data, bool endStream)
    {
        if (IsReset || _responseOwner == ResponseOwnerTimeout)
        {
            return;
        }

        if (_injector is not null)
        {
            await GatedEncodeDataAsync(data, endStream).ConfigureAwait(false);
            return;
        }

        RefreshIdleTimer();
        _encodeData.SetBorrowed(data);
        await EncodeDataFromAsync(0, endStream).ConfigureAwait(false);
        _encodeData.Clear();
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask EncodeTrailersAsync(HttpHeaderMap trailers)
    {
        ResponseTrailers = trailers;
        if (IsReset || _responseOwner == ResponseOwnerTimeout)
        {
            return;
        }

        if (_injector is not null)
        {
            await _encodeGate!.WaitAsync().ConfigureAwait(false);
            try
            {
                await EncodeTrailersFromAsync(0, trailers).ConfigureAwait(false);
            }
            finally
            {
                _encodeGate.Release();
            }

            return;
        }

        await EncodeTrailersFromAsync(0, trailers).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask EncodeTrailersFromAsync(int start, HttpHeaderMap trailers)
    {
        var limit = _encodeHeldAt >= 0 ? _encodeHeldAt + 1 : _count;
        for (var p = start; p < limit; p++)
        {
            var status = await _filters[_count - 1 - p].EncodeTrailersAsync(this, trailers).ConfigureAwait(false);
            if (IsReset)
            {
                return;
            }

            if (p == _encodeHeldAt || p == _encodeBufferedAt)
            {
                await ReleaseEncodeAsync(p).ConfigureAwait(false);
                limit = _encodeHeldAt >= 0 ? _encodeHeldAt + 1 : _count;
            }

            if (status == FilterTrailersStatus.StopIteration)
            {
                return;
            }
        }

        await _encoder.EncodeTrailersAsync(trailers).ConfigureAwait(false);
        ResponseComplete = true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask EncodeHeadersFromAsync(int start, bool endStream)
    {
        for (var p = start; p < _count; p++)
        {
            var status = await _filters[_count - 1 - p].EncodeHeadersAsync(this, _encodeHead!, endStream).ConfigureAwait(false);
            if (IsReset)
            {
                return;
            }

            if (status == FilterHeadersStatus.StopIteration && !endStream)
            {
                _encodeHeldAt = p;
                return;
            }
        }

        await WriteResponseHeadersAsync(_encodeHead!, endStream).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask EncodeDataFromAsync(int start, bool endStream)
    {
        var limit = _encodeHeldAt >= 0 ? _encodeHeldAt + 1 : _count;
        for (var p = start; p < limit; p++)
        {
            var status = await _filters[_count - 1 - p].EncodeDataAsync(this, _encodeData, endStream).ConfigureAwait(false);
            if (IsReset)
            {
                return;
            }

            switch (status)
            {
                case FilterDataStatus.Continue:
                    if (p == _encodeHeldAt || p == _encodeBufferedAt)
                    {
                        if (p == _encodeBufferedAt)
                        {
                            _encodeBuffered.AppendFrom(_encodeData);
                            (_encodeData, _encodeBuffered) = (_encodeBuffered, _encodeData);
                            _encodeBufferedAt = -1;
                        }

                        if (p == _encodeHeldAt)
                        {
                            _encodeHeldAt = -1;
                            var headersEnd = endStream && _encodeData.IsEmpty;
                            await EncodeHeadersFromAsync(p + 1, headersEnd).ConfigureAwait(false);
                            if (IsReset || headersEnd)
                            {
                                return;
                            }
                        }

                        limit = _encodeHeldAt >= 0 ? _encodeHeldAt + 1 : _count;
                    }

                    continue;
                case FilterDataStatus.StopIterationAndBuffer:
                    _encodeBufferedAt = p;
                    _encodeBuffered.AppendFrom(_encodeData);
                    if (_encodeBuffered.Length > _config.BufferLimitBytes)
                    {
                        // Envoy: a response buffered past the limit is a 500 if nothing was sent yet, else a reset.
                        await SendLocalReplyAsync(500, "Internal Server Error", ResponseCodeDetails.ResponsePayloadTooLarge).ConfigureAwait(false);
                    }

                    return;
                default:
                    _encodeData.Clear();
                    return;
            }
        }

        await WriteResponseDataAsync(_encodeData.Data, endStream).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReleaseEncodeAsync(int p)
    {
        if (p == _encodeHeldAt)
        {
            _encodeHeldAt = -1;
            await EncodeHeadersFromAsync(p + 1, endStream: false).ConfigureAwait(false);
        }

        if (p == _encodeBufferedAt && !IsReset)
        {
            _encodeBufferedAt = -1;
            (_encodeData, _encodeBuffered) = (_encodeBuffered, _encodeData);
            _encodeBuffered.Clear();
            await EncodeDataFromAsync(p + 1, endStream: false).ConfigureAwait(false);
            _encodeData.Clear();
        }
    }

    // ------------------------------------------------------------------ data injected by a filter

    /// <summary>
    /// Lets <paramref name="injector"/> (a filter of this stream) send response data and trailers
    /// on later by itself, from its own task (Envoy's injectEncodedDataToFilterChain and
    /// continueEncoding): the fault filter's response rate limit takes each body chunk, returns
    /// <see cref="FilterDataStatus.StopIterationNoBuffer"/> and paces it out with
    /// <see cref="InjectEncodedDataAsync"/>. Call it before the response body reaches the filter.
    /// From then on the upstream side's data, trailers and flushes and the filter's injections take
    /// turns on the codec; after each upstream chunk the stream waits for
    /// <see cref="IEncodeInjector.WaitForRoomAsync"/> (the filter's buffer limit pushes back on the
    /// upstream, as Envoy's watermarks), and the response ends when
    /// <see cref="IEncodeInjector.Completion"/> does.
    /// </summary>
    public void EnableEncodeInjection(IEncodeInjector injector)
    {
        _encodeGate ??= new SemaphoreSlim(1, 1);
        _injectData ??= new BodyBuffer();
        _injector = injector;
    }

    /// <summary>
    /// Sends <paramref name="data"/> through the filters after <paramref name="from"/> (in encode
    /// order) to the codec, and flushes it. <paramref name="data"/> must stay valid until this returns.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask InjectEncodedDataAsync(HttpFilter from, ReadOnlySequence<byte> data, bool endStream)
    {
        var start = EncodePositionAfter(from);
        await _encodeGate!.WaitAsync().ConfigureAwait(false);
        try
        {
            if (IsReset || _responseOwner == ResponseOwnerTimeout)
            {
                return;
            }

            RefreshIdleTimer();

            // The upstream side's chunk buffer is idle while this holds the gate; the injected
            // bytes get their own, and the walk may swap it with the buffered-data one as usual.
            var upstreamSide = _encodeData;
            _encodeData = _injectData!;
            _encodeData.SetBorrowed(data);
            try
            {
                await EncodeDataFromAsync(start, endStream).ConfigureAwait(false);
            }
            finally
            {
                _encodeData.Clear();
                _injectData = _encodeData;
                _encodeData = upstreamSide;
            }

            if (!IsReset)
            {
                await _encoder.FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _encodeGate.Release();
        }
    }

    /// <summary>Sends trailers a filter held (it returned <see cref="FilterTrailersStatus.StopIteration"/>) through the filters after it.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask InjectEncodedTrailersAsync(HttpFilter from, HttpHeaderMap trailers)
    {
        var start = EncodePositionAfter(from);
        await _encodeGate!.WaitAsync().ConfigureAwait(false);
        try
        {
            if (IsReset || _responseOwner == ResponseOwnerTimeout)
            {
                return;
            }

            await EncodeTrailersFromAsync(start, trailers).ConfigureAwait(false);
            if (!IsReset)
            {
                await _encoder.FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _encodeGate.Release();
        }
    }

    private int EncodePositionAfter(HttpFilter filter)
    {
        for (var i = 0; i < _count; i++)
        {
            if (ReferenceEquals(_filters[i], filter))
            {
                return _count - i;
            }
        }

        throw new InvalidOperationException("the filter is not one of this stream's");
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask GatedEncodeDataAsync(ReadOnlySequence<byte> data, bool endStream)
    {
        await _encodeGate!.WaitAsync().ConfigureAwait(false);
        try
        {
            if (IsReset || _responseOwner == ResponseOwnerTimeout)
            {
                return;
            }

            RefreshIdleTimer();
            _encodeData.SetBorrowed(data);
            await EncodeDataFromAsync(0, endStream).ConfigureAwait(false);
            _encodeData.Clear();
        }
        finally
        {
            _encodeGate.Release();
        }

        // Outside the gate: the injector needs it to make the room this waits for.
        if (_injector is { } injector && !IsReset)
        {
            await injector.WaitForRoomAsync().ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask GatedFlushAsync()
    {
        await _encodeGate!.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!IsReset)
            {
                await _encoder.FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _encodeGate.Release();
        }
    }

    private ValueTask WriteResponseHeadersAsync(HttpResponseHead head, bool endStream)
    {
        if (!IsLocalReply && Info.ResponseCodeDetails is null)
        {
            // Before the mutations: Proxy-Status quotes the details.
            Info.ResponseCodeDetails = ResponseCodeDetails.ViaUpstream;
        }

        ConnectionManagerUtility.MutateResponseHeaders(this, head);
        Trace?.OnResponseHeaders(head.Headers);
        ResponseStarted = true;
        Info.ResponseCode = head.StatusCode;
        Info.FirstDownstreamTxByteSent = Network.EventClock.Timestamp;

        if (endStream)
        {
            ResponseComplete = true;
        }

        return _encoder.EncodeHeadersAsync(head, endStream);
    }

    private ValueTask WriteResponseDataAsync(ReadOnlySequence<byte> data, bool endStream)
    {
        Info.BytesSent += data.Length;
        if (endStream)
        {
            ResponseComplete = true;
        }

        return _encoder.EncodeDataAsync(data, endStream);
    }

    // ------------------------------------------------------------------ stream timeouts

    private const int ResponseOwnerNone = 0;
    private const int ResponseOwnerStream = 1;
    private const int ResponseOwnerTimeout = 2;

    private int _responseOwner;
    private Legate.Network.DeadlineTimer? _idleTimer;
    private Legate.Network.DeadlineTimer? _requestTimer;
    private Legate.Network.DeadlineTimer? _durationTimer;

    private enum StreamTimeout
    {
        Idle,
        Request,
        MaxDuration,
    }

    /// <summary>
    /// The first party to answer owns the response: the stream's own flow (filters, router) or a
    /// stream timeout firing on a timer thread. The loser's response is dropped.
    /// </summary>
    private bool ClaimResponse(int owner)
    {
        var current = Interlocked.CompareExchange(ref _responseOwner, owner, ResponseOwnerNone);
        return current == ResponseOwnerNone || current == owner;
    }

    private void ArmTimers(bool requestComplete)
    {
        if (_config.StreamIdleTimeout > TimeSpan.Zero)
        {
            _idleTimer ??= new Legate.Network.DeadlineTimer(_config.Time, static s => ((HttpStream)s).OnTimeout(StreamTimeout.Idle), this);
            _idleTimer.Set(_config.StreamIdleTimeout);
        }

        if (_config.RequestTimeout > TimeSpan.Zero && !requestComplete)
        {
            _requestTimer ??= new Legate.Network.DeadlineTimer(_config.Time, static s => ((HttpStream)s).OnTimeout(StreamTimeout.Request), this);
            _requestTimer.Set(_config.RequestTimeout);
        }

        if (_config.MaxStreamDuration > TimeSpan.Zero)
        {
            _durationTimer ??= new Legate.Network.DeadlineTimer(_config.Time, static s => ((HttpStream)s).OnTimeout(StreamTimeout.MaxDuration), this);
            _durationTimer.Set(_config.MaxStreamDuration);
        }
    }

    /// <summary>The stream object will not be used again: stop its timers (HTTP/2 streams, closing HTTP/1.1 connections).</summary>
    public void Release()
    {
        _ = _idleTimer?.DisposeAsync();
        _ = _requestTimer?.DisposeAsync();
        _ = _durationTimer?.DisposeAsync();
        _idleTimer = _requestTimer = _durationTimer = null;
    }

    private void RefreshIdleTimer()
    {
        if (_idleTimer is { } timer && (_idleTimeout is not { } routeTimeout || routeTimeout > TimeSpan.Zero))
        {
            timer.Set(_idleTimeout ?? _config.StreamIdleTimeout);
        }
    }

    private TimeSpan? _idleTimeout;

    /// <summary>
    /// A route's <c>idle_timeout</c> replaces the connection manager's stream_idle_timeout for this
    /// stream (Envoy: zero disables it; a stream without an idle timer gets one).
    /// </summary>
    public void OverrideIdleTimeout(TimeSpan timeout)
    {
        _idleTimeout = timeout;
        if (timeout <= TimeSpan.Zero)
        {
            _idleTimer?.Clear();
            return;
        }

        _idleTimer ??= new Legate.Network.DeadlineTimer(_config.Time, static s => ((HttpStream)s).OnTimeout(StreamTimeout.Idle), this);
        _idleTimer.Set(timeout);
    }

    /// <summary>
    /// stream_idle_timeout (no activity), request_timeout (request not received in time) or
    /// max_stream_duration (the stream lived too long): Envoy's local reply if nothing was
    /// answered yet — 408 "stream timeout" / "request timeout"; "downstream duration timeout"
    /// is 408 while the request is still arriving and 504 after — else a reset.
    /// </summary>
    private void OnTimeout(StreamTimeout kind)
    {
        if (!Active || ResponseComplete || IsReset)
        {
            return;
        }

        var stats = _config.Stats;
        (kind switch
        {
            StreamTimeout.Idle => stats.DownstreamRqIdleTimeout,
            StreamTimeout.Request => stats.DownstreamRqTimeout,
            _ => stats.DownstreamRqMaxDurationReached,
        }).Inc();
        var flags = kind switch
        {
            StreamTimeout.Idle => ResponseFlags.StreamIdleTimeout,
            StreamTimeout.MaxDuration => ResponseFlags.DurationTimeout,
            _ => ResponseFlags.None,
        };
        var details = kind switch
        {
            StreamTimeout.Idle => ResponseCodeDetails.StreamIdleTimeout,
            StreamTimeout.Request => ResponseCodeDetails.RequestOverallTimeout,
            _ => ResponseCodeDetails.MaxDurationTimeout,
        };
        if (!ClaimResponse(ResponseOwnerTimeout))
        {
            ResetStream(flags, details);
            return;
        }

        // Published before anything wakes the stream's own flow, which waits for it (WaitForResponseAsync).
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _timeoutReply, done);
        var (status, body, grpcStatus) = kind switch
        {
            StreamTimeout.Idle => (408, "stream timeout", (int?)null),
            StreamTimeout.Request => (408, "request timeout", null),
            _ => (RequestComplete ? 504 : 408, "downstream duration timeout", 4), // DEADLINE_EXCEEDED
        };
        _ = TimeoutReplyAsync(status, body, details, flags, grpcStatus, done);
    }

    private TaskCompletionSource? _timeoutReply;

    /// <summary>
    /// A route's max stream duration (or the gRPC timeout it honours) for this stream, counted from
    /// the stream's start (Envoy's refreshDurationTimeout); zero or less fires at once. It replaces
    /// the connection manager's max_stream_duration for this stream.
    /// </summary>
    public void ArmMaxDuration(TimeSpan duration)
    {
        var left = duration - Stopwatch.GetElapsedTime(Info.StartTimestamp);
        _durationTimer ??= new Legate.Network.DeadlineTimer(_config.Time, static s => ((HttpStream)s).OnTimeout(StreamTimeout.MaxDuration), this);
        _durationTimer.Set(left > TimeSpan.Zero ? left : TimeSpan.FromTicks(1));
    }

    private async Task TimeoutReplyAsync(int status, string body, string details, ResponseFlags flags, int? grpcStatus, TaskCompletionSource done)
    {
        try
        {
            // Whatever waits upstream gives up; the reply goes out, then the connection ends
            // (the request is incomplete or the stream stalled).
            _stopDecoding = true;
            CancelWaiters();
            await SendLocalReplyCoreAsync(status, Encoding.UTF8.GetBytes(body), details, flags, null, grpcStatus).ConfigureAwait(false);
            _encoder.EndAfterLocalReply();
        }
        catch (Exception ex)
        {
            _config.Log.Debug($"stream timeout reply failed: {ex.Message}");
            ResetStream(flags, details);
        }
        finally
        {
            done.TrySetResult();
        }
    }

    private void CancelWaiters()
    {
        try
        {
            _resetSource.Cancel();
        }
        catch (AggregateException ex)
        {
            _config.Log.Error($"stream reset callback failed: {ex.InnerException?.Message}");
        }
    }

    // ------------------------------------------------------------------ local replies and resets

    /// <summary>
    /// What a cluster's upstream PROXY protocol header announces for this stream: the downstream
    /// connection's addresses and kept TLVs, or nothing (the header then names the upstream
    /// connection itself) under <c>add_proxy_protocol_connection_state: false</c>.
    /// </summary>
    public (System.Net.IPEndPoint? Source, System.Net.IPEndPoint? Destination, IReadOnlyList<(byte Type, byte[] Value)>? Tlvs) ProxyProtocolState =>
        _config.AddProxyProtocolConnectionState ? (Info.DownstreamRemoteAddress, Info.DownstreamLocalAddress, Info.ProxyProtocolTlvs) : default;

    /// <summary>
    /// Answers the request from the proxy itself (Envoy's sendLocalReply): stops request
    /// processing, records <paramref name="details"/> and <paramref name="flags"/>, and sends
    /// <paramref name="status"/> with a <c>text/plain</c> body through the encode filters. After the
    /// response has started only a reset is possible, and that is what happens.
    /// </summary>
    public ValueTask SendLocalReplyAsync(int status, string body, string details, ResponseFlags flags = ResponseFlags.None) =>
        SendLocalReplyAsync(status, body.Length == 0 ? [] : Encoding.UTF8.GetBytes(body), details, flags);

    /// <summary>Local reply with a byte body (direct responses).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public ValueTask SendLocalReplyAsync(int status, byte[] body, string details, ResponseFlags flags = ResponseFlags.None) =>
        ClaimResponse(ResponseOwnerStream) ? SendLocalReplyCoreAsync(status, body, details, flags, null, null) : ValueTask.CompletedTask;

    /// <summary>
    /// Local reply with extra response headers (Envoy's modify_headers callback: a redirect's
    /// <c>location</c>); they are set before <c>local_reply_config</c> may add its own.
    /// </summary>
    public ValueTask SendLocalReplyAsync(int status, byte[] body, string details, ResponseFlags flags, (string Name, string Value)[] headers) =>
        ClaimResponse(ResponseOwnerStream) ? SendLocalReplyCoreAsync(status, body, details, flags, headers, null) : ValueTask.CompletedTask;

    /// <summary>
    /// Local reply that names the gRPC status a gRPC request gets (Envoy's grpc_status argument:
    /// the fault filter's grpc abort); a non-gRPC request gets the plain HTTP reply.
    /// </summary>
    public ValueTask SendLocalReplyAsync(int status, string body, string details, ResponseFlags flags, int grpcStatus) =>
        ClaimResponse(ResponseOwnerStream)
            ? SendLocalReplyCoreAsync(status, body.Length == 0 ? [] : Encoding.UTF8.GetBytes(body), details, flags, null, grpcStatus)
            : ValueTask.CompletedTask;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendLocalReplyCoreAsync(int status, byte[] body, string details, ResponseFlags flags, (string Name, string Value)[]? headers, int? grpcStatus)
    {
        _stopDecoding = true;
        Info.SetResponseFlag(flags);
        Info.ResponseCodeDetails = details;
        BadRequestLocalReply |= status == 400;
        if (ResponseStarted || IsReset)
        {
            ResetStream();
            return;
        }

        var mapped = _config.LocalReplies.Map(this, status, body);
        var head = _localReplyHead;
        head.Reset();
        head.StatusCode = mapped.Status;
        var bodyBytes = mapped.Body;
        if (bodyBytes.Length > 0)
        {
            head.Headers.Add(KnownHeader.ContentType, mapped.ContentType ?? s_textPlain);
        }

        Span<byte> length = stackalloc byte[20];
        head.Headers.Add(KnownHeader.ContentLength, length[..FormatLength(bodyBytes.Length, length)]);
        if (headers is not null)
        {
            foreach (var (name, value) in headers)
            {
                head.Headers.Set(name, value);
            }
        }

        if (mapped.Headers is { } extra)
        {
            foreach (var (name, value, append) in extra)
            {
                if (append)
                {
                    head.Headers.Add(name, value);
                }
                else
                {
                    head.Headers.Set(name, value);
                }
            }
        }
        IsLocalReply = true;
        var sendBody = bodyBytes.Length > 0 && RequestHeaders.MethodKind != HttpMethodKind.Head;
        if (IsGrpcRequest() && RequestHeaders.MethodKind != HttpMethodKind.Head)
        {
            // Envoy answers a gRPC request's local reply as a trailers-only response: HTTP 200,
            // grpc-status from the HTTP code (or the caller's), the body as grpc-message.
            GrpcLocalReply.Apply(head, mapped.Status, grpcStatus, bodyBytes);
            sendBody = false;
        }

        if (_encodingLocalReply || _encodeHead is not null)
        {
            // A local reply from inside the encode path (or a second one) goes straight to the codec.
            await WriteResponseHeadersAsync(head, !sendBody).ConfigureAwait(false);
            if (sendBody)
            {
                await WriteResponseDataAsync(new ReadOnlySequence<byte>(bodyBytes), true).ConfigureAwait(false);
            }

            return;
        }

        _encodingLocalReply = true;
        _encodeHead = head;
        await EncodeHeadersFromAsync(0, !sendBody).ConfigureAwait(false);
        if (sendBody && !IsReset)
        {
            _encodeData.Replace(bodyBytes);
            await EncodeDataFromAsync(0, true).ConfigureAwait(false);
            _encodeData.Clear();
        }
    }

    /// <summary>
    /// Aborts the stream: cancels <see cref="ResetToken"/> (the router cancels its upstream
    /// request), tells the filters, and resets the codec stream (HTTP/1.1: closes the connection).
    /// </summary>
    public void ResetStream(ResponseFlags flags = ResponseFlags.None, string? details = null)
    {
        if (IsReset)
        {
            // The first reset decides the outcome (a timeout's abort is not also a DC).
            return;
        }

        // As Envoy's sendLocalReply/resetAllStreams: the reset's reason replaces "via_upstream".
        Info.SetResponseFlag(flags);
        if (details is not null)
        {
            Info.ResponseCodeDetails = details;
        }

        if (Interlocked.Exchange(ref _reset, 1) != 0)
        {
            return;
        }

        _stopDecoding = true;
        for (var i = 0; i < _count; i++)
        {
            try
            {
                _filters[i]?.OnStreamReset();
            }
            catch (Exception ex)
            {
                _config.Log.Error($"http filter '{_config.FilterFactories[i].Name}' failed in OnStreamReset: {ex.Message}");
            }
        }

        try
        {
            _resetSource.Cancel();
        }
        catch (AggregateException ex)
        {
            _config.Log.Error($"stream reset callback failed: {ex.InnerException?.Message}");
        }

        _encoder.ResetStream();
    }

    /// <summary>The downstream went away before the response completed (Envoy: DC).</summary>
    public void OnDownstreamDisconnect()
    {
        if (!ResponseComplete)
        {
            ResetStream(ResponseFlags.DownstreamConnectionTermination, ResponseCodeDetails.DownstreamRemoteDisconnect);
        }
    }

    private static int FormatLength(long value, Span<byte> destination)
    {
        System.Buffers.Text.Utf8Formatter.TryFormat(value, destination, out var written);
        return written;
    }

    /// <summary>For messages: the request line.</summary>
    public override string ToString() => RequestHeaders is null ? "(no request)" : $"{RequestHeaders.Method} {Encoding.Latin1.GetString(RequestHeaders.PathBytes)}";
}
