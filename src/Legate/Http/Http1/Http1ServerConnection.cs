using System.Buffers;
using System.Runtime.CompilerServices;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using Legate.Network;
using Microsoft.AspNetCore.Connections;

namespace Legate.Http.Http1;

/// <summary>
/// The downstream HTTP/1.1 codec of one connection (Envoy's ServerConnection + the connection
/// manager's per-connection loop): reads requests with <see cref="Http1RequestParser"/>, runs each
/// through an <see cref="HttpStream"/>, and writes the response it encodes. Requests are handled
/// one at a time; pipelined requests wait in the input pipe and are answered in order.
/// </summary>
internal sealed class Http1ServerConnection : ResponseEncoder
{
    private static readonly byte[] s_continue = "HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray();
    private static readonly byte[] s_close = "close"u8.ToArray();
    private static readonly byte[] s_keepAlive = "keep-alive"u8.ToArray();
    private static readonly byte[] s_chunked = "chunked"u8.ToArray();
    private static readonly byte[] s_upgrade = "upgrade"u8.ToArray();

    private readonly ConnectionContext _connection;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly HttpConnectionManagerConfig _config;
    private readonly Http1RequestParser _parser;
    private readonly Http1BodyReader _bodyReader;
    private readonly HttpRequestHead _head = new();
    private readonly HttpStream _stream;
    private readonly ConnectionDrain _drain;
    private readonly DeadlineTimer _timer;
    private readonly TimeProvider _time;
    private readonly Legate.Tls.TlsSessionInfo? _tls;

    private int _timedOut;
    private TimeoutKind _armedKind;
    private bool _closeAfterResponse;
    private bool _chunkedResponse;
    private bool _responseHasBody;
    private bool _aborted;
    private bool _closeGracefully;
    private volatile bool _earlyReply;
    private int _requests;
    private volatile bool _maxDurationReached;
    private DeadlineTimer? _durationTimer;

    /// <summary>The listener drains, or this connection reached max_connection_duration: no new requests.</summary>
    private bool Draining => _drain.IsDraining || _maxDurationReached || HealthCheckFailed;

    private bool HealthCheckFailed => HealthCheck?.Failed == true;

    /// <summary>The server's health check state when the listener drains on it (drain_type DEFAULT).</summary>
    public Network.HealthCheckDrain? HealthCheck { get; init; }

    /// <summary>The connection's id (<c>%CONNECTION_ID%</c>), set by the listener.</summary>
    public ulong ConnectionId { get; init; }

    /// <summary>The connection's dynamic metadata from listener filters (each stream's <c>ConnectionDynamicMetadata</c>).</summary>
    public Envoy.Config.Core.V3.Metadata? DynamicMetadata { get; init; }

    /// <summary>The PROXY v2 TLVs the listener's proxy_protocol filter kept for the upstream, or null.</summary>
    public IReadOnlyList<(byte Type, byte[] Value)>? ProxyProtocolTlvs { get; init; }

    public Http1ServerConnection(ConnectionContext connection, HttpConnectionManagerConfig config, ConnectionDrain drain, TimeProvider time)
    {
        _connection = connection;
        _input = connection.Transport.Input;
        _output = connection.Transport.Output;
        _config = config;
        _drain = drain;
        _time = time;
        _parser = new Http1RequestParser(config.ParserOptions);
        _bodyReader = new Http1BodyReader(config.ParserOptions, isRequest: true);
        _stream = new HttpStream(config, this);
        _timer = new DeadlineTimer(time, static state => ((Http1ServerConnection)state).OnTimer(), this);
        _time = time;
        _tls = connection.Features.Get<Legate.Tls.TlsSessionInfo>();
    }

    private enum TimeoutKind
    {
        None,
        Idle,
        RequestHeaders,
    }

