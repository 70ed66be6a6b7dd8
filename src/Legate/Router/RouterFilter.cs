using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Upstream;
using Legate.Upstream.ConnectionPool;
using Microsoft.AspNetCore.Connections;

namespace Legate.Router;

/// <summary>
/// The terminal HTTP filter (Envoy's router): resolves the route, answers direct responses and
/// routing failures (NR, NC, UH) locally, picks a host, sends the request over a pooled HTTP/1.1
/// connection (an HTTP/2 cluster's exchange goes to <see cref="Http2UpstreamRequest"/>) and streams the response back through the encode path, with the route timeout (UT),
/// connect failures (UF), upstream resets (UC/UR) and downstream disconnects (DC) mapped to
/// Envoy's responses and flags.
/// </summary>
internal sealed class RouterFilter : HttpFilter, ILoadBalancerContext
{
    private const string ResetBodyPrefix = "upstream connect error or disconnect/reset before headers. reset reason: ";

    private static readonly byte[] s_chunked = "chunked"u8.ToArray();
    private static readonly byte[] s_upgrade = "upgrade"u8.ToArray();
    private static readonly byte[] s_zero = "0"u8.ToArray();
    private static readonly byte[] s_expectedTimeoutName = "x-envoy-expected-rq-timeout-ms"u8.ToArray();

    private readonly RouterFilterFactory _factory;
    private HttpStream _stream = null!;
    private Cluster? _cluster;
    private Http1ConnectionPool? _pool;
    private Http1UpstreamConnection? _upstream;
    private Http2UpstreamRequest? _http2;
    private CancellationTokenRegistration _resetRegistration;
    private long _requestStart;
    private bool _requestChunked;
    private bool _requestComplete;
    private bool _upgrade;
    private bool _done;
    private bool _reusable;

    public RouterFilter(RouterFilterFactory factory) => _factory = factory;

    /// <summary>The route's hash_policy result for ring hash / Maglev (set before the host is chosen); null = pick at random.</summary>
    public ulong? HashKey { get; internal set; }

    int ILoadBalancerContext.HostSelectionRetryCount => 0;

