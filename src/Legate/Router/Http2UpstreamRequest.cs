using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Upstream;
using Legate.Upstream.ConnectionPool;

namespace Legate.Router;

/// <summary>
/// One router exchange over upstream HTTP/2 (cleartext, prior knowledge): the request goes out as
/// a stream of the host's <see cref="Http2ConnectionPool"/>, its body streamed from the decode
/// path while the response streams back through the encode path (both directions at once, as
/// gRPC streaming needs), then the response trailers. Failures map as on the HTTP/1.1 path:
/// connect failure UF, route timeout UT, upstream reset UR, connection lost UC, downstream reset
/// cancels the upstream stream (RST_STREAM CANCEL).
/// </summary>
/// <remarks>
/// <para>The route timeout starts when the request is complete (Envoy's rule), so a client-streaming
/// call is not cut off while it still sends.</para>
/// <para>Known limits of the client (<see cref="SocketsHttpHandler"/>): request trailers cannot be
/// sent (they are dropped, logged at debug); a response with END_STREAM on its HEADERS is
/// recognised because its body reads empty at once, and is forwarded as a headers-only response
/// (gRPC's trailers-only form).</para>
/// </remarks>
internal sealed class Http2UpstreamRequest
{
    private const string ResetBodyPrefix = "upstream connect error or disconnect/reset before headers. reset reason: ";
    private const int ReadBufferSize = 16 * 1024;

    private static readonly UriCreationOptions s_rawTarget = new() { DangerousDisablePathAndQueryCanonicalization = true };

    private readonly RouterFilterFactory _factory;
    private readonly HttpStream _stream;
    private readonly Cluster _cluster;
    private readonly Host _host;
    private readonly RouterFilter _owner;

    // The route's priority: whose circuit-breaker thresholds the router's max_requests slot came from.
    private readonly Envoy.Config.Core.V3.RoutingPriority _priority;
    private readonly CancellationTokenSource _cancel = new();
    private CancellationTokenRegistration _resetRegistration;
    private ITimer? _timer;
    private Retry.PerTryIdleTimer? _idleTimer;
    private TimeSpan _timeout;
    private Http2RequestBodyContent? _body;
    private long _start;

    // For the router's upstream_log: what this attempt received.
    private HttpResponseHead? _logResponse;
    private HttpHeaderMap? _logTrailers;
    private int _timedOut;
    private int _done;
    private bool _requestComplete;
    private bool _bodyClosed;

    public Http2UpstreamRequest(RouterFilterFactory factory, HttpStream stream, Cluster cluster, Host host, RouterFilter owner, TimeSpan timeout, Envoy.Config.Core.V3.RoutingPriority priority)
    {
        _priority = priority;
        _factory = factory;
        _stream = stream;
        _cluster = cluster;
        _host = host;
        _owner = owner;
        _timeout = timeout;
    }

    /// <summary>True when the attempt ended to be retried (the router starts the next one).</summary>
    public bool Retried { get; private set; }

    /// <summary>
    /// True when this exchange goes upstream as HTTP/2: the cluster asks for it, or for the
    /// downstream protocol and that is HTTP/2. Upgrades (and CONNECT, <c>OPTIONS *</c>) stay on
    /// HTTP/1.1: extended CONNECT upstream is not implemented.
    /// </summary>
    public static bool Applies(Cluster cluster, HttpStream stream, HttpRequestHead headers)
    {
        var http2 = cluster.Info.Protocol switch
        {
            UpstreamProtocol.Http2 => true,
            UpstreamProtocol.UseDownstream => stream.Info.Protocol == "HTTP/2",
            _ => false,
        };

        return http2 && !headers.IsUpgrade && headers.MethodKind != HttpMethodKind.Connect && headers.TargetForm != RequestTargetForm.Asterisk;
    }