    /// <summary>Serves requests until the peer closes, an error, or a drain.</summary>
    public async Task RunAsync()
    {
        var stats = _config.Stats;
        stats.DownstreamCxTotal.Inc();
        stats.DownstreamCxActive.Inc();
        stats.DownstreamCxHttp1Total.Inc();
        stats.DownstreamCxHttp1Active.Inc();
        using var drainRegistration = _drain.Register(static state => ((Http1ServerConnection)state!).OnDrain(), this);
        if (_config.MaxConnectionDuration > TimeSpan.Zero)
        {
            _durationTimer = new DeadlineTimer(_time, static state => ((Http1ServerConnection)state).OnMaxConnectionDuration(), this);
            _durationTimer.Set(_config.MaxConnectionDuration);
        }

        // Kestrel's socket transport ends the connection when the peer closes (even a half-close),
        // which Envoy treats as a downstream disconnect of the stream in progress (DC).
        using var closedRegistration = _connection.ConnectionClosed.UnsafeRegister(static state => ((Http1ServerConnection)state!).OnConnectionClosed(), this);
        try
        {
            await ServeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException or OperationCanceledException or ObjectDisposedException)
        {
            _config.Log.Debug($"connection closed: {ex.Message}");
        }
        finally
        {
            _stream.Release();
            await _timer.DisposeAsync().ConfigureAwait(false);
            if (_durationTimer is not null)
            {
                await _durationTimer.DisposeAsync().ConfigureAwait(false);
            }

            if (!_aborted && _config.DelayedCloseTimeout > TimeSpan.Zero && HasUnreadInput())
            {
                await DelayCloseAsync().ConfigureAwait(false);
            }

            stats.DownstreamCxActive.Dec();
            stats.DownstreamCxHttp1Active.Dec();
            await _input.CompleteAsync().ConfigureAwait(false);
            await _output.CompleteAsync().ConfigureAwait(false);
            if (_closeGracefully)
            {
                _ = AbortIfStillOpenAsync();
            }
        }
    }

    /// <summary>
    /// After a graceful reset the transport sends what was written, then closes; a peer that does
    /// not read would hold that forever, so the connection is aborted after delayed_close_timeout
    /// (default 1 s; 0 aborts at once) if it has not closed by then.
    /// </summary>
    private async Task AbortIfStillOpenAsync()
    {
        try
        {
            if (_config.DelayedCloseTimeout > TimeSpan.Zero)
            {
                await Task.Delay(_config.DelayedCloseTimeout, _time, _connection.ConnectionClosed).ConfigureAwait(false);
            }

            _connection.Abort(new ConnectionAbortedException("delayed close timeout"));
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            // Closed in time.
        }
    }