    bool ILoadBalancerContext.ShouldSelectAnotherHost(Host host) => false;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<FilterHeadersStatus> DecodeHeadersAsync(HttpStream stream, HttpRequestHead headers, bool endStream)
    {
        _stream = stream;
        var stats = stream.Config.Stats;
        stats.RqTotal.Inc();
        var route = stream.Route;
        if (route is null)
        {
            stats.NoRoute.Inc();
            await stream.SendLocalReplyAsync(404, [], ResponseCodeDetails.RouteNotFound, ResponseFlags.NoRouteFound).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        switch (route.Action)
        {
            case RouteActionKind.DirectResponse:
                stats.RqDirectResponse.Inc();
                await stream.SendLocalReplyAsync(route.Status, route.Body, ResponseCodeDetails.DirectResponse).ConfigureAwait(false);
                return FilterHeadersStatus.StopIteration;
            case RouteActionKind.NotImplemented:
                if (route.FirstNotImplementedHit())
                {
                    stream.Config.Log.Warn($"route '{route.Name}' in virtual host '{route.VirtualHostName}': the '{route.ActionName}' action is not implemented yet; answering 503");
                }

                await stream.SendLocalReplyAsync(503, "route action not implemented yet", "route_action_not_implemented").ConfigureAwait(false);
                return FilterHeadersStatus.StopIteration;
        }

        var cluster = _factory.ClusterManager.Find(route.ClusterName);
        if (cluster is null)
        {
            stats.NoCluster.Inc();
            await stream.SendLocalReplyAsync(route.ClusterNotFoundStatus, [], ResponseCodeDetails.ClusterNotFound, ResponseFlags.NoClusterFound).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        _cluster = cluster;
        stream.Info.UpstreamCluster = cluster;
        if (headers.IsUpgrade && !IsUpgradeAllowed(stream, headers, route))
        {
            stats.DownstreamRqWsOnNonWsRoute.Inc();
            await stream.SendLocalReplyAsync(403, [], ResponseCodeDetails.UpgradeFailed).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        var host = cluster.LoadBalancer.ChooseHost(this);
        if (host is null)
        {
            cluster.Info.Stats.UpstreamCxNone.Inc();
            await stream.SendLocalReplyAsync(503, "no healthy upstream", ResponseCodeDetails.NoHealthyUpstream, ResponseFlags.NoHealthyUpstream).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        // max_requests: released in Finish (or by the HTTP/2 request's own finish).
        if (!cluster.Info.CircuitBreakers.Default.Requests.TryAcquire())
        {
            cluster.Info.Stats.UpstreamRqPendingOverflow.Inc();
            await SendOverflowAsync().ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        stream.Info.UpstreamHost = host;
        stream.Info.AttemptCount = 1;
        stream.Trace?.OnUpstreamAttempt(stream, headers, cluster, _factory.StartChildSpan);
        if (Http2UpstreamRequest.Applies(cluster, stream, headers))
        {
            _http2 = new Http2UpstreamRequest(_factory, stream, cluster, host);
            await _http2.StartAsync(headers, endStream).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        _upgrade = headers.IsUpgrade;
        _requestStart = Stopwatch.GetTimestamp();
        var clusterStats = cluster.Info.Stats;
        clusterStats.UpstreamRqTotal.Inc();
        clusterStats.UpstreamRqActive.Inc();
        host.RequestStarted();
        _resetRegistration = stream.ResetToken.UnsafeRegister(static state => ((RouterFilter)state!).OnStreamResetSignal(), this);

        _pool = host.ConnectionPool(0, h => new Http1ConnectionPool(h, cluster, RouterFilterFactory.TransportFor(cluster.Info.BufferLimitBytes), _factory.Time));
        try
        {
            _upstream = await _pool.AcquireAsync(stream.ResetToken).ConfigureAwait(false);
        }
        catch (UpstreamConnectException ex)
        {
            stream.Info.UpstreamTransportFailureReason = ex.TransportFailureReason;
            await FailBeforeResponseAsync(ResponseFlags.UpstreamConnectionFailure, ex.ResetReason).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }
        catch (OperationCanceledException)
        {
            Finish(reusable: false);
            return FilterHeadersStatus.StopIteration;
        }
        catch (UpstreamOverflowException)
        {
            Finish(reusable: false);
            await SendOverflowAsync().ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        var upstream = _upstream;
        host.ReportResult(OutlierResult.LocalOriginConnectSuccess);
        upstream.Requests++;
        stream.Info.UpstreamRemoteAddress = upstream.Address;
        stream.Info.UpstreamLocalAddress = upstream.LocalAddress;
        stream.Info.UpstreamProtocol = "HTTP/1.1";
        upstream.ArmTimeout(route.Timeout);
        if (!_factory.SuppressEnvoyHeaders && route.Timeout > TimeSpan.Zero)
        {
            headers.Headers.Remove("x-envoy-expected-rq-timeout-ms");
            headers.Headers.Add(s_expectedTimeoutName, route.ExpectedTimeoutValue);
        }

        WriteRequestHead(upstream.Output, headers, endStream);
        stream.Info.FirstUpstreamTxByteSent = Stopwatch.GetTimestamp();
        if (endStream)
        {
            stream.Info.LastUpstreamTxByteSent = stream.Info.FirstUpstreamTxByteSent;
        }

        _requestComplete = endStream;
        if (!await FlushUpstreamAsync().ConfigureAwait(false))
        {
            await FailBeforeResponseAsync(ResponseFlags.UpstreamConnectionTermination, UpstreamResetReasons.ConnectionTermination).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        if (endStream)
        {
            await ReceiveResponseAsync().ConfigureAwait(false);
        }
        else
        {
            // The body still comes; the response may start before it ends (and must, for upgrades).
            stream.SetPendingResponse(ReceiveResponseAsync().AsTask());
        }

        return FilterHeadersStatus.StopIteration;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<FilterDataStatus> DecodeDataAsync(HttpStream stream, BodyBuffer data, bool endStream)
    {
        if (_http2 is { } http2)
        {
            await http2.DecodeDataAsync(data, endStream).ConfigureAwait(false);
            return FilterDataStatus.StopIterationNoBuffer;
        }

        var upstream = _upstream;
        if (upstream is null || _done || upstream.IsClosed)
        {
            return FilterDataStatus.StopIterationNoBuffer;
        }

        var output = upstream.Output;
        if (!data.IsEmpty)
        {
            if (_requestChunked)
            {
                ChunkedEncoder.WriteChunk(output, data.Data);
            }
            else
            {
                foreach (var segment in data.Data)
                {
                    output.Write(segment.Span);
                }
            }
        }

        if (endStream)
        {
            if (_requestChunked)
            {
                ChunkedEncoder.WriteLastChunk(output);
            }

            _requestComplete = true;
        }

        await FlushUpstreamAsync().ConfigureAwait(false);
        if (endStream)
        {
            stream.Info.LastUpstreamTxByteSent = Stopwatch.GetTimestamp();
        }

        return FilterDataStatus.StopIterationNoBuffer;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<FilterTrailersStatus> DecodeTrailersAsync(HttpStream stream, HttpHeaderMap trailers)
    {
        if (_http2 is { } http2)
        {
            await http2.DecodeTrailersAsync(trailers).ConfigureAwait(false);
            return FilterTrailersStatus.StopIteration;
        }

        var upstream = _upstream;
        if (upstream is null || _done || upstream.IsClosed)
        {
            return FilterTrailersStatus.StopIteration;
        }

        if (_requestChunked)
        {
            ChunkedEncoder.WriteLastChunk(upstream.Output, _cluster!.Info.Http1EnableTrailers ? trailers : null);
        }

        _requestComplete = true;
        await FlushUpstreamAsync().ConfigureAwait(false);
        stream.Info.LastUpstreamTxByteSent = Stopwatch.GetTimestamp();
        return FilterTrailersStatus.StopIteration;
    }

    public override void OnDestroy()
    {
        if (_http2 is { } http2)
        {
            http2.OnDestroy();
            return;
        }

        if (!_done && _cluster is not null)
        {
            Finish(reusable: false);
        }
    }

    private static bool IsUpgradeAllowed(HttpStream stream, HttpRequestHead headers, RouteEntry route)
    {
        var type = headers.Headers.TryGetValue(KnownHeader.Upgrade, out ReadOnlySpan<byte> value) ? System.Text.Encoding.Latin1.GetString(value) : string.Empty;
        return stream.Config.IsUpgradeAllowed(type, route);
    }

    private void WriteRequestHead(PipeWriter output, HttpRequestHead head, bool endStream)
    {
        var headers = head.Headers;
        if (_upgrade)
        {
            headers.Set(KnownHeader.Connection, s_upgrade);
        }
        else if (!endStream && !headers.Contains(KnownHeader.ContentLength))
        {
            headers.Set(KnownHeader.TransferEncoding, s_chunked);
            _requestChunked = true;
        }
        else if (endStream && !headers.Contains(KnownHeader.ContentLength) && head.MethodKind is HttpMethodKind.Post or HttpMethodKind.Put or HttpMethodKind.Patch)
        {
            headers.Set(KnownHeader.ContentLength, s_zero);
        }

        ReadOnlySpan<byte> target = head.MethodKind == HttpMethodKind.Connect ? head.Authority : head.PathBytes;
        Span<byte> method = stackalloc byte[head.Method.Length];
        System.Text.Encoding.ASCII.GetBytes(head.Method, method);
        Http1HeadWriter.WriteRequestHead(output, method, target, headers, HeaderKeyFormat.Default, Http1Version.Http11);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FlushUpstreamAsync()
    {
        try
        {
            var result = await _upstream!.Output.FlushAsync().ConfigureAwait(false);
            return !result.IsCompleted && !result.IsCanceled;
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException or InvalidOperationException or ObjectDisposedException)
        {
            return false;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReceiveResponseAsync()
    {
        var upstream = _upstream!;
        var stream = _stream;
        var input = upstream.Input;
        var head = upstream.ResponseHead;
        upstream.Parser.Reset();
        try
        {
            // The head (1xx heads are dropped: Envoy answers 100-continue itself).
            while (true)
            {
                var result = await ReadAsync(input).ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    input.AdvanceTo(result.Buffer.Start);
                    await OnCancelledAsync().ConfigureAwait(false);
                    return;
                }

                var buffer = result.Buffer;
                var status = upstream.Parser.ParseHead(buffer, head, stream.RequestHeaders.MethodKind, _upgrade, out var consumed, out var error);
                if (status == Http1ParseStatus.Complete)
                {
                    input.AdvanceTo(buffer.GetPosition(consumed));
                    if (head.IsInformational)
                    {
                        upstream.Parser.Reset();
                        continue;
                    }

                    break;
                }

                if (status == Http1ParseStatus.Error)
                {
                    input.AdvanceTo(buffer.End);
                    _cluster!.Info.Stats.UpstreamCxProtocolError.Inc();
                    stream.Config.Log.Debug($"upstream {upstream.Address}: invalid response: {error}");
                    await FailBeforeResponseAsync(ResponseFlags.UpstreamProtocolError, UpstreamResetReasons.ProtocolError, 502).ConfigureAwait(false);
                    return;
                }

                if (result.IsCompleted)
                {
                    input.AdvanceTo(buffer.End);
                    _cluster!.Info.Stats.UpstreamCxDestroyRemote.Inc();
                    _cluster.Info.Stats.UpstreamRqRxReset.Inc();
                    await FailBeforeResponseAsync(ResponseFlags.UpstreamConnectionTermination, UpstreamResetReasons.ConnectionTermination).ConfigureAwait(false);
                    return;
                }

                input.AdvanceTo(buffer.Start, buffer.End);
            }

            stream.Info.FirstUpstreamRxByteReceived = Stopwatch.GetTimestamp();
            var switching = head.StatusCode == 101;
            if (switching && !_upgrade)
            {
                await FailBeforeResponseAsync(ResponseFlags.UpstreamProtocolError, UpstreamResetReasons.ProtocolError, 502).ConfigureAwait(false);
                return;
            }

            ConnectionManagerUtility.StripHopByHop(head.Headers, keepUpgrade: switching);
            var code = head.StatusCode;
            if (code is >= 100 and < 600)
            {
                _cluster!.Info.Stats.UpstreamRqXx[(code / 100) - 1].Inc();
            }

            stream.Info.UpstreamHost?.ReportHttpCode(code);

            if (!_factory.SuppressEnvoyHeaders)
            {
                Span<byte> digits = stackalloc byte[20];
                System.Buffers.Text.Utf8Formatter.TryFormat((long)Stopwatch.GetElapsedTime(_requestStart).TotalMilliseconds, digits, out var written);
                head.Headers.Set(KnownHeader.XEnvoyUpstreamServiceTime, digits[..written]);
            }

            if (switching)
            {
                // An accepted upgrade is a tunnel: no route timeout from here on.
                upstream.DisarmTimeout();
                await stream.EncodeHeadersAsync(head, endStream: false).ConfigureAwait(false);
                stream.Config.Stats.DownstreamCxUpgradesActive.Inc();
                try
                {
                    await RelayTunnelAsync(input).ConfigureAwait(false);
                }
                finally
                {
                    stream.Config.Stats.DownstreamCxUpgradesActive.Dec();
                }

                return;
            }

            var reader = upstream.BodyReader;
            reader.Start(head);
            var hasBody = !reader.IsComplete;
            await stream.EncodeHeadersAsync(head, endStream: !hasBody).ConfigureAwait(false);
            if (hasBody && !await ReadBodyAsync(input, reader, head).ConfigureAwait(false))
            {
                return;
            }

            upstream.DisarmTimeout();
            _cluster!.Info.Stats.UpstreamRqCompleted.Inc();
            _cluster.Info.Stats.UpstreamRqTime.Record((long)Stopwatch.GetElapsedTime(_requestStart).TotalMilliseconds);
            Finish(reusable: head.KeepAlive && _requestComplete && !stream.IsReset);
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException or InvalidOperationException or ObjectDisposedException)
        {
            stream.Config.Log.Debug($"upstream {upstream.Address}: {ex.Message}");
            if (!stream.ResponseStarted)
            {
                await FailBeforeResponseAsync(ResponseFlags.UpstreamConnectionTermination, UpstreamResetReasons.ConnectionTermination).ConfigureAwait(false);
            }
            else
            {
                stream.ResetStream(ResponseFlags.UpstreamConnectionTermination, ResponseCodeDetails.UpstreamResetAfterResponseStarted(UpstreamResetReasons.ConnectionTermination));
                Finish(reusable: false);
            }
        }
    }

    /// <summary>Streams the response body downstream; false when the exchange ended in an error (already handled).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ReadBodyAsync(PipeReader input, Http1BodyReader reader, HttpResponseHead head)
    {
        var stream = _stream;
        while (true)
        {
            var result = await ReadAsync(input).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                input.AdvanceTo(buffer.Start);
                await OnCancelledAsync().ConfigureAwait(false);
                return false;
            }

            var progressed = false;
            while (true)
            {
                var status = reader.Read(buffer, out var data, out var consumed, out var error);
                if (status == Http1BodyStatus.Error)
                {
                    input.AdvanceTo(buffer.End);
                    _cluster!.Info.Stats.UpstreamCxProtocolError.Inc();
                    stream.Config.Log.Debug($"upstream {_upstream!.Address}: invalid response body: {error}");
                    stream.ResetStream(ResponseFlags.UpstreamProtocolError, ResponseCodeDetails.UpstreamResetAfterResponseStarted(UpstreamResetReasons.ProtocolError));
                    Finish(reusable: false);
                    return false;
                }

                if (status == Http1BodyStatus.NeedMoreData)
                {
                    buffer = buffer.Slice(consumed);
                    progressed |= consumed > 0;
                    break;
                }

                var complete = status == Http1BodyStatus.Complete;
                var trailers = complete && head.Trailers.Count > 0;
                if (!data.IsEmpty || complete)
                {
                    await stream.EncodeDataAsync(data, endStream: complete && !trailers).ConfigureAwait(false);
                }

                buffer = buffer.Slice(consumed);
                progressed = true;
                if (complete)
                {
                    input.AdvanceTo(buffer.Start);
                    if (trailers)
                    {
                        await stream.EncodeTrailersAsync(head.Trailers).ConfigureAwait(false);
                    }

                    return !stream.IsReset;
                }

                if (stream.IsReset)
                {
                    input.AdvanceTo(buffer.Start);
                    await OnCancelledAsync().ConfigureAwait(false);
                    return false;
                }
            }

            if (result.IsCompleted)
            {
                input.AdvanceTo(buffer.End);
                if (reader.Finish(out _) == Http1BodyStatus.Complete)
                {
                    // A close-delimited body ended with the connection.
                    await stream.EncodeDataAsync(default, endStream: true).ConfigureAwait(false);
                    head.KeepAlive = false;
                    return true;
                }

                _cluster!.Info.Stats.UpstreamCxDestroyRemote.Inc();
                _cluster.Info.Stats.UpstreamRqRxReset.Inc();
                stream.ResetStream(ResponseFlags.UpstreamConnectionTermination, ResponseCodeDetails.UpstreamResetAfterResponseStarted(UpstreamResetReasons.ConnectionTermination));
                Finish(reusable: false);
                return false;
            }

            input.AdvanceTo(buffer.Start, progressed ? buffer.Start : buffer.End);
        }
    }

    /// <summary>After a 101: every upstream byte goes downstream until either side closes.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask RelayTunnelAsync(PipeReader input)
    {
        var stream = _stream;
        while (true)
        {
            var result = await ReadAsync(input).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled || stream.IsReset)
            {
                input.AdvanceTo(buffer.Start);
                Finish(reusable: false);
                return;
            }

            if (!buffer.IsEmpty)
            {
                await stream.EncodeDataAsync(buffer, endStream: false).ConfigureAwait(false);
            }

            input.AdvanceTo(buffer.End);
            if (result.IsCompleted)
            {
                await stream.EncodeDataAsync(default, endStream: true).ConfigureAwait(false);
                Finish(reusable: false);
                return;
            }
        }
    }

    /// <summary>Reads upstream bytes, flushing what is waiting downstream before blocking.</summary>
    private ValueTask<ReadResult> ReadAsync(PipeReader input)
    {
        if (input.TryRead(out var result))
        {
            return ValueTask.FromResult(result);
        }

        var flush = _stream.FlushAsync();
        return flush.IsCompletedSuccessfully ? input.ReadAsync() : FlushThenReadAsync(flush, input);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<ReadResult> FlushThenReadAsync(ValueTask flush, PipeReader input)
    {
        await flush.ConfigureAwait(false);
        return await input.ReadAsync().ConfigureAwait(false);
    }

    /// <summary>A pending upstream read was cancelled: the route timeout fired, or the stream was reset.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask OnCancelledAsync()
    {
        var stream = _stream;
        if (_upstream!.TimedOut && !stream.IsReset)
        {
            _cluster!.Info.Stats.UpstreamRqTimeout.Inc();
            stream.Info.UpstreamHost?.ReportResult(OutlierResult.LocalOriginTimeout);
            if (!stream.ResponseStarted)
            {
                Finish(reusable: false);
                await stream.SendLocalReplyAsync(504, "upstream request timeout", ResponseCodeDetails.UpstreamResponseTimeout, ResponseFlags.UpstreamRequestTimeout).ConfigureAwait(false);
                return;
            }

            stream.ResetStream(ResponseFlags.UpstreamRequestTimeout, ResponseCodeDetails.UpstreamResponseTimeout);
        }
        else
        {
            _cluster!.Info.Stats.UpstreamRqTxReset.Inc();
        }

        Finish(reusable: false);
    }

    /// <summary>The exchange failed before any response byte went downstream: a local reply as Envoy's.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FailBeforeResponseAsync(ResponseFlags flag, string resetReason, int status = 503)
    {
        if (flag is ResponseFlags.UpstreamConnectionFailure or ResponseFlags.UpstreamConnectionTermination)
        {
            _stream.Info.UpstreamHost?.ReportResult(OutlierResult.LocalOriginConnectFailed);
        }

        Finish(reusable: false);
        if (_stream.IsReset)
        {
            return;
        }

        if (_stream.ResponseStarted)
        {
            _stream.ResetStream(flag, ResponseCodeDetails.UpstreamResetAfterResponseStarted(resetReason));
            return;
        }

        await _stream.SendLocalReplyAsync(status, ResetBodyPrefix + UpstreamResetReasons.BodyText(resetReason), ResponseCodeDetails.UpstreamResetBeforeResponseStarted(resetReason), flag).ConfigureAwait(false);
    }

    /// <summary>A circuit breaker refused the request: 503 UO with <c>x-envoy-overloaded: true</c>, as Envoy.</summary>
    private ValueTask SendOverflowAsync() =>
        _stream.SendLocalReplyAsync(503, System.Text.Encoding.UTF8.GetBytes(ResetBodyPrefix + UpstreamResetReasons.BodyText(UpstreamResetReasons.Overflow)),
            ResponseCodeDetails.UpstreamResetBeforeResponseStarted(UpstreamResetReasons.Overflow), ResponseFlags.UpstreamOverflow,
            _factory.SuppressEnvoyHeaders ? [] : [("x-envoy-overloaded", "true")]);

    private void OnStreamResetSignal()
    {
        // Wake the response loop (it sees the reset); the connection is then closed, not reused.
        _upstream?.CancelPendingRead();
    }

    /// <summary>Ends the upstream exchange once: returns or closes the connection, updates host and cluster counters.</summary>
    private void Finish(bool reusable)
    {
        if (_done)
        {
            return;
        }

        _done = true;
        _reusable = reusable;
        _resetRegistration.Dispose();
        if (_cluster is { } cluster && _stream.Info.UpstreamHost is { } host)
        {
            cluster.Info.Stats.UpstreamRqActive.Dec();
            cluster.Info.CircuitBreakers.Default.Requests.Release();
            host.RequestFinished();
        }

        if (_upstream is { } upstream)
        {
            upstream.DisarmTimeout();
            _pool!.Release(upstream, _reusable);
        }
    }
}