    /// <summary>
    /// Starts the attempt (the host is chosen): the head, then the body received so far
    /// (<paramref name="replay"/>, for a retry), ending it when <paramref name="requestComplete"/>.
    /// Returns the exchange running to the end of the response (or to a retry decision).
    /// </summary>
    public async ValueTask<Task> StartAsync(HttpRequestHead head, bool endStream, ReadOnlySequence<byte> replay, bool requestComplete)
    {
        var stream = _stream;
        var stats = _cluster.Info.Stats;
        _start = Stopwatch.GetTimestamp();
        stats.UpstreamRqTotal.Inc();
        stats.UpstreamRqActive.Inc();
        _host.RequestStarted();
        _resetRegistration = stream.ResetToken.UnsafeRegister(static state => ((Http2UpstreamRequest)state!).CancelUpstream(), this);
        if (_timeout > TimeSpan.Zero)
        {
            _timer = _factory.Time.CreateTimer(static state => ((Http2UpstreamRequest)state!).OnTimeout(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        var cluster = _cluster;
        // A pool per routing priority (slot 5 for HIGH), as Envoy: its breakers are that priority's.
        var pool = _priority == Envoy.Config.Core.V3.RoutingPriority.High
            ? _host.ConnectionPool(5, static (h, c) => new Http2ConnectionPool(h, c, Envoy.Config.Core.V3.RoutingPriority.High), cluster)
            : _host.ConnectionPool(1, static (h, c) => new Http2ConnectionPool(h, c), cluster);
        if (!pool.Admitted)
        {
            stats.UpstreamCxPoolOverflow.Inc();
            await FailOverflowAsync().ConfigureAwait(false);
            return Task.CompletedTask;
        }

        HttpRequestMessage request;
        try
        {
            request = BuildRequest(pool, head, endStream);
        }
        catch (Exception ex) when (ex is UriFormatException or FormatException or ArgumentException or InvalidOperationException)
        {
            stream.Config.Log.Debug($"upstream h2 request for {stream} cannot be represented: {ex.Message}");
            await FailAsync(ResponseFlags.UpstreamProtocolError, UpstreamResetReasons.ProtocolError, 503).ConfigureAwait(false);
            return Task.CompletedTask;
        }

        stream.Info.UpstreamRemoteAddress = _host.Address;
        stream.Info.UpstreamProtocol = "HTTP/2";
        _requestComplete = endStream;
        if (endStream)
        {
            ArmTimeout();
        }

        var run = RunAsync(pool, request);
        if (!endStream && (!replay.IsEmpty || requestComplete))
        {
            var data = new BodyBuffer();
            data.SetBorrowed(replay);
            await DecodeDataAsync(data, requestComplete).ConfigureAwait(false);
        }

        return run;
    }

    /// <summary>A request body chunk: into the upstream stream, waiting while the upstream does not take it.</summary>
    public async ValueTask DecodeDataAsync(BodyBuffer data, bool endStream)
    {
        var body = _body;
        if (body is null || _requestComplete)
        {
            return;
        }

        if (endStream)
        {
            _requestComplete = true;
            ArmTimeout();
        }

        if (_bodyClosed || Volatile.Read(ref _done) != 0)
        {
            return;
        }

        var writer = body.Writer;
        if (!data.IsEmpty)
        {
            foreach (var segment in data.Data)
            {
                writer.Write(segment.Span);
            }
        }

        var result = await writer.FlushAsync().ConfigureAwait(false);
        if (result.IsCompleted || result.IsCanceled)
        {
            // The upstream stream no longer takes a body (response complete, reset): drop the rest.
            _bodyClosed = true;
            return;
        }

        if (endStream)
        {
            await writer.CompleteAsync().ConfigureAwait(false);
            _bodyClosed = true;
        }
    }

    /// <summary>Request trailers end the body; the HTTP/2 client cannot send trailers, so they are dropped.</summary>
    public async ValueTask DecodeTrailersAsync(HttpHeaderMap trailers)
    {
        if (_body is null || _requestComplete)
        {
            return;
        }

        if (trailers.Count > 0)
        {
            _stream.Config.Log.Debug($"upstream h2 request for {_stream}: {trailers.Count} request trailer(s) dropped (the HTTP/2 client cannot send trailers)");
        }

        await DecodeDataAsync(new BodyBuffer(), endStream: true).ConfigureAwait(false);
    }

    /// <summary>The stream is destroyed: an exchange still running is cancelled (RST_STREAM upstream).</summary>
    public void OnDestroy()
    {
        if (Volatile.Read(ref _done) == 0)
        {
            _cancel.Cancel();
            Finish();
        }
    }

    private HttpRequestMessage BuildRequest(Http2ConnectionPool pool, HttpRequestHead head, bool endStream)
    {
        var request = new HttpRequestMessage(HttpMethod.Parse(head.Method), new Uri(pool.BaseUri + head.Path, in s_rawTarget))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        HttpContent? content = null;
        if (!endStream)
        {
            _body = new Http2RequestBodyContent(_cluster.Info.BufferLimitBytes);
            content = _body;
        }

        var headers = request.Headers;
        foreach (var field in head.Headers)
        {
            switch (field.Known)
            {
                case KnownHeader.Connection or KnownHeader.KeepAlive or KnownHeader.ProxyConnection
                    or KnownHeader.TransferEncoding or KnownHeader.Upgrade or KnownHeader.Expect:
                    // Connection-specific (malformed on HTTP/2); Expect: the proxy already answered it.
                    continue;
                case KnownHeader.Host:
                    // :authority (the client writes the Host header as :authority on HTTP/2).
                    headers.TryAddWithoutValidation("Host", field.Value);
                    continue;
                case KnownHeader.Te when !Ascii.EqualsIgnoreCase(field.ValueBytes, "trailers"u8):
                    continue;
            }

            var name = field.Name;
            var value = field.Value;
            if (!headers.TryAddWithoutValidation(name, value))
            {
                // A content header (content-type, content-length, …) belongs to the content.
                content ??= new ByteArrayContent([]);
                content.Headers.TryAddWithoutValidation(name, value);
            }
        }

        request.Content = content;
        if (_cluster.Info.PoolsPerServerName && _cluster.Info.AutoServerName(head) is { } serverName)
        {
            request.Options.Set(Http2ConnectionPool.ServerNameOption, serverName);
        }

        return request;
    }

    private async Task RunAsync(Http2ConnectionPool pool, HttpRequestMessage request)
    {
        var stream = _stream;
        HttpResponseMessage? response = null;
        try
        {
            stream.Info.FirstUpstreamTxByteSent = Stopwatch.GetTimestamp();
            _owner.LogUpstreamPoolReady();
            response = await pool.SendAsync(request, _cancel.Token).ConfigureAwait(false);
            _idleTimer?.Touch();
            await RelayResponseAsync(response).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            await OnFailureAsync(ex).ConfigureAwait(false);
        }
        finally
        {
            response?.Dispose();
            request.Dispose();
        }
    }

    private async ValueTask RelayResponseAsync(HttpResponseMessage response)
    {
        var stream = _stream;
        var stats = _cluster.Info.Stats;
        stream.Info.FirstUpstreamRxByteReceived = Stopwatch.GetTimestamp();
        var head = new HttpResponseHead { StatusCode = (int)response.StatusCode };
        _logResponse = head;
        try
        {
            CopyHeaders(response.Headers.NonValidated, head.Headers);
            CopyHeaders(response.Content.Headers.NonValidated, head.Headers);
        }
        catch (ArgumentException ex)
        {
            // A value the proxy's header map does not take (characters above U+00FF).
            stream.Config.Log.Debug($"upstream {_host}: invalid response header: {ex.Message}");
            stats.UpstreamCxProtocolError.Inc();
            await FailAsync(ResponseFlags.UpstreamProtocolError, UpstreamResetReasons.ProtocolError, 502).ConfigureAwait(false);
            return;
        }

        ConnectionManagerUtility.StripHopByHop(head.Headers, keepUpgrade: false);
        if (_owner.ShouldRetryHeaders(head))
        {
            // The retried response is dropped: its stream is cancelled (RST_STREAM).
            Retried = true;
            CancelUpstream();
            Finish();
            return;
        }

        if (stream.Route is { IncludeAttemptCountInResponse: true })
        {
            head.Headers.Set("x-envoy-attempt-count", stream.Info.AttemptCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var code = head.StatusCode;
        if (code is >= 100 and < 600 && _factory.ChargesResponseCodeStats(stream))
        {
            stats.UpstreamRqXx[(code / 100) - 1].Inc();
        }

        _host.ReportHttpCode(code);
        _host.CheckImmediateHealthCheckFail(head.Headers);

        if (!_factory.SuppressEnvoyHeaders)
        {
            head.Headers.Set("x-envoy-upstream-service-time", ((long)Stopwatch.GetElapsedTime(_start).TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var body = await response.Content.ReadAsStreamAsync(_cancel.Token).ConfigureAwait(false);
        var buffer = ArrayPool<byte>.Shared.Rent(ReadBufferSize);
        try
        {
            var read = body.ReadAsync(buffer, _cancel.Token);
            var received = -1;
            if (read.IsCompletedSuccessfully)
            {
                received = read.Result;
                if (received == 0)
                {
                    // END_STREAM on the HEADERS (gRPC trailers-only), or trailers right after them.
                    var only = _logTrailers = TrailersOf(response);
                    await stream.EncodeHeadersAsync(head, endStream: only is null).ConfigureAwait(false);
                    if (only is not null && !stream.IsReset)
                    {
                        await stream.EncodeTrailersAsync(only).ConfigureAwait(false);
                    }

                    Complete();
                    return;
                }
            }

            await stream.EncodeHeadersAsync(head, endStream: false).ConfigureAwait(false);
            if (received < 0)
            {
                received = await FlushThenReadAsync(read).ConfigureAwait(false);
            }

            while (received > 0)
            {
                _idleTimer?.Touch();
                if (stream.IsReset)
                {
                    await OnFailureAsync(new OperationCanceledException()).ConfigureAwait(false);
                    return;
                }

                await stream.EncodeDataAsync(new ReadOnlySequence<byte>(buffer, 0, received), endStream: false).ConfigureAwait(false);
                read = body.ReadAsync(buffer, _cancel.Token);
                received = read.IsCompletedSuccessfully ? read.Result : await FlushThenReadAsync(read).ConfigureAwait(false);
            }

            var trailers = _logTrailers = TrailersOf(response);
            if (trailers is not null)
            {
                await stream.EncodeTrailersAsync(trailers).ConfigureAwait(false);
            }
            else
            {
                await stream.EncodeDataAsync(default, endStream: true).ConfigureAwait(false);
            }

            Complete();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Sends what waits downstream before blocking on the upstream (as the HTTP/1.1 path does).</summary>
    private async ValueTask<int> FlushThenReadAsync(ValueTask<int> read)
    {
        if (!read.IsCompleted)
        {
            await _stream.FlushAsync().ConfigureAwait(false);
        }

        return await read.ConfigureAwait(false);
    }

    private static HttpHeaderMap? TrailersOf(HttpResponseMessage response)
    {
        var trailing = response.TrailingHeaders.NonValidated;
        if (trailing.Count == 0)
        {
            return null;
        }

        var map = new HttpHeaderMap();
        CopyHeaders(trailing, map);
        return map.Count > 0 ? map : null;
    }

    private static void CopyHeaders(HttpHeadersNonValidated source, HttpHeaderMap target)
    {
        foreach (var (name, values) in source)
        {
            if (name.Length == 0 || name[0] == ':')
            {
                continue;
            }

            var known = KnownHeaders.Lookup(name.AsSpan());
            foreach (var value in values)
            {
                if (known != KnownHeader.None)
                {
                    target.Add(known, value);
                }
                else
                {
                    // HTTP/2 field names arrive lower-case; the client keeps them as received.
                    target.Add(name, value);
                }
            }
        }
    }

    /// <summary>The exchange failed: timeout, downstream reset, or the upstream (connect, reset, lost connection).</summary>
    private async ValueTask OnFailureAsync(Exception ex)
    {
        var stream = _stream;
        var stats = _cluster.Info.Stats;
        if (Volatile.Read(ref _done) != 0)
        {
            return;
        }

        if (_idleTimer is { Fired: true } && !stream.IsReset)
        {
            _host.ReportResult(Legate.Upstream.OutlierResult.LocalOriginTimeout);
            _owner.NoteAttemptFailure(ResponseFlags.UpstreamRequestTimeout, UpstreamResetReasons.ConnectionTermination);
            Finish();
            Retried = await _owner.OnAttemptTimeoutAsync(idle: true).ConfigureAwait(false);
            return;
        }

        if (Volatile.Read(ref _timedOut) != 0 && !stream.IsReset)
        {
            _host.ReportResult(Legate.Upstream.OutlierResult.LocalOriginTimeout);
            _owner.NoteAttemptFailure(ResponseFlags.UpstreamRequestTimeout, UpstreamResetReasons.ConnectionTermination);
            Finish();
            Retried = await _owner.OnAttemptTimeoutAsync().ConfigureAwait(false);
            return;
        }

        if (stream.IsReset)
        {
            // The downstream went away (or a filter reset the stream): the upstream stream was cancelled.
            stats.UpstreamRqTxReset.Inc();
            Finish();
            return;
        }

        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is UpstreamOverflowException)
            {
                // max_connections of the pool's priority (the connect callback refused a connection): not retried, as Envoy.
                await FailOverflowAsync().ConfigureAwait(false);
                return;
            }
        }

        var (flag, reason, status, failure) = Classify(ex, stream, stats);
        if (flag is ResponseFlags.UpstreamConnectionFailure or ResponseFlags.UpstreamConnectionTermination)
        {
            _host.ReportResult(Legate.Upstream.OutlierResult.LocalOriginConnectFailed);
        }

        stream.Config.Log.Debug($"upstream {_host} (h2): {reason}: {ex.Message}");
        _owner.NoteAttemptFailure(flag, reason);
        if (stream.ResponseStarted)
        {
            await FailAsync(flag, reason, status).ConfigureAwait(false);
            return;
        }

        Finish();
        Retried = await _owner.FailOrRetryAsync(failure, flag, reason, status).ConfigureAwait(false);
    }

    private static (ResponseFlags Flag, string Reason, int Status, Retry.AttemptFailure Failure) Classify(Exception ex, HttpStream stream, ClusterStats stats)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is UpstreamConnectException connect)
            {
                stream.Info.UpstreamTransportFailureReason = connect.TransportFailureReason;
                return (ResponseFlags.UpstreamConnectionFailure, connect.ResetReason, 503, Retry.AttemptFailure.ConnectFailure);
            }
        }

        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is HttpProtocolException protocol)
            {
                // RST_STREAM (or GOAWAY) with an error code from the upstream; 0x7 is REFUSED_STREAM.
                stats.UpstreamRqRxReset.Inc();
                return (ResponseFlags.UpstreamRemoteReset, UpstreamResetReasons.RemoteReset, 503, protocol.ErrorCode == 0x7 ? Retry.AttemptFailure.RefusedStream : Retry.AttemptFailure.Reset);
            }

            if (e is TimeoutException)
            {
                return (ResponseFlags.UpstreamConnectionFailure, UpstreamResetReasons.ConnectionTimeout, 503, Retry.AttemptFailure.ConnectFailure);
            }
        }

        var error = ex switch
        {
            HttpRequestException request => request.HttpRequestError,
            HttpIOException io => io.HttpRequestError,
            _ => HttpRequestError.Unknown,
        };

        switch (error)
        {
            case HttpRequestError.ConnectionError:
                return (ResponseFlags.UpstreamConnectionFailure, UpstreamResetReasons.ConnectionFailure, 503, Retry.AttemptFailure.ConnectFailure);
            case HttpRequestError.InvalidResponse or HttpRequestError.HttpProtocolError or HttpRequestError.ConfigurationLimitExceeded:
                stats.UpstreamCxProtocolError.Inc();
                return (ResponseFlags.UpstreamProtocolError, UpstreamResetReasons.ProtocolError, 502, Retry.AttemptFailure.Reset);
            default:
                // ResponseEnded, a broken connection, GOAWAY without an error.
                stats.UpstreamRqRxReset.Inc();
                return (ResponseFlags.UpstreamConnectionTermination, UpstreamResetReasons.ConnectionTermination, 503, Retry.AttemptFailure.Reset);
        }
    }

    /// <summary>Before the response started: Envoy's local reply; after: a reset of the downstream stream.</summary>
    private async ValueTask FailAsync(ResponseFlags flag, string resetReason, int status)
    {
        Finish();
        var stream = _stream;
        if (stream.IsReset)
        {
            return;
        }

        if (stream.ResponseStarted)
        {
            stream.ResetStream(flag, ResponseCodeDetails.UpstreamResetAfterResponseStarted(resetReason));
            return;
        }

        var transportFailure = stream.Info.UpstreamTransportFailureReason;
        await stream.SendLocalReplyAsync(status, ResponseCodeDetails.UpstreamResetBody(resetReason, transportFailure), ResponseCodeDetails.UpstreamResetBeforeResponseStarted(resetReason, transportFailure), flag).ConfigureAwait(false);
    }

    /// <summary>A circuit breaker of the pool is open: 503 UO with x-envoy-overloaded, as the HTTP/1.1 pools answer.</summary>
    private async ValueTask FailOverflowAsync()
    {
        Finish();
        var stream = _stream;
        if (stream.IsReset || stream.ResponseStarted)
        {
            return;
        }

        await stream.SendLocalReplyAsync(503, Encoding.UTF8.GetBytes(ResetBodyPrefix + UpstreamResetReasons.BodyText(UpstreamResetReasons.Overflow)),
            ResponseCodeDetails.UpstreamResetBeforeResponseStarted(UpstreamResetReasons.Overflow), ResponseFlags.UpstreamOverflow,
            _factory.SuppressEnvoyHeaders ? [] : [("x-envoy-overloaded", "true")]).ConfigureAwait(false);
    }

    private void Complete()
    {
        if (_factory.DynamicStats)
        {
            var stats = _cluster.Info.Stats;
            stats.UpstreamRqCompleted.Inc();
            stats.UpstreamRqTime.Record((long)Stopwatch.GetElapsedTime(_start).TotalMilliseconds);
        }

        Finish();
    }

    /// <summary>The request is complete: the attempt's timers start (Envoy's setupPerTryTimeout).</summary>
    private void ArmTimeout()
    {
        if (_idleTimer is null && Volatile.Read(ref _done) == 0)
        {
            _idleTimer = _owner.StartIdleTimer(static state => ((Http2UpstreamRequest)state).CancelUpstream(), this);
        }

        if (_timer is { } timer && Volatile.Read(ref _done) == 0)
        {
            try
            {
                timer.Change(_timeout, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // The exchange ended meanwhile.
            }
        }
    }

    private void OnTimeout()
    {
        Volatile.Write(ref _timedOut, 1);
        CancelUpstream();
    }

    private void CancelUpstream()
    {
        try
        {
            _cancel.Cancel();
        }
        catch (AggregateException ex)
        {
            _stream.Config.Log.Debug($"upstream h2 cancellation callback failed: {ex.InnerException?.Message}");
        }
    }

    /// <summary>Ends the exchange once: timer, reset registration, host and cluster counters; a blocked body write wakes.</summary>
    private void Finish()
    {
        if (Interlocked.Exchange(ref _done, 1) != 0)
        {
            return;
        }

        _timer?.Dispose();
        _idleTimer?.Stop();
        _resetRegistration.Dispose();
        _owner.LogUpstreamAttempt(_logResponse, _logTrailers);
        // The breaker first: whoever sees no active request also sees its slot back.
        _cluster.Info.CircuitBreakers.For(_priority).Requests.Release();
        _cluster.Info.Stats.UpstreamRqActive.Dec();
        _host.RequestFinished();
        _body?.Writer.CancelPendingFlush();
    }
}