    /// <summary>
    /// Reads and answers requests until the connection must close. One state machine for the
    /// connection's life rather than one per request: a per-request method cost a rented box, its
    /// return and a resume of the caller for every request.
    /// </summary>
    private async ValueTask ServeAsync()
    {
        while (!_aborted)
        {
            // The request head, read here rather than in a method of its own: a separate state
            // machine for the wait between requests would be rented for every request.
            var armed = BeginHead();
            DataPathContext.Enter();

            HeadStep step;
            try
            {
                do
                {
                    var result = await new ActionAwaitable<ReadResult>(_input.ReadAsync());
                    step = OnHeadRead(result, ref armed);
                }
                while (step == HeadStep.ReadMore);
            }
            finally
            {
                Disarm();
            }

            switch (step)
            {
                case HeadStep.HeadersTimeout:
                    await SendEarlyReplyAsync(408, "request header timeout"u8.ToArray(), ResponseCodeDetails.RequestHeadersTimeout, ResponseFlags.None).ConfigureAwait(false);
                    return;
                case HeadStep.CodecError:
                    await SendCodecErrorAsync(_headError).ConfigureAwait(false);
                    return;
                case HeadStep.Close:
                    return;
            }

            var stream = StartStream();
            var hasBody = _head.Framing is not Http1BodyFraming.None && !(_head.Framing == Http1BodyFraming.ContentLength && _head.ContentLength == 0);
            if (_head.ExpectContinue && !_config.Proxy100Continue)
            {
                // Envoy answers 100-continue itself (proxy_100_continue is off by default) and drops Expect.
                _head.Headers.Remove(KnownHeader.Expect);
                if (hasBody)
                {
                    await _output.WriteAsync(s_continue).ConfigureAwait(false);
                }
            }

            try
            {
                if (!hasBody)
                {
                    await stream.DecodeHeadersAsync(endStream: true).ConfigureAwait(false);
                }
                else
                {
                    await stream.DecodeHeadersAsync(endStream: false).ConfigureAwait(false);
                    if (!await ReadBodyAsync(stream).ConfigureAwait(false))
                    {
                        _closeAfterResponse = true;
                        if (stream.ResponseComplete && !stream.IsReset)
                        {
                            // The request will never complete (answered early, or its body was invalid):
                            // whatever still works on it (the router's upstream request) stops now.
                            stream.ResetStream();
                        }
                    }
                }

                if (stream.TryTakePendingResponse(out var response))
                {
                    // Awaited here, in the connection's state machine, rather than in another one.
                    try
                    {
                        await new ActionAwaitable<bool>(response);
                    }
                    catch (Exception ex) when (stream.IsExpectedResponseEnd(ex))
                    {
                        // The reset already decided the outcome.
                    }
                }

                await stream.WaitForResponseAsync().ConfigureAwait(false);
            }
            finally
            {
                if (stream.IsReset)
                {
                    _closeAfterResponse = true;
                }

                stream.End();
            }

            if (_closeAfterResponse || _aborted)
            {
                return;
            }
        }
    }

    /// <summary>Begins the stream of a parsed request head: counters, stream info, connection-manager header mutations.</summary>
    private HttpStream StartStream()
    {
        _requests++;
        var stats = _config.Stats;
        stats.DownstreamRqTotal.Inc();
        stats.DownstreamRqHttp1Total.Inc();
        stats.DownstreamRqActive.Inc();
        var stream = _stream;
        stream.Begin(_head, EventClock.Timestamp);
        stream.Info.Protocol = _head.Version == Http1Version.Http10 ? "HTTP/1.0" : "HTTP/1.1";
        stream.Info.DownstreamLocalAddress = _connection.LocalEndPoint as IPEndPoint;
        stream.Info.DownstreamRemoteAddress = _connection.RemoteEndPoint as IPEndPoint;
        stream.Info.DownstreamTls = _tls;
        stream.Info.RequestedServerName = _tls is { ServerName.Length: > 0 } tls ? tls.ServerName : null;
        stream.Info.ProxyProtocolTlvs = ProxyProtocolTlvs;
        stream.Info.DownstreamDirectRemoteAddress = stream.Info.DownstreamRemoteAddress;
        stream.Info.ConnectionId = ConnectionId;
        stream.Info.ConnectionDynamicMetadata = DynamicMetadata;
        // A drain is decided (and counted in downstream_cx_drain_close) when the response starts.
        _closeAfterResponse = !_head.KeepAlive;
        if (_config.MaxRequestsPerConnection > 0 && _requests >= _config.MaxRequestsPerConnection)
        {
            stats.DownstreamCxMaxRequestsReached.Inc();
            _closeAfterResponse = true;
        }

        _chunkedResponse = false;
        _responseHasBody = false;

        var upgrade = _head.IsUpgrade;
        ConnectionManagerUtility.StripHopByHop(_head.Headers, keepUpgrade: upgrade);
        ConnectionManagerUtility.MutateRequestHeaders(stream, isTls: _tls is not null);
        ClientCertHeaders.Mutate(stream, _tls);
        if (upgrade || _head.MethodKind == HttpMethodKind.Connect)
        {
            stats.DownstreamCxUpgradesTotal.Inc();
        }

        return stream;
    }

    /// <summary>What one read of the connection did to the request head being parsed.</summary>
    private enum HeadStep
    {
        /// <summary>The head is parsed; its bytes are consumed.</summary>
        Complete,

