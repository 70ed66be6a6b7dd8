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
    private readonly Legate.Tls.TlsSessionInfo? _tls;

    private int _timedOut;
    private TimeoutKind _armedKind;
    private bool _closeAfterResponse;
    private bool _chunkedResponse;
    private bool _responseHasBody;
    private bool _aborted;
    private int _requests;

    public Http1ServerConnection(ConnectionContext connection, HttpConnectionManagerConfig config, ConnectionDrain drain, TimeProvider time)
    {
        _connection = connection;
        _input = connection.Transport.Input;
        _output = connection.Transport.Output;
        _config = config;
        _drain = drain;
        _parser = new Http1RequestParser(config.ParserOptions);
        _bodyReader = new Http1BodyReader(config.ParserOptions, isRequest: true);
        _stream = new HttpStream(config, this);
        _timer = new DeadlineTimer(time, static state => ((Http1ServerConnection)state).OnTimer(), this);
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

        // Kestrel's socket transport ends the connection when the peer closes (even a half-close),
        // which Envoy treats as a downstream disconnect of the stream in progress (DC).
        using var closedRegistration = _connection.ConnectionClosed.UnsafeRegister(static state => ((Http1ServerConnection)state!).OnConnectionClosed(), this);
        try
        {
            while (!_aborted && await ServeOneAsync().ConfigureAwait(false))
            {
            }
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException or OperationCanceledException or ObjectDisposedException)
        {
            _config.Log.Debug($"connection closed: {ex.Message}");
        }
        finally
        {
            _stream.Release();
            await _timer.DisposeAsync().ConfigureAwait(false);
            stats.DownstreamCxActive.Dec();
            stats.DownstreamCxHttp1Active.Dec();
            await _input.CompleteAsync().ConfigureAwait(false);
            await _output.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Reads and answers one request; false when the connection must close.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ServeOneAsync()
    {
        if (!await ReadHeadAsync().ConfigureAwait(false))
        {
            return false;
        }

        _requests++;
        var stats = _config.Stats;
        stats.DownstreamRqTotal.Inc();
        stats.DownstreamRqHttp1Total.Inc();
        stats.DownstreamRqActive.Inc();
        var stream = _stream;
        stream.Begin(_head, Stopwatch.GetTimestamp());
        stream.Info.Protocol = _head.Version == Http1Version.Http10 ? "HTTP/1.0" : "HTTP/1.1";
        stream.Info.DownstreamLocalAddress = _connection.LocalEndPoint as IPEndPoint;
        stream.Info.DownstreamRemoteAddress = _connection.RemoteEndPoint as IPEndPoint;
        stream.Info.DownstreamTls = _tls;
        _closeAfterResponse = !_head.KeepAlive || _drain.IsDraining
            || (_config.MaxRequestsPerConnection > 0 && _requests >= _config.MaxRequestsPerConnection);
        _chunkedResponse = false;
        _responseHasBody = false;

        var upgrade = _head.IsUpgrade;
        ConnectionManagerUtility.StripHopByHop(_head.Headers, keepUpgrade: upgrade);
        ConnectionManagerUtility.MutateRequestHeaders(stream, isTls: _tls is not null);
        ClientCertHeaders.Mutate(stream, _tls);
        if (upgrade)
        {
            stats.DownstreamCxUpgradesTotal.Inc();
        }

        var hasBody = _head.Framing is not Http1BodyFraming.None && !(_head.Framing == Http1BodyFraming.ContentLength && _head.ContentLength == 0);
        if (_head.ExpectContinue)
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

        return !_closeAfterResponse && !_aborted;
    }

    /// <summary>Reads the next request head; false when the connection is done (EOF, error answered, timeout).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ReadHeadAsync()
    {
        _parser.Reset();
        var armed = TimeoutKind.None;
        if (_config.IdleTimeout > TimeSpan.Zero)
        {
            Arm(TimeoutKind.Idle, _config.IdleTimeout);
            armed = TimeoutKind.Idle;
        }

        try
        {
            while (true)
            {
                var result = await _input.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                if (result.IsCanceled)
                {
                    var kind = (TimeoutKind)Interlocked.Exchange(ref _timedOut, 0);
                    if (kind == TimeoutKind.Idle)
                    {
                        _config.Stats.DownstreamCxIdleTimeout.Inc();
                        _input.AdvanceTo(buffer.Start);
                        return false;
                    }

                    if (kind == TimeoutKind.RequestHeaders)
                    {
                        _config.Stats.DownstreamRqHeaderTimeout.Inc();
                        _input.AdvanceTo(buffer.Start);
                        return false;
                    }

                    _input.AdvanceTo(buffer.Start, buffer.End);
                    if (_aborted || _drain.IsDraining)
                    {
                        return false;
                    }

                    continue;
                }

                var status = _parser.ParseHead(buffer, _head, out var consumed, out var error);
                switch (status)
                {
                    case Http1ParseStatus.Complete:
                        _input.AdvanceTo(buffer.GetPosition(consumed));
                        return true;
                    case Http1ParseStatus.Error:
                        _input.AdvanceTo(buffer.End);
                        await SendCodecErrorAsync(error).ConfigureAwait(false);
                        return false;
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
                    return false;
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
            }
        }
        finally
        {
            Disarm();
        }
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
                if (_aborted || stream.IsReset || (stream.IsLocalReply && stream.ResponseComplete))
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

                if (stream.IsReset || (stream.IsLocalReply && stream.ResponseComplete))
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
        if (status == 101)
        {
            // Upgrade accepted: after this head the connection is a two-way tunnel.
            headers.Set(KnownHeader.Connection, s_upgrade);
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

        if (status != 101)
        {
            // A response that starts before the request ended (a local reply to a body that is
            // still arriving, an early upstream answer): Envoy closes the connection afterwards
            // rather than reading and discarding the rest of the body.
            if (_closeAfterResponse || _drain.IsDraining || !_stream.RequestComplete)
            {
                _closeAfterResponse = true;
                headers.Set(KnownHeader.Connection, s_close);
            }
            else if (_head.Version == Http1Version.Http10)
            {
                headers.Set(KnownHeader.Connection, s_keepAlive);
            }
        }

        Http1HeadWriter.WriteResponseHead(_output, status, headers, HeaderKeyFormat.Default, Http1Version.Http11);
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

        return FlushAsync();
    }

    public override ValueTask EncodeTrailersAsync(HttpHeaderMap trailers)
    {
        if (_chunkedResponse)
        {
            // HTTP/1.1 trailers only with enable_trailers, as Envoy's codec.
            ChunkedEncoder.WriteLastChunk(_output, _config.ParserOptions.EnableTrailers ? trailers : null);
        }

        return FlushAsync();
    }

    public override void ResetStream() => Abort();

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

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendCodecErrorAsync(Http1Error error)
    {
        _config.Stats.DownstreamCxProtocolError.Inc();
        _config.Log.Debug($"request rejected: {error}");
        var head = new HttpResponseHead { StatusCode = error.StatusCode };
        var body = ReasonPhrases.Get(error.StatusCode);
        head.Headers.Add(KnownHeader.ContentLength, System.Text.Encoding.ASCII.GetBytes(body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        head.Headers.Add(KnownHeader.ContentType, "text/plain"u8);
        head.Headers.Add(KnownHeader.Connection, s_close);
        _stream.Begin(_head, Stopwatch.GetTimestamp());
        _stream.Info.ResponseCodeDetails = error.Details;
        _stream.Info.SetResponseFlag(ResponseFlags.DownstreamProtocolError);
        ConnectionManagerUtility.MutateResponseHeaders(_stream, head);
        _stream.Info.ResponseCode = error.StatusCode;
        Http1HeadWriter.WriteResponseHead(_output, head);
        _output.Write(body);
        await FlushAsync().ConfigureAwait(false);
        _config.Stats.DownstreamRqActive.Inc();
        _stream.End();
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
        if (_stream.Active && !_stream.ResponseComplete)
        {
            _config.Stats.DownstreamCxDestroyRemote.Inc();
            _config.Stats.DownstreamRqRxReset.Inc();
            _stream.OnDownstreamDisconnect();
        }
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