        /// <summary>More bytes are needed (or a wake-up changed nothing): read again.</summary>
        ReadMore,

        /// <summary>The connection ends without an answer (EOF, idle timeout, drain).</summary>
        Close,

        /// <summary>request_headers_timeout fired: answer 408, then close.</summary>
        HeadersTimeout,

        /// <summary>The head is invalid: answer the codec error (<see cref="_headError"/>), then close.</summary>
        CodecError,
    }

    private Http1Error _headError;

    /// <summary>Arms the idle timeout for the wait for the next request head.</summary>
    private TimeoutKind BeginHead()
    {
        _parser.Reset();
        if (_config.IdleTimeout > TimeSpan.Zero)
        {
            Arm(TimeoutKind.Idle, _config.IdleTimeout);
            return TimeoutKind.Idle;
        }

        return TimeoutKind.None;
    }

    /// <summary>
    /// Parses what one read returned into the request head (synchronously: the await stays in the
    /// caller's loop, so waiting for the next request costs no state machine of its own).
    /// </summary>
    private HeadStep OnHeadRead(in ReadResult result, ref TimeoutKind armed)
    {
        var buffer = result.Buffer;
        if (result.IsCanceled)
        {
            var kind = (TimeoutKind)Interlocked.Exchange(ref _timedOut, 0);
            if (kind == TimeoutKind.Idle)
            {
                _config.Stats.DownstreamCxIdleTimeout.Inc();
                _input.AdvanceTo(buffer.Start);
                return HeadStep.Close;
            }

            if (kind == TimeoutKind.RequestHeaders)
            {
                // Envoy answers a head that takes too long (slowloris) with 408, then closes.
                _config.Stats.DownstreamRqHeaderTimeout.Inc();
                _input.AdvanceTo(buffer.Start);
                return HeadStep.HeadersTimeout;
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            return _aborted || Draining ? HeadStep.Close : HeadStep.ReadMore;
        }

        var status = _parser.ParseHead(buffer, _head, out var consumed, out _headError);
        switch (status)
        {
            case Http1ParseStatus.Complete:
                _input.AdvanceTo(buffer.GetPosition(consumed));
                if (_head.DroppedHeadersWithUnderscores > 0)
                {
                    _config.Stats.Http1Codec.DroppedHeadersWithUnderscores.Add(_head.DroppedHeadersWithUnderscores);
                }

                return HeadStep.Complete;
            case Http1ParseStatus.Error:
                _input.AdvanceTo(buffer.End);
                CountUnderscoreRejection(_headError);
                return HeadStep.CodecError;
        }

        if (result.IsCompleted)
        {
            // EOF: clean between requests; a partial head is dropped without an answer, as Envoy does.
            if (!buffer.IsEmpty)
            {
                _config.Stats.DownstreamCxProtocolError.Inc();
            }

            _config.Stats.DownstreamCxDestroyRemote.Inc();
            _input.AdvanceTo(buffer.End);
            return HeadStep.Close;
        }

        if (!buffer.IsEmpty && armed != TimeoutKind.RequestHeaders)
        {
            // The first byte of a head: from now on the request headers timeout applies.
            if (_config.RequestHeadersTimeout > TimeSpan.Zero)
            {
                Arm(TimeoutKind.RequestHeaders, _config.RequestHeadersTimeout);
            }
            else if (armed == TimeoutKind.Idle)
            {
                Disarm();
            }

            armed = TimeoutKind.RequestHeaders;
        }

        _input.AdvanceTo(buffer.Start, buffer.End);
        return HeadStep.ReadMore;
    }

    /// <summary>Streams the request body through the filters; false when the request could not be read to its end.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ReadBodyAsync(HttpStream stream)
    {
        _bodyReader.Start(_head);
        while (true)
        {
            var result = await _input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                _input.AdvanceTo(buffer.Start, buffer.End);
                if (_aborted || stream.IsReset || ResponseEndedBeforeRequest(stream))
                {
                    return false;
                }

                continue;
            }

            var progressed = false;
            while (true)
            {
                var status = _bodyReader.Read(buffer, out var data, out var consumed, out var error);
                if (status == Http1BodyStatus.Error)
                {
                    _input.AdvanceTo(buffer.End);
                    CountUnderscoreRejection(error);
                    _config.Stats.DownstreamCxProtocolError.Inc();
                    if (!stream.ResponseStarted)
                    {
                        await stream.SendLocalReplyAsync(error.StatusCode, string.Empty, error.Details, ResponseFlags.DownstreamProtocolError).ConfigureAwait(false);
                    }
                    else
                    {
                        stream.ResetStream(ResponseFlags.DownstreamProtocolError, error.Details);
                    }

                    return false;
                }

                if (status == Http1BodyStatus.NeedMoreData)
                {
                    buffer = buffer.Slice(consumed);
                    progressed |= consumed > 0;
                    break;
                }

                var complete = status == Http1BodyStatus.Complete;
                var trailers = complete && _head.Trailers.Count > 0;
                if (complete && _bodyReader.DroppedTrailersWithUnderscores > 0)
                {
                    _config.Stats.Http1Codec.DroppedHeadersWithUnderscores.Add(_bodyReader.DroppedTrailersWithUnderscores);
                }

                if (!data.IsEmpty || complete)
                {
                    await stream.DecodeDataAsync(data, endStream: complete && !trailers).ConfigureAwait(false);
                }

                buffer = buffer.Slice(consumed);
                progressed = true;
                if (complete)
                {
                    _input.AdvanceTo(buffer.Start);
                    if (trailers)
                    {
                        await stream.DecodeTrailersAsync(_head.Trailers).ConfigureAwait(false);
                    }

                    return true;
                }

                if (stream.IsReset || ResponseEndedBeforeRequest(stream))
                {
                    // Nobody wants the rest of the body: the connection closes after the response.
                    _input.AdvanceTo(buffer.Start);
                    return false;
                }
            }

            if (result.IsCompleted)
            {
                // EOF inside the body: a tunnel or close-delimited body ends; anything else was truncated.
                _input.AdvanceTo(buffer.End);
                if (_bodyReader.Finish(out _) == Http1BodyStatus.Complete)
                {
                    await stream.DecodeDataAsync(default, endStream: true).ConfigureAwait(false);
                    return true;
                }

                _config.Stats.DownstreamCxDestroyRemote.Inc();
                _config.Stats.DownstreamRqRxReset.Inc();
                stream.OnDownstreamDisconnect();
                return false;
            }

            _input.AdvanceTo(buffer.Start, progressed ? buffer.Start : buffer.End);
        }
    }

    /// <summary>
    /// The whole response went out while the request body was still arriving (a local reply, an
    /// early upstream answer, an upgrade refused): the connection closes after the response, so the
    /// rest of the body is not read (Envoy closes rather than drain it).
    /// </summary>
    private bool ResponseEndedBeforeRequest(HttpStream stream) => stream.ResponseComplete && _closeAfterResponse;

    /// <summary>Wakes the body reader (it sees <see cref="ResponseEndedBeforeRequest"/>) once the response is complete.</summary>
    private void OnResponseEnd()
    {
        if (!_stream.RequestComplete)
        {
            _input.CancelPendingRead();
        }
    }

    // ------------------------------------------------------------------ ResponseEncoder

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask Encode1xxHeadersAsync(HttpResponseHead head)
    {
        if (_head.Version == Http1Version.Http10)
        {
            return;
        }

        Http1HeadWriter.WriteResponseHead(_output, head);
        await FlushAsync().ConfigureAwait(false);
    }

    public override ValueTask EncodeHeadersAsync(HttpResponseHead head, bool endStream)
    {
        var headers = head.Headers;
        var status = head.StatusCode;
        var isHead = _head.MethodKind == HttpMethodKind.Head;
        var noBodyStatus = status is < 200 or 204 or 304;
        _chunkedResponse = false;
        _responseHasBody = false;
        var tunnel = status == 101 || (status is >= 200 and < 300 && _head.MethodKind == HttpMethodKind.Connect);
        if (tunnel)
        {
            // Upgrade or CONNECT accepted: after this head the connection is a two-way tunnel, so the
            // head carries no framing (Envoy strips both for a 2xx to CONNECT).
            if (status == 101)
            {
                headers.Set(KnownHeader.Connection, s_upgrade);
            }
            else
            {
                headers.Remove(KnownHeader.ContentLength);
                headers.Remove(KnownHeader.TransferEncoding);
            }

            _responseHasBody = true;
            _closeAfterResponse = true;
        }
        else if (noBodyStatus)
        {
            headers.Remove(KnownHeader.TransferEncoding);
        }
        else if (headers.Contains(KnownHeader.ContentLength))
        {
            _responseHasBody = !isHead;
        }
        else if (endStream)
        {
            if (!isHead)
            {
                headers.Set(KnownHeader.ContentLength, "0"u8);
            }
        }
        else if (isHead)
        {
            // A HEAD response has no body whatever the upstream framing said.
        }
        else if (_head.Version == Http1Version.Http11)
        {
            headers.Set(KnownHeader.TransferEncoding, s_chunked);
            _chunkedResponse = true;
            _responseHasBody = true;
        }
        else
        {
            // HTTP/1.0 client and a body of unknown length: the close delimits it.
            _closeAfterResponse = true;
            _responseHasBody = true;
        }

        if (!tunnel)
        {
            // A response that starts before the request ended (a local reply to a body that is
            // still arriving, an early upstream answer): Envoy closes the connection afterwards
            // rather than reading and discarding the rest of the body. A 400 the proxy answered
            // itself closes it too (the request may not have been what it seemed), unless
            // stream_error_on_invalid_http_message says to keep it.
            if (_closeAfterResponse || Draining || !_stream.RequestComplete
                || (_stream.BadRequestLocalReply && !_config.StreamErrorOnInvalidHttpMessage))
            {
                if (!_closeAfterResponse && (_drain.IsDraining || HealthCheckFailed))
                {
                    // The listener drains: this response ends a keep-alive connection (Envoy's drain close).
                    _config.Stats.DownstreamCxDrainClose.Inc();
                }

                _closeAfterResponse = true;
                headers.Set(KnownHeader.Connection, s_close);
            }
            else if (_head.Version == Http1Version.Http10)
            {
                headers.Set(KnownHeader.Connection, s_keepAlive);
            }
        }

        // Envoy answers an accepted HTTP/1.0 request in HTTP/1.0.
        Http1HeadWriter.WriteResponseHead(_output, status, headers, HeaderKeyFormat.Default, _head.Version == Http1Version.Http10 ? Http1Version.Http10 : Http1Version.Http11);
        if (endStream)
        {
            OnResponseEnd();
        }

        return endStream || !_responseHasBody ? FlushAsync() : ValueTask.CompletedTask;
    }

    public override ValueTask EncodeDataAsync(ReadOnlySequence<byte> data, bool endStream)
    {
        if (_responseHasBody && !data.IsEmpty)
        {
            if (_chunkedResponse)
            {
                ChunkedEncoder.WriteChunk(_output, data);
            }
            else
            {
                foreach (var segment in data)
                {
                    _output.Write(segment.Span);
                }
            }
        }

        if (endStream && _chunkedResponse)
        {
            ChunkedEncoder.WriteLastChunk(_output);
        }

        if (endStream)
        {
            OnResponseEnd();
        }

        return FlushAsync();
    }

    public override ValueTask EncodeTrailersAsync(HttpHeaderMap trailers)
    {
        if (_chunkedResponse)
        {
            // HTTP/1.1 trailers only with enable_trailers, as Envoy's codec.
            ChunkedEncoder.WriteLastChunk(_output, _config.ParserOptions.EnableTrailers ? trailers : null);
        }

        OnResponseEnd();
        return FlushAsync();
    }

    public override void ResetStream()
    {
        if (_stream.ResponseComplete)
        {
            // Everything was written: closing after the flush is enough, nothing to abort.
            _closeAfterResponse = true;
            _input.CancelPendingRead();
            return;
        }

        if (_stream.ResponseStarted && !_aborted)
        {
            // Part of the response is out: as Envoy (FlushWriteAndDelay), what was written still goes
            // to the client, then the connection closes; the client sees a truncated response, not a
            // reset that may swallow bytes it was already sent. Writers are woken, not raced: the
            // pipes are completed by the connection loop once the stream's work has ended.
            _aborted = true;
            _closeAfterResponse = true;
            _closeGracefully = true;
            _input.CancelPendingRead();
            _output.CancelPendingFlush();
            return;
        }

        Abort();
    }

    public override void EndAfterLocalReply()
    {
        _closeAfterResponse = true;
        _input.CancelPendingRead();
    }

    /// <summary>Pushes what was written to the socket, waiting when the peer reads slower than we write (back-pressure).</summary>
    public override ValueTask FlushAsync()
    {
        if (_output.UnflushedBytes == 0)
        {
            return ValueTask.CompletedTask;
        }

        var flush = _output.FlushAsync();
        if (flush.IsCompletedSuccessfully)
        {
            var result = flush.Result;
            if (result.IsCompleted || result.IsCanceled)
            {
                _stream.OnDownstreamDisconnect();
            }

            return ValueTask.CompletedTask;
        }

        return AwaitFlushAsync(flush);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AwaitFlushAsync(ValueTask<FlushResult> flush)
    {
        FlushResult result;
        try
        {
            result = await flush.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException or InvalidOperationException)
        {
            _stream.OnDownstreamDisconnect();
            return;
        }

        if (result.IsCompleted || result.IsCanceled)
        {
            _stream.OnDownstreamDisconnect();
        }
    }

    // ------------------------------------------------------------------ errors, timers, drain

    /// <summary>Envoy's <c>http1.requests_rejected_with_underscores_in_headers</c> (headers or trailers).</summary>
    private void CountUnderscoreRejection(in Http1Error error)
    {
        if (error.Code == Http1ErrorCode.UnderscoreInHeaderName)
        {
            _config.Stats.Http1Codec.RequestsRejectedWithUnderscoresInHeaders.Inc();
        }
    }

    private ValueTask SendCodecErrorAsync(Http1Error error)
    {
        _config.Stats.DownstreamCxProtocolError.Inc();
        _config.Log.Debug($"request rejected: {error}");
        return SendEarlyReplyAsync(error.StatusCode, ReasonPhrases.Get(error.StatusCode).ToArray(), error.Details, ResponseFlags.DownstreamProtocolError);
    }

    /// <summary>A reply to a request whose head never completed (codec error, headers timeout); the connection closes after it.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendEarlyReplyAsync(int status, byte[] body, string details, ResponseFlags flags)
    {
        _stream.Begin(_head, EventClock.Timestamp);
        _stream.Info.DownstreamLocalAddress = _connection.LocalEndPoint as IPEndPoint;
        _stream.Info.DownstreamRemoteAddress = _connection.RemoteEndPoint as IPEndPoint;
        _stream.Info.DownstreamDirectRemoteAddress = _stream.Info.DownstreamRemoteAddress;
        _stream.Info.ConnectionId = ConnectionId;
        _stream.Info.ResponseCodeDetails = details;
        _stream.Info.SetResponseFlag(flags);

        // Envoy sends these through the stream's sendLocalReply, so local_reply_config applies too.
        _earlyReply = true;
        var reply = _config.LocalReplies.Map(_stream, status, body);
        var head = new HttpResponseHead { StatusCode = reply.Status };
        head.Headers.Add(KnownHeader.ContentLength, System.Text.Encoding.ASCII.GetBytes(reply.Body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        head.Headers.Add(KnownHeader.ContentType, reply.ContentType ?? "text/plain"u8.ToArray());
        if (reply.Headers is { } extra)
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

        head.Headers.Set(KnownHeader.Connection, s_close);
        ConnectionManagerUtility.MutateResponseHeaders(_stream, head);
        _stream.Info.ResponseCode = head.StatusCode;
        Http1HeadWriter.WriteResponseHead(_output, head);
        _output.Write(reply.Body);
        try
        {
            // The whole reply is written: a peer that reads it and closes is not a downstream
            // disconnect of this stream (no DC, the details stay).
            await _output.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException or InvalidOperationException)
        {
            _config.Log.Debug($"early reply not delivered: {ex.Message}");
        }

        _config.Stats.DownstreamRqActive.Inc();
        _stream.End();
        _earlyReply = false;
    }

    private void Arm(TimeoutKind kind, TimeSpan due)
    {
        Volatile.Write(ref _timedOut, 0);
        _armedKind = kind;
        _timer.Set(due);
    }

    private void Disarm()
    {
        _armedKind = TimeoutKind.None;
        _timer.Clear();
    }

    private void OnTimer()
    {
        var kind = _armedKind;
        if (kind != TimeoutKind.None)
        {
            Volatile.Write(ref _timedOut, (int)kind);
            _input.CancelPendingRead();
        }
    }

    private void OnConnectionClosed()
    {
        if (_stream.Active && !_stream.ResponseComplete && !_earlyReply)
        {
            _config.Stats.DownstreamCxDestroyRemote.Inc();
            _config.Stats.DownstreamRqRxReset.Inc();
            _stream.OnDownstreamDisconnect();
        }
    }

    /// <summary>
    /// Whether the peer sent bytes we never read (a body we answered before reading, pipelined
    /// requests after a close). Closing a socket with unread input sends RST, and the peer's
    /// kernel may then discard our response before the client reads it.
    /// </summary>
    private bool HasUnreadInput()
    {
        if (_stream.Active || (_requests > 0 && !_stream.RequestComplete))
        {
            return true;
        }

        if (_input.TryRead(out var buffered))
        {
            var unread = !buffered.Buffer.IsEmpty;
            _input.AdvanceTo(buffered.Buffer.Start);
            return unread && !buffered.IsCompleted;
        }

        return false;
    }

    /// <summary>
    /// Envoy's delayed_close_timeout (default 1 s): after the last response byte, wait for the
    /// peer to close (reading and discarding what it still sends) before closing the socket, so
    /// that close does not turn into a reset that destroys the response in flight.
    /// </summary>
    private async ValueTask DelayCloseAsync()
    {
        using var deadline = new CancellationTokenSource(_config.DelayedCloseTimeout, _time);
        try
        {
            await _output.FlushAsync(deadline.Token).ConfigureAwait(false);
            while (true)
            {
                var result = await _input.ReadAsync(deadline.Token).ConfigureAwait(false);
                _input.AdvanceTo(result.Buffer.End);

                // A cancelled read is a leftover wake-up (the response ended before its request): keep draining.
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ConnectionResetException or ConnectionAbortedException or ObjectDisposedException or InvalidOperationException)
        {
            // The deadline passed or the peer went away: close now.
        }
    }

    /// <summary>
    /// max_connection_duration: Envoy drains the connection — an idle one closes now, a busy one
    /// after its response, which carries <c>connection: close</c>.
    /// </summary>
    private void OnMaxConnectionDuration()
    {
        _config.Stats.DownstreamCxMaxDurationReached.Inc();
        _maxDurationReached = true;
        _input.CancelPendingRead();
    }

    /// <summary>The listener drains: an idle connection closes now, a busy one after its response (with connection: close).</summary>
    private void OnDrain() => _input.CancelPendingRead();

    private void Abort()
    {
        if (_aborted)
        {
            return;
        }

        _aborted = true;
        _closeAfterResponse = true;
        _connection.Abort(new ConnectionAbortedException("stream reset"));
    }
}
