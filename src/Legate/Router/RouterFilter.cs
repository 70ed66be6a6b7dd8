using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Network;
using Legate.Router.Actions;
using Legate.Router.Retry;
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
internal sealed partial class RouterFilter : HttpFilter
{
    private const string ResetBodyPrefix = "upstream connect error or disconnect/reset before headers. reset reason: ";

    private static readonly byte[] s_chunked = "chunked"u8.ToArray();
    private static readonly byte[] s_upgrade = "upgrade"u8.ToArray();
    private static readonly byte[] s_zero = "0"u8.ToArray();
    private static readonly byte[] s_dropOverloadBody = "drop overload"u8.ToArray();
    private static readonly byte[] s_expectedTimeoutName = "x-envoy-expected-rq-timeout-ms"u8.ToArray();

    private readonly RouterFilterFactory _factory;
    private HttpStream _stream = null!;
    private Cluster? _cluster;

    // The cluster of the attempt's host: _cluster, or for an aggregate cluster the listed cluster
    // the host came from (its circuit breakers, pools and TLS apply; the aggregate keeps the rest).
    private Cluster? _target;
    private RouteEntry? _route;
    private Http1ConnectionPool? _pool;
    private Http1UpstreamConnection? _upstream;
    private Http2UpstreamRequest? _http2;
    private CancellationTokenRegistration _resetRegistration;
    private long _requestStart;
    private bool _requestChunked;
    private bool _requestComplete;
    private bool _upgrade;
    private bool _connect;
    private bool _sent1xx;
    private ConnectTunnel? _tunnel;
    private bool _done = true;
    private bool _reusable;

    // Retries (null/unused when the request cannot be retried): the retry state, the copy of the
    // request body kept for replaying it, and the lock that keeps the decode path's body writes and
    // an attempt being (re)started from interleaving.
    private RetryState? _retry;
    private BodyBuffer? _replay;
    private SemaphoreSlim? _sendLock;
    private HttpRequestHead _head = null!;
    private bool _headersEndStream;
    private TimeSpan _globalTimeout;
    private long _globalDeadline;
    private bool _attemptIsPerTry;
    private TimeSpan _backOff;
    private List<Mirror.ShadowRequest>? _shadows;
    private LoadBalancerContext? _lbContext;
    private string? _setCookie;

    /// <summary>Waits for a response's first bytes without an async state machine (see <see cref="StartReceive"/>); kept across streams.</summary>
    private ResponseWaiter? _responseWaiter;
    private PerTryIdleTimer? _idleTimer;

    // internal_redirect_policy: the redirects followed so far and the one the next attempt takes.
    private Redirect.InternalRedirectState? _redirects;

    // hedge_on_per_try_timeout: the attempts left running after their per-try timeout (RouterFilter.Hedging.cs).
    private HedgedAttempts? _hedge;

    public RouterFilter(RouterFilterFactory factory) => _factory = factory;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<FilterHeadersStatus> DecodeHeadersAsync(HttpStream stream, HttpRequestHead headers, bool endStream)
    {
        _stream = stream;
        var stats = stream.Config.Stats;
        stats.RqTotal.Inc();
        var route = stream.Route;
        _route = route;
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
            case RouteActionKind.Redirect:
                stats.RqRedirect.Inc();
                await stream.SendLocalReplyAsync(route.Redirect!.Status, [], ResponseCodeDetails.DirectResponse, ResponseFlags.None, [("location", RedirectLocation(stream, headers, route))]).ConfigureAwait(false);
                return FilterHeadersStatus.StopIteration;
            case RouteActionKind.NotImplemented:
                if (route.FirstNotImplementedHit())
                {
                    stream.Config.Log.Warn($"route '{route.Name}' in virtual host '{route.VirtualHostName}': the '{route.ActionName}' action is not implemented yet; answering 503");
                }

                await stream.SendLocalReplyAsync(503, "route action not implemented yet", "route_action_not_implemented").ConfigureAwait(false);
                return FilterHeadersStatus.StopIteration;
        }

        var clusterName = route.ClusterHeader is { } clusterHeader ? headers.Headers.GetValue(clusterHeader) ?? string.Empty : route.ClusterName;
        var cluster = clusterName.Length == 0 ? null : _factory.ClusterManager.Find(clusterName);
        if (cluster is null)
        {
            stats.NoCluster.Inc();
            await stream.SendLocalReplyAsync(route.ClusterNotFoundStatus, [], ResponseCodeDetails.ClusterNotFound, ResponseFlags.NoClusterFound).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        _cluster = cluster;
        stream.Info.UpstreamCluster = cluster;
        if (_factory.StrictCheckHeaders.Length > 0 && FailsStrictCheck(headers.Headers, _factory.StrictCheckHeaders) is { } invalid)
        {
            await stream.SendLocalReplyAsync(400, $"invalid header '{invalid.Name}' with value '{invalid.Value}'",
                ResponseCodeDetails.InvalidEnvoyRequestHeaders + "{" + invalid.Name + "}", ResponseFlags.InvalidEnvoyRequestHeaders).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        if (cluster.ShouldDropOverload())
        {
            // The load assignment's drop_overloads: shed before any upstream work, as Envoy's checkDropOverload.
            cluster.Info.Stats.UpstreamRqDropOverload.Inc();
            await stream.SendLocalReplyAsync(503, s_dropOverloadBody, ResponseCodeDetails.DropOverload, ResponseFlags.DropOverload,
                _factory.SuppressEnvoyHeaders ? [] : [("x-envoy-drop-overload", "true")]).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        var connect = headers.MethodKind == HttpMethodKind.Connect;
        if ((headers.IsUpgrade || connect) && !IsUpgradeAllowed(stream, headers, route))
        {
            stats.DownstreamRqWsOnNonWsRoute.Inc();
            await stream.SendLocalReplyAsync(403, [], ResponseCodeDetails.UpgradeFailed).ConfigureAwait(false);
            return FilterHeadersStatus.StopIteration;
        }

        if (route.IdleTimeout is { } idleTimeout)
        {
            stream.OverrideIdleTimeout(idleTimeout);
        }

        // Timeouts and retries: x-envoy-upstream-rq-timeout-ms and x-envoy-upstream-rq-per-try-timeout-ms
        // (trusted: the connection manager strips x-envoy-* from external requests) override the route's.
        _globalTimeout = route.Timeout;
        if (_factory.RespectExpectedRqTimeout && headers.Headers.GetValue("x-envoy-expected-rq-timeout-ms") is { } expectedTimeout)
        {
            // An Envoy in front said how long it waits (Envoy's finalTimeout): that header wins and
            // x-envoy-upstream-rq-timeout-ms is left alone. The attempt sets the header anew.
            if (ParseMilliseconds(expectedTimeout) is { } expected)
            {
                _globalTimeout = expected;
            }
        }
        else if (TakeMilliseconds(headers.Headers, "x-envoy-upstream-rq-timeout-ms") is { } headerTimeout)
        {
            _globalTimeout = headerTimeout;
        }

        var perTryOverride = TakeMilliseconds(headers.Headers, "x-envoy-upstream-rq-per-try-timeout-ms") ?? TimeSpan.Zero;
        _upgrade = headers.IsUpgrade;
        _connect = connect;
        if (route.TerminatesConnect && (connect || (route.ConnectAllowsPost && headers.MethodKind == HttpMethodKind.Post)))
        {
            // connect_config: the router terminates the CONNECT (or, with allow_post, a POST) and relays its payload as raw TCP.
            _tunnel = new ConnectTunnel(stream, cluster, _factory.SuppressEnvoyHeaders, _factory.DynamicStats, route.ConnectProxyProtocol, this);
            stream.SetPendingResponse(_tunnel.RunAsync());
            return FilterHeadersStatus.StopIteration;
        }

        if (!_upgrade && !connect)
        {
            var hedge = TakeHedgeOnPerTryTimeout(headers.Headers, route.HedgeOnPerTryTimeout);
            _retry = RetryState.Create(route.RetryPolicy, headers, cluster, route.Priority, perTryOverride);
            if (hedge)
            {
                StartHedging(headers);
            }
        }

        ApplyMaxStreamDuration(stream, headers, route);
        _lbContext = _retry;
        if (route.HashPolicy is { } hashPolicy && hashPolicy.Generate(stream, headers, out _setCookie) is { } hash)
        {
            // The hash is computed on the request as received (before the route's rewrites), as Envoy's computeHashKey.
            _lbContext ??= new RouterLoadBalancerContext();
            _lbContext.HashKey = hash;
        }

        if (route.MetadataMatch is { } metadataMatch)
        {
            // metadata_match: the subset load balancer's criteria.
            _lbContext ??= new RouterLoadBalancerContext();
            _lbContext.MetadataMatch = metadataMatch;
        }

        if (cluster is OriginalDstCluster)
        {
            // ORIGINAL_DST picks the host from the override header or the connection's restored destination.
            _lbContext ??= new RouterLoadBalancerContext();
            _lbContext.DownstreamHeaders = headers.Headers;
            _lbContext.DownstreamOriginalDestination = stream.Info.DownstreamLocalAddress as Network.OriginalDestinationEndPoint;
            _lbContext.DownstreamDynamicMetadata = stream.Info.DynamicMetadata;
            _lbContext.DownstreamConnectionDynamicMetadata = stream.Info.ConnectionDynamicMetadata;
        }

        _head = headers;
        _headersEndStream = endStream;
        _requestComplete = endStream;
        _requestStart = EventClock.Timestamp;
        _globalDeadline = _globalTimeout > TimeSpan.Zero ? _requestStart + (long)(_globalTimeout.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        if (!endStream)
        {
            // The body streams to the attempt; keep a copy to replay on a retry or an internal redirect (up to the buffer limit).
            _sendLock = new SemaphoreSlim(1, 1);
            if (_retry is not null || route.InternalRedirect is not null)
            {
                _replay = new BodyBuffer();
            }
        }

        // The exchange runs on while this returns: the stream's codec loop awaits it, so the filter
        // chain's state machines are not held (allocated) for the upstream round trip. With a body
        // still to come, the response may start before the request ends (and must, for upgrades).
        if (endStream && _retry is null && route.InternalRedirect is null)
        {
            // Without a retry policy there is one attempt: no loop (and no state machine) around it.
            var attempt = AttemptAsync(first: true);
            if (attempt.IsCompletedSuccessfully)
            {
                _ = attempt.Result;
            }
            else
            {
                stream.SetPendingResponse(attempt);
            }
        }
        else
        {
            stream.SetPendingResponse(RunAttemptsAsync());
        }

        return FilterHeadersStatus.StopIteration;
    }

    /// <summary>Attempts until one answers (or fails for good), waiting the back-off between them (the result means nothing).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> RunAttemptsAsync()
    {
        var stream = _stream;
        try
        {
            var first = true;
            while (true)
            {
                if (!first && Stopwatch.GetTimestamp() >= _globalDeadline)
                {
                    await GlobalTimeoutAsync().ConfigureAwait(false);
                    return true;
                }

                if (!await (_hedge?.TakeReady() is { } winner ? AdoptAsync(winner) : AttemptAsync(first)).ConfigureAwait(false))
                {
                    return true;
                }

                first = false;
                var wait = _backOff;
                var remaining = _globalDeadline == long.MaxValue ? wait : Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _globalDeadline);
                try
                {
                    var delay = wait < remaining ? wait : (remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
                    await (_hedge is { } hedge ? hedge.DelayAsync(delay, _factory.Time, stream.ResetToken) : Task.Delay(delay, _factory.Time, stream.ResetToken)).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return true;
                }

                if (stream.IsReset)
                {
                    return true;
                }
            }
        }
        finally
        {
            _retry?.ReleaseSlot();
            _hedge?.DiscardAll();
        }
    }

    /// <summary>One upstream attempt: host, connection, request head and body so far, response. True to retry.</summary>
    /// <summary>One upstream attempt: host, connection, request head and body so far, response. True to retry.</summary>
    /// <remarks>
    /// Split in two so that an attempt whose sending completes at once (a pooled connection, a
    /// flush that did not wait) costs one async state machine, the response's, not two.
    /// </remarks>
    private ValueTask<bool> AttemptAsync(bool first)
    {
        var send = SendAttemptAsync(first);
        if (send.IsCompletedSuccessfully)
        {
            var step = send.Result;
            return step == AttemptStep.Receive ? StartReceive() : new ValueTask<bool>(step == AttemptStep.Retry);
        }

        return AwaitSendThenReceiveAsync(send);
    }

    /// <summary>
    /// The response read. When the response has not started arriving (the usual case right after
    /// sending), the wait for its first bytes goes through the filter's reusable
    /// <see cref="ResponseWaiter"/> rather than the read's async state machine, which would be
    /// allocated for the whole round trip.
    /// </summary>
    private ValueTask<bool> StartReceive()
    {
        var input = _upstream!.Input;
        var read = ReadAsync(input);
        if (read.IsCompleted)
        {
            try
            {
                ResponseWaiter.Rewind(input, read.GetAwaiter().GetResult());
            }
            catch (Exception)
            {
                // A broken connection: the response read's own read fails the same way and handles it.
            }

            return ReceiveResponseAsync();
        }

        _responseWaiter ??= new ResponseWaiter(ReceiveResponseAsync);
        return _responseWaiter.Start(input, read);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> AwaitSendThenReceiveAsync(ValueTask<AttemptStep> send)
    {
        var step = await send.ConfigureAwait(false);
        return step == AttemptStep.Receive ? await ReceiveResponseAsync().ConfigureAwait(false) : step == AttemptStep.Retry;
    }

    private enum AttemptStep
    {
        /// <summary>The request was answered (or failed for good).</summary>
        Done,

        /// <summary>Try again after the back-off.</summary>
        Retry,

        /// <summary>The request went out: read the response.</summary>
        Receive,
    }

    /// <summary>The sending half of an attempt.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<AttemptStep> SendAttemptAsync(bool first)
    {
        if (_redirects is { Pending: { } redirect })
        {
            _redirects.Pending = null;
            if (await FollowInternalRedirectAsync(redirect).ConfigureAwait(false))
            {
                return AttemptStep.Done;
            }
        }

        var stream = _stream;
        var cluster = _cluster!;
        var route = _route!;
        var headers = _head;
        if (!first && _replay is null && !_headersEndStream)
        {
            // The body outgrew the retry buffer while this retry waited: nothing to replay (Envoy's 507).
            await stream.SendLocalReplyAsync(507, "exceeded request buffer limit while retrying upstream", ResponseCodeDetails.RequestPayloadExceededRetryBufferLimit).ConfigureAwait(false);
            return AttemptStep.Done;
        }

        var host = cluster.ChooseHost(_lbContext, out var target);
        if (host is null)
        {
            cluster.Info.Stats.UpstreamCxNone.Inc();
            await stream.SendLocalReplyAsync(503, "no healthy upstream", ResponseCodeDetails.NoHealthyUpstream, ResponseFlags.NoHealthyUpstream).ConfigureAwait(false);
            return AttemptStep.Done;
        }

        // max_requests (per attempt, as Envoy's pools check it) of the route's priority's thresholds on
        // the cluster the attempt goes to: released in Finish (or by the HTTP/2 request's own finish).
        _target = target;
        if (!target.Info.CircuitBreakers.For(route.Priority).Requests.TryAcquire())
        {
            target.Info.Stats.UpstreamRqPendingOverflow.Inc();
            await SendOverflowAsync().ConfigureAwait(false);
            return AttemptStep.Done;
        }

        stream.Info.UpstreamHost = host;
        _retry?.OnHostChosen(host);
        if (first)
        {
            RequestFinalizer.FinalizeRequestHeaders(stream, headers, route, insertOriginalPath: !_factory.SuppressEnvoyHeaders);
            if (route.MirrorPolicies is { } mirrors)
            {
                StartShadows(mirrors, headers);
            }
        }

        RequestFinalizer.ApplyAutoHostRewrite(headers, route, host);
        var attempt = ++stream.Info.AttemptCount;
        BeginUpstreamLogAttempt();
        if (route.IncludeRequestAttemptCount)
        {
            headers.Headers.Set("x-envoy-attempt-count", attempt.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var timeout = AttemptTimeout(out _attemptIsPerTry);

        // With hedging the upstream may take the whole route timeout (Envoy's setTimeoutHeaders).
        var expected = _hedge is not null && _attemptIsPerTry ? RouteTimeLeft() : timeout;
        if (!_factory.SuppressEnvoyHeaders && expected > TimeSpan.Zero)
        {
            headers.Headers.RemoveUnknown("x-envoy-expected-rq-timeout-ms");
            headers.Headers.Add(s_expectedTimeoutName, expected == route.Timeout ? route.ExpectedTimeoutValue : System.Text.Encoding.ASCII.GetBytes(((long)expected.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        stream.Trace?.OnUpstreamAttempt(stream, headers, cluster, _factory.StartChildSpan);
        if (Http2UpstreamRequest.Applies(target, stream, headers))
        {
            return await AttemptHttp2Async(target, host, timeout).ConfigureAwait(false) ? AttemptStep.Retry : AttemptStep.Done;
        }

        var clusterStats = target.Info.Stats;
        if (_sendLock is { } sendLock)
        {
            await sendLock.WaitAsync().ConfigureAwait(false);
        }

        var locked = _sendLock is not null;
        try
        {
            _done = false;
            _requestChunked = false;
            clusterStats.UpstreamRqTotal.Inc();
            clusterStats.UpstreamRqActive.Inc();
            host.RequestStarted();
            _resetRegistration = stream.ResetToken.UnsafeRegister(static state => ((RouterFilter)state!).OnStreamResetSignal(), this);
            // A pool per routing priority (slots 3 and 4 for HIGH), as Envoy: its breakers are that priority's.
            var high = route.Priority == Envoy.Config.Core.V3.RoutingPriority.High;
            _pool = target.Info.PoolsPerServerName
                ? host.ConnectionPool(high ? 4 : 2, static (h, state) => new Http1PoolsByServerName(h, state.target, RouterFilterFactory.TransportFor(state.target.Info.BufferLimitBytes), state.Time, state.Priority), (target, _factory.Time, route.Priority)).For(target.Info.AutoServerName(_head) ?? string.Empty)
                : host.ConnectionPool(high ? 3 : 0, static (h, state) => new Http1ConnectionPool(h, state.target, RouterFilterFactory.TransportFor(state.target.Info.BufferLimitBytes), state.Time, priority: state.Priority), (target, _factory.Time, route.Priority));
            try
            {
                var (source, destination, tlvs) = stream.ProxyProtocolState;
                _upstream = await _pool.AcquireAsync(stream.ResetToken, source, destination, tlvs).ConfigureAwait(false);
            }
            catch (UpstreamConnectException ex)
            {
                host.ReportResult(OutlierResult.LocalOriginConnectFailed);
                stream.Info.UpstreamTransportFailureReason = ex.TransportFailureReason;
                ReleaseLock(ref locked);
                return await FailOrRetryAsync(AttemptFailure.ConnectFailure, ResponseFlags.UpstreamConnectionFailure, ex.ResetReason).ConfigureAwait(false) ? AttemptStep.Retry : AttemptStep.Done;
            }
            catch (UpstreamOverflowException)
            {
                Finish(reusable: false);
                await SendOverflowAsync().ConfigureAwait(false);
                return AttemptStep.Done;
            }
            catch (OperationCanceledException)
            {
                Finish(reusable: false);
                return AttemptStep.Done;
            }

            var upstream = _upstream;
            _hedge?.OnAttemptStarted(upstream);
            host.ReportResult(OutlierResult.LocalOriginConnectSuccess);
            upstream.Requests++;
            stream.Info.UpstreamRemoteAddress = upstream.Address;
            stream.Info.UpstreamLocalAddress = upstream.LocalAddress;
            stream.Info.UpstreamTls = upstream.Tls;
            stream.Info.UpstreamProtocol = "HTTP/1.1";
            LogUpstreamPoolReady();
            upstream.ArmTimeout(timeout);
            if (_requestComplete)
            {
                StartHttp1IdleTimer();
            }

            WriteRequestHead(upstream.Output, headers, _headersEndStream);
            if (_replay is { IsEmpty: false } replay)
            {
                WriteBody(upstream.Output, replay.Data);
            }

            if (_requestComplete && !_headersEndStream && _requestChunked)
            {
                ChunkedEncoder.WriteLastChunk(upstream.Output);
            }

            stream.Info.FirstUpstreamTxByteSent = EventClock.Timestamp;
            if (_requestComplete)
            {
                stream.Info.LastUpstreamTxByteSent = stream.Info.FirstUpstreamTxByteSent;
            }

            if (!await FlushUpstreamAsync().ConfigureAwait(false))
            {
                ReleaseLock(ref locked);
                return await FailOrRetryAsync(AttemptFailure.Reset, ResponseFlags.UpstreamConnectionTermination, UpstreamResetReasons.ConnectionTermination).ConfigureAwait(false) ? AttemptStep.Retry : AttemptStep.Done;
            }
        }
        finally
        {
            ReleaseLock(ref locked);
        }

        return AttemptStep.Receive;
    }

    /// <summary>
    /// The route's max_stream_duration (Envoy's refreshDurationTimeout): a gRPC request's
    /// grpc-timeout when grpc_timeout_header_max is set (capped by it unless 0, minus
    /// grpc_timeout_header_offset), else max_stream_duration (0 disables).
    /// </summary>
    private static void ApplyMaxStreamDuration(HttpStream stream, HttpRequestHead headers, RouteEntry route)
    {
        if (route.GrpcTimeoutHeaderMax is { } max && GrpcTimeout.Parse(headers.Headers.GetValue("grpc-timeout")) is { } grpc)
        {
            var timeout = grpc;
            if (max > TimeSpan.Zero && timeout > max)
            {
                timeout = max;
            }

            if (timeout > TimeSpan.Zero && route.GrpcTimeoutHeaderOffset is { } offset)
            {
                timeout = offset < timeout ? timeout - offset : TimeSpan.Zero;
            }

            if (timeout > TimeSpan.Zero)
            {
                stream.ArmMaxDuration(timeout);
            }

            return;
        }

        if (route.MaxStreamDuration is { } duration && duration > TimeSpan.Zero)
        {
            stream.ArmMaxDuration(duration);
        }
    }

    /// <summary>Carries the request hash when no retry state does.</summary>
    private sealed class RouterLoadBalancerContext : LoadBalancerContext
    {
    }

    /// <summary>Shadow copies for request_mirror_policies: sent when the request is complete, never awaited.</summary>
    private void StartShadows(Mirror.MirrorPolicy[] mirrors, HttpRequestHead headers)
    {
        foreach (var mirror in mirrors)
        {
            if (Mirror.ShadowRequest.Begin(mirror, _stream, headers, _requestComplete, _factory.ClusterManager, _globalTimeout) is { } shadow && !_requestComplete)
            {
                (_shadows ??= new List<Mirror.ShadowRequest>(mirrors.Length)).Add(shadow);
            }
        }
    }

    /// <summary>Request body for the shadows; at the end of the request they go out.</summary>
    private void FeedShadows(BodyBuffer? data, bool endStream)
    {
        if (_shadows is not { } shadows)
        {
            return;
        }

        foreach (var shadow in shadows)
        {
            if (data is { IsEmpty: false })
            {
                shadow.Append(data.Data);
            }

            if (endStream)
            {
                shadow.Send();
            }
        }

        if (endStream)
        {
            _shadows = null;
        }
    }

    private void ReleaseLock(ref bool locked)
    {
        if (locked)
        {
            locked = false;
            _sendLock!.Release();
        }
    }

    /// <summary>An attempt over upstream HTTP/2 (see <see cref="Http2UpstreamRequest"/>); true to retry.</summary>
    private async ValueTask<bool> AttemptHttp2Async(Cluster cluster, Host host, TimeSpan timeout)
    {
        var http2 = new Http2UpstreamRequest(_factory, _stream, cluster, host, this, timeout, _route!.Priority);
        Task run;
        if (_sendLock is { } sendLock)
        {
            await sendLock.WaitAsync().ConfigureAwait(false);
        }

        try
        {
            _http2 = http2;
            run = await http2.StartAsync(_head, _headersEndStream, _replay?.Data ?? default, _requestComplete).ConfigureAwait(false);
        }
        finally
        {
            _sendLock?.Release();
        }

        await run.ConfigureAwait(false);
        return http2.Retried;
    }

    /// <summary>This attempt's timeout: the per-try timeout when it comes first, else what is left of the route timeout.</summary>
    private TimeSpan AttemptTimeout(out bool perTry)
    {
        perTry = false;
        var global = _globalDeadline == long.MaxValue ? TimeSpan.Zero : Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _globalDeadline);
        if (_globalDeadline != long.MaxValue && global <= TimeSpan.Zero)
        {
            global = TimeSpan.FromMilliseconds(1);
        }

        if (_retry is { PerTryTimeout: var perTryTimeout } && perTryTimeout > TimeSpan.Zero && (global == TimeSpan.Zero || perTryTimeout < global))
        {
            perTry = true;
            return perTryTimeout;
        }

        return _stream.Info.AttemptCount <= 1 && _globalDeadline != long.MaxValue ? _globalTimeout : global;
    }

    /// <summary>The attempt's per_try_idle_timeout timer (route or virtual-host retry policy, with or without retry conditions, as Envoy), or null.</summary>
    internal PerTryIdleTimer? StartIdleTimer(Action<object> onFired, object state)
    {
        var idle = _route!.RetryPolicy?.PerTryIdleTimeout ?? TimeSpan.Zero;
        return idle > TimeSpan.Zero && !_upgrade ? new PerTryIdleTimer(_factory.Time, idle, onFired, state) : null;
    }

    /// <summary>The HTTP/1.1 attempt has its connection and the whole request: per_try_idle_timeout starts (as Envoy's, not before).</summary>
    private void StartHttp1IdleTimer()
    {
        if (_idleTimer is not null || _done || StartIdleTimer(static state => ((RouterFilter)state)._upstream?.CancelPendingRead(), this) is not { } timer)
        {
            return;
        }

        // The response may end (Finish) on another thread meanwhile: whichever of the two comes
        // second sees the other and stops the timer, so it never outlives its attempt.
        Interlocked.Exchange(ref _idleTimer, timer);
        if (_done)
        {
            Interlocked.Exchange(ref _idleTimer, null)?.Stop();
        }
    }

    private static TimeSpan? TakeMilliseconds(HttpHeaderMap headers, string name)
    {
        var value = headers.GetValue(name);
        if (value is null)
        {
            return null;
        }

        headers.Remove(name);
        return ParseMilliseconds(value);
    }

    /// <summary>A timeout header's milliseconds; values beyond 2^32-1 ms (49 days) are capped rather than overflow.</summary>
    private static TimeSpan? ParseMilliseconds(string value) =>
        ulong.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms)
            ? TimeSpan.FromMilliseconds(Math.Min(ms, uint.MaxValue))
            : null;

    /// <summary>
    /// The first of <paramref name="names"/> present with a value Envoy's StrictHeaderChecker rejects
    /// (timeouts: unsigned 64-bit milliseconds; max retries: unsigned 32-bit; retry-on lists: the
    /// header's own names only), or null.
    /// </summary>
    private static (string Name, string Value)? FailsStrictCheck(HttpHeaderMap headers, string[] names)
    {
        foreach (var name in names)
        {
            if (headers.GetValue(name) is not { } value)
            {
                continue;
            }

            var valid = name switch
            {
                "x-envoy-max-retries" => uint.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _),
                "x-envoy-retry-on" => Retry.RetryOnParser.IsStrictlyValid(value, grpc: false),
                "x-envoy-retry-grpc-on" => Retry.RetryOnParser.IsStrictlyValid(value, grpc: true),
                _ => ulong.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _),
            };
            if (!valid)
            {
                return (name, value);
            }
        }

        return null;
    }

    /// <summary>
    /// A response head arrived: retried when the conditions say so (and retries and the retry budget
    /// allow), else forwarded (flagged URX / UO when it was retriable but could not be retried).
    /// </summary>
    internal bool ShouldRetryHeaders(HttpResponseHead head)
    {
        if (RetryOnHeaders(head))
        {
            return true;
        }

        // An internal redirect is taken like a retry: this answer is dropped and the next attempt
        // goes where the location points (applied once this attempt has finished).
        if (_route!.InternalRedirect is not null
            && Redirect.InternalRedirect.TryPrepare(_stream, _head, head, _route, _cluster!, _redirects ??= new Redirect.InternalRedirectState(),
                _headersEndStream || (_requestComplete && _replay is not null), _factory.ClusterManager) is { } target)
        {
            _redirects.Pending = target;
            _backOff = TimeSpan.Zero;
            return true;
        }

        return false;
    }

    /// <summary>The next attempt serves the redirected request: the new route's cluster, retry policy, timeout, rewrites and headers.</summary>
    private void FollowInternalRedirect(RouteEntry route, Cluster cluster)
    {
        _route = route;
        _cluster = cluster;
        _stream.Info.UpstreamCluster = cluster;
        _retry?.ReleaseSlot();
        _retry = RetryState.Create(route.RetryPolicy, _head, cluster, route.Priority, TimeSpan.Zero);
        _hedge?.DiscardAll();
        _hedge = null;
        if (route.HedgeOnPerTryTimeout)
        {
            StartHedging(_head);
        }

        _lbContext = _retry;
        if (route.HashPolicy is { } hashPolicy && hashPolicy.Generate(_stream, _head, out _setCookie) is { } hash)
        {
            _lbContext ??= new RouterLoadBalancerContext();
            _lbContext.HashKey = hash;
        }

        _globalTimeout = route.Timeout;
        _globalDeadline = _globalTimeout > TimeSpan.Zero ? Stopwatch.GetTimestamp() + (long)(_globalTimeout.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        RequestFinalizer.FinalizeRequestHeaders(_stream, _head, route, insertOriginalPath: !_factory.SuppressEnvoyHeaders);
    }

    private bool RetryOnHeaders(HttpResponseHead head)
    {
        if (_retry is not { } retry)
        {
            return false;
        }

        var stats = _cluster!.Info.Stats;
        if (_replay is null && !_headersEndStream || !retry.IsRetriable(head))
        {
            retry.ReleaseSlot();
            if (_stream.Info.AttemptCount > 1)
            {
                stats.UpstreamRqRetrySuccess.Inc();
            }

            return false;
        }

        if (_hedge is { ActiveRetried: true })
        {
            // An attempt adopted after its per-try timeout was retried already: never again (Envoy).
            return false;
        }

        switch (retry.Decide(stats))
        {
            case RetryDecision.Retry:
                _backOff = retry.NextBackOff(head, stats);
                return true;
            case RetryDecision.LimitExceeded:
                _stream.Info.SetResponseFlag(ResponseFlags.UpstreamRetryLimitExceeded);
                return false;
            case RetryDecision.Overflow:
                _stream.Info.SetResponseFlag(ResponseFlags.UpstreamOverflow);
                return false;
            default:
                return false;
        }
    }

    /// <summary>
    /// An attempt failed before its response head: retried when retriable, else Envoy's local reply
    /// (or a reset once the response started). True to retry. Ends the attempt either way.
    /// </summary>
    internal async ValueTask<bool> FailOrRetryAsync(AttemptFailure failure, ResponseFlags flag, string resetReason, int status = 503, bool retry = true)
    {
        NoteAttemptFailure(flag, resetReason);
        Finish(reusable: false);
        var stream = _stream;
        if (retry && !stream.IsReset && !stream.ResponseStarted && CanRetry(failure))
        {
            var stats = _cluster!.Info.Stats;
            switch (_retry!.Decide(stats))
            {
                case RetryDecision.Retry:
                    _backOff = _retry.NextBackOff(null, stats);
                    return true;
                case RetryDecision.LimitExceeded:
                    stream.Info.SetResponseFlag(ResponseFlags.UpstreamRetryLimitExceeded);
                    break;
                case RetryDecision.Overflow:
                    stream.Info.SetResponseFlag(ResponseFlags.UpstreamOverflow);
                    break;
            }
        }

        if (_hedge is { Count: > 0 } && flag != ResponseFlags.UpstreamRequestTimeout && !stream.IsReset && !stream.ResponseStarted)
        {
            // Attempts left running after their per-try timeout may still answer: wait for them (Envoy).
            return await AwaitParkedAsync(flag, resetReason, status).ConfigureAwait(false);
        }

        if (failure is AttemptFailure.PerTryTimeout or AttemptFailure.PerTryIdleTimeout || flag == ResponseFlags.UpstreamRequestTimeout)
        {
            if (!stream.ResponseStarted && !stream.IsReset)
            {
                var details = failure switch
                {
                    AttemptFailure.PerTryTimeout => ResponseCodeDetails.UpstreamPerTryTimeout,
                    AttemptFailure.PerTryIdleTimeout => ResponseCodeDetails.UpstreamPerTryIdleTimeout,
                    _ => ResponseCodeDetails.UpstreamResponseTimeout,
                };
                await stream.SendLocalReplyAsync(504, "upstream request timeout", details, ResponseFlags.UpstreamRequestTimeout).ConfigureAwait(false);
            }
            else if (!stream.IsReset)
            {
                stream.ResetStream(ResponseFlags.UpstreamRequestTimeout, ResponseCodeDetails.UpstreamResponseTimeout);
            }

            return false;
        }

        await FailBeforeResponseAsync(flag, resetReason, status).ConfigureAwait(false);
        return false;
    }

    private bool CanRetry(AttemptFailure failure) =>
        _retry is { } retry && (_replay is not null || _headersEndStream) && retry.IsRetriable(failure) && _hedge is not { ActiveRetried: true };

    /// <summary>The route timeout ran out between attempts (during a back-off).</summary>
    private async ValueTask GlobalTimeoutAsync()
    {
        _cluster!.Info.Stats.UpstreamRqTimeout.Inc();
        _hedge?.DiscardAll(_cluster.Info.Stats);
        if (!_stream.ResponseStarted && !_stream.IsReset)
        {
            await _stream.SendLocalReplyAsync(504, "upstream request timeout", ResponseCodeDetails.UpstreamResponseTimeout, ResponseFlags.UpstreamRequestTimeout).ConfigureAwait(false);
        }
    }

    /// <summary>Request body bytes to an HTTP/1.1 upstream, chunk-encoded when the request is chunked.</summary>
    private void WriteBody(PipeWriter output, in ReadOnlySequence<byte> data)
    {
        if (_requestChunked)
        {
            ChunkedEncoder.WriteChunk(output, data);
        }
        else
        {
            foreach (var segment in data)
            {
                output.Write(segment.Span);
            }
        }
    }

    /// <summary>
    /// Keeps a copy of request body bytes for a retry. Past the buffer limit retries are off for this
    /// request (Envoy's retry_or_shadow_abandoned); a retry already waiting its back-off then has
    /// nothing to replay and is answered 507, as Envoy does.
    /// </summary>
    private void KeepForReplay(BodyBuffer data)
    {
        var replay = _replay;
        if (replay is null)
        {
            return;
        }

        if (replay.Length + data.Length > _stream.DecoderBufferLimit)
        {
            _replay = null;
            _cluster!.Info.Stats.RetryOrShadowAbandoned.Inc();
        }
        else
        {
            replay.Append(data.Data);
        }


    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<FilterDataStatus> DecodeDataAsync(HttpStream stream, BodyBuffer data, bool endStream)
    {
        if (_tunnel is { } tunnel)
        {
            await tunnel.DecodeDataAsync(data.Data, endStream).ConfigureAwait(false);
            return FilterDataStatus.StopIterationNoBuffer;
        }

        var sendLock = _sendLock;
        if (sendLock is null)
        {
            return FilterDataStatus.StopIterationNoBuffer;
        }

        await sendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (endStream)
            {
                _requestComplete = true;
            }

            if (!data.IsEmpty)
            {
                KeepForReplay(data);
            }

            FeedShadows(data, endStream);

            if (_http2 is { } http2)
            {
                await http2.DecodeDataAsync(data, endStream).ConfigureAwait(false);
            }
            else if (_upstream is { } upstream && !_done && !upstream.IsClosed)
            {
                await SendBodyAsync(upstream, data, endStream).ConfigureAwait(false);
                if (endStream)
                {
                    StartHttp1IdleTimer();
                }
            }
        }
        finally
        {
            sendLock.Release();
        }

        if (endStream)
        {
            stream.Info.LastUpstreamTxByteSent = EventClock.Timestamp;
        }

        return FilterDataStatus.StopIterationNoBuffer;
    }

    private async ValueTask SendBodyAsync(Http1UpstreamConnection upstream, BodyBuffer data, bool endStream)
    {
        try
        {
            var output = upstream.Output;
            if (!data.IsEmpty)
            {
                WriteBody(output, data.Data);
            }

            if (endStream && _requestChunked)
            {
                ChunkedEncoder.WriteLastChunk(output);
            }
        }
        catch (InvalidOperationException)
        {
            // The attempt ended meanwhile (its connection is closed); a retry replays the body.
            return;
        }

        await FlushUpstreamAsync().ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<FilterTrailersStatus> DecodeTrailersAsync(HttpStream stream, HttpHeaderMap trailers)
    {
        var sendLock = _sendLock;
        if (sendLock is null)
        {
            return FilterTrailersStatus.StopIteration;
        }

        await sendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _requestComplete = true;
            FeedShadows(null, endStream: true);
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
                try
                {
                    ChunkedEncoder.WriteLastChunk(upstream.Output, _target!.Info.Http1EnableTrailers ? trailers : null);
                }
                catch (InvalidOperationException)
                {
                    return FilterTrailersStatus.StopIteration;
                }
            }

            await FlushUpstreamAsync().ConfigureAwait(false);
            StartHttp1IdleTimer();
        }
        finally
        {
            sendLock.Release();
        }

        stream.Info.LastUpstreamTxByteSent = EventClock.Timestamp;
        return FilterTrailersStatus.StopIteration;
    }

    /// <summary>
    /// Every response the router produces (upstream, direct response, redirect, its own local
    /// replies) gets the route's response header mutations, as Envoy's finalizeResponseHeaders;
    /// a local reply of a filter that ran before the router never reaches here with a route.
    /// </summary>
    public override ValueTask<FilterHeadersStatus> EncodeHeadersAsync(HttpStream stream, HttpResponseHead headers, bool endStream)
    {
        if (_setCookie is { } setCookie)
        {
            // A cookie hash policy generated the affinity cookie: the client keeps it from now on.
            headers.Headers.Add("set-cookie", setCookie);
        }

        if (_route?.ResponseHeaderMutations is { } mutations)
        {
            // As Envoy: the response code is known to the formatter (%RESPONSE_CODE%) by now.
            stream.Info.ResponseCode = headers.StatusCode;
            HeaderMutation.ApplyAll(mutations, stream, headers.Headers);
        }

        return ValueTask.FromResult(FilterHeadersStatus.Continue);
    }

    /// <summary>
    /// Serves the connection's next stream when this one used nothing that can outlive it (an
    /// HTTP/2 exchange, shadows, retries, a streamed body): every per-stream field goes back to its
    /// initial value. RouterFilterRecycleTests lists the fields, so a new one cannot be forgotten here.
    /// </summary>
    public override bool TryRecycle()
    {
        if (!_done || _http2 is not null || _shadows is not null || _retry is not null || _sendLock is not null || _replay is not null || _tunnel is not null || _idleTimer is not null)
        {
            return false;
        }

        _stream = null!;
        _cluster = null;
        _target = null;
        _route = null;
        _redirects = null;
        _pool = null;
        _upstream = null;
        _resetRegistration = default;
        _requestStart = 0;
        _requestChunked = false;
        _requestComplete = false;
        _upgrade = false;
        _connect = false;
        _sent1xx = false;
        _reusable = false;
        _head = null!;
        _headersEndStream = false;
        _globalTimeout = default;
        _globalDeadline = 0;
        _attemptIsPerTry = false;
        _backOff = default;
        _lbContext = null;
        _setCookie = null;
        _hedge = null;
        ResetUpstreamLogState();

        // _responseWaiter stays: it is idle once the stream's response read ended, and reusing it is its point.
        return true;
    }

    public override void OnDestroy()
    {
        StopAttemptLogTimer();
        if (_shadows is { } shadows)
        {
            foreach (var shadow in shadows)
            {
                shadow.Abandon();
            }
        }

        _retry?.ReleaseSlot();
        _hedge?.DiscardAll();
        _replay?.Clear();
        _tunnel?.OnDestroy();
        if (_http2 is { } http2)
        {
            http2.OnDestroy();
        }

        if (!_done && _cluster is not null)
        {
            Finish(reusable: false);
        }
    }

    /// <summary>The redirect's location; the scheme defaults to the request's x-forwarded-proto (set by the connection manager).</summary>
    private static string RedirectLocation(HttpStream stream, HttpRequestHead headers, RouteEntry route)
    {
        var proto = headers.Headers.GetValue("x-forwarded-proto") ?? headers.Scheme ?? "http";
        return route.Redirect!.Location(headers.Path, stream.AuthorityString(), proto);
    }

    private static bool IsUpgradeAllowed(HttpStream stream, HttpRequestHead headers, RouteEntry route)
    {
        if (headers.MethodKind == HttpMethodKind.Connect)
        {
            return stream.Config.IsUpgradeAllowed("CONNECT", route);
        }

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
        else if (!endStream && !headers.Contains(KnownHeader.ContentLength) && !_connect)
        {
            // A CONNECT's payload is raw tunnel bytes, never chunked.
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

    /// <summary>Reads the attempt's response and relays it downstream; true when the attempt is to be retried instead.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ReceiveResponseAsync()
    {
        var upstream = _upstream!;
        var stream = _stream;
        var input = upstream.Input;
        var head = upstream.ResponseHead;
        upstream.Parser.Reset();
        try
        {
            // The head (1xx heads before it: see InformationalResponses).
            while (true)
            {
                var result = await ReadAsync(input).ConfigureAwait(false);
                _idleTimer?.Touch();
                if (result.IsCanceled)
                {
                    input.AdvanceTo(result.Buffer.Start);
                    return await OnCancelledAsync().ConfigureAwait(false);
                }

                var buffer = result.Buffer;
                var status = upstream.Parser.ParseHead(buffer, head, stream.RequestHeaders.MethodKind, _upgrade, out var consumed, out var error);
                if (status == Http1ParseStatus.Complete)
                {
                    input.AdvanceTo(buffer.GetPosition(consumed));
                    if (head.IsInformational)
                    {
                        if (!_sent1xx && InformationalResponses.ShouldForward(head.StatusCode, stream.Config.Proxy100Continue))
                        {
                            // 100 (proxy_100_continue), 102, 103: the first one goes downstream as is.
                            _sent1xx = true;
                            ConnectionManagerUtility.StripHopByHop(head.Headers, keepUpgrade: false);
                            await stream.Encode1xxHeadersAsync(head).ConfigureAwait(false);
                        }

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
                    return await FailOrRetryAsync(AttemptFailure.Reset, ResponseFlags.UpstreamProtocolError, UpstreamResetReasons.ProtocolError, 502).ConfigureAwait(false);
                }

                if (result.IsCompleted)
                {
                    input.AdvanceTo(buffer.End);
                    _cluster!.Info.Stats.ConnectionDestroyedWithActiveRequest(remote: true);
                    _cluster.Info.Stats.UpstreamRqRxReset.Inc();
                    return await FailOrRetryAsync(AttemptFailure.Reset, ResponseFlags.UpstreamConnectionTermination, UpstreamResetReasons.ConnectionTermination).ConfigureAwait(false);
                }

                input.AdvanceTo(buffer.Start, buffer.End);
            }

            stream.Info.FirstUpstreamRxByteReceived = EventClock.Timestamp;
            _attemptResponse = head;
            stream.Info.UpstreamHost?.ReportHttpCode(head.StatusCode);
            stream.Info.UpstreamHost?.CheckImmediateHealthCheckFail(head.Headers);
            var switching = head.StatusCode == 101;
            if (switching && !_upgrade)
            {
                await FailBeforeResponseAsync(ResponseFlags.UpstreamProtocolError, UpstreamResetReasons.ProtocolError, 502).ConfigureAwait(false);
                return false;
            }

            // A 2xx to a proxied CONNECT opens the tunnel like a 101 does (the parser framed it as one).
            var tunnel = switching || (_connect && head.StatusCode is >= 200 and < 300);

            if (_hedge is not null && !tunnel)
            {
                // Hedging: retried, dropped while others may answer, or committed (the others reset).
                if (await OnHedgedHeadAsync(head).ConfigureAwait(false) is { } hedged)
                {
                    return hedged;
                }
            }
            else if (!tunnel && ShouldRetryHeaders(head))
            {
                // The retried response is dropped with its connection.
                Finish(reusable: false);
                return true;
            }

            if (_route!.IncludeAttemptCountInResponse)
            {
                head.Headers.Set("x-envoy-attempt-count", stream.Info.AttemptCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            ConnectionManagerUtility.StripHopByHop(head.Headers, keepUpgrade: switching);
            var code = head.StatusCode;
            if (code is >= 100 and < 600 && _factory.ChargesResponseCodeStats(stream))
            {
                _cluster!.Info.Stats.UpstreamRqXx[(code / 100) - 1].Inc();
            }

            if (!_factory.SuppressEnvoyHeaders)
            {
                SetUpstreamServiceTime(head.Headers);
            }

            if (tunnel)
            {
                // An accepted upgrade is a tunnel: no route timeout from here on.
                upstream.DisarmTimeout();
                await stream.EncodeHeadersAsync(head, endStream: false).ConfigureAwait(false);
                stream.OnTunnelEstablished();
                stream.Config.Stats.DownstreamCxUpgradesActive.Inc();
                try
                {
                    await RelayTunnelAsync(input).ConfigureAwait(false);
                }
                finally
                {
                    stream.Config.Stats.DownstreamCxUpgradesActive.Dec();
                }

                return false;
            }

            var reader = upstream.BodyReader;
            reader.Start(head);
            var hasBody = !reader.IsComplete;
            await stream.EncodeHeadersAsync(head, endStream: !hasBody).ConfigureAwait(false);
            if (hasBody && !await ReadBodyAsync(input, reader, head).ConfigureAwait(false))
            {
                return false;
            }

            upstream.DisarmTimeout();
            if (_factory.DynamicStats)
            {
                _cluster!.Info.Stats.UpstreamRqCompleted.Inc();
                _cluster.Info.Stats.UpstreamRqTime.Record((long)Stopwatch.GetElapsedTime(_requestStart, EventClock.Timestamp).TotalMilliseconds);
            }

            Finish(reusable: head.KeepAlive && _requestComplete && !stream.IsReset);
            return false;
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException or InvalidOperationException or ObjectDisposedException)
        {
            stream.Config.Log.Debug($"upstream {upstream.Address}: {ex.Message}");
            if (!stream.ResponseStarted)
            {
                return await FailOrRetryAsync(AttemptFailure.Reset, ResponseFlags.UpstreamConnectionTermination, UpstreamResetReasons.ConnectionTermination).ConfigureAwait(false);
            }

            stream.ResetStream(ResponseFlags.UpstreamConnectionTermination, ResponseCodeDetails.UpstreamResetAfterResponseStarted(UpstreamResetReasons.ConnectionTermination));
            Finish(reusable: false);
            return false;
        }
    }

    /// <summary>
    /// <c>x-envoy-upstream-service-time</c>. Its own method because a <c>stackalloc</c> in the
    /// response loop above kept the JIT from tiering that loop (no on-stack replacement with
    /// <c>localloc</c>): it ran fully optimised but without profile-guided optimisation.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void SetUpstreamServiceTime(HttpHeaderMap headers)
    {
        Span<byte> digits = stackalloc byte[20];
        System.Buffers.Text.Utf8Formatter.TryFormat((long)Stopwatch.GetElapsedTime(_requestStart, EventClock.Timestamp).TotalMilliseconds, digits, out var written);
        headers.Set(KnownHeader.XEnvoyUpstreamServiceTime, digits[..written]);
    }

    /// <summary>Streams the response body downstream; false when the exchange ended in an error (already handled).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ReadBodyAsync(PipeReader input, Http1BodyReader reader, HttpResponseHead head)
    {
        var stream = _stream;
        while (true)
        {
            var result = await ReadAsync(input).ConfigureAwait(false);
            _idleTimer?.Touch();
            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                input.AdvanceTo(buffer.Start);
                _ = await OnCancelledAsync().ConfigureAwait(false);
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
                    _ = await OnCancelledAsync().ConfigureAwait(false);
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

                _cluster!.Info.Stats.ConnectionDestroyedWithActiveRequest(remote: true);
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

    /// <summary>
    /// A pending upstream read was cancelled: the attempt's timeout fired (per-try: retriable; the
    /// route timeout: 504 UT) or the stream was reset. True to retry.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> OnCancelledAsync()
    {
        var stream = _stream;
        if (_hedge is not null && !stream.IsReset && OnHedgedCancel() is { } hedged)
        {
            return await hedged.ConfigureAwait(false);
        }

        if (_idleTimer is { Fired: true } && !stream.IsReset)
        {
            stream.Info.UpstreamHost?.ReportResult(OutlierResult.LocalOriginTimeout);
            return await OnAttemptTimeoutAsync(idle: true).ConfigureAwait(false);
        }

        if (_upstream!.TimedOut && !stream.IsReset)
        {
            stream.Info.UpstreamHost?.ReportResult(OutlierResult.LocalOriginTimeout);
            return await OnAttemptTimeoutAsync().ConfigureAwait(false);
        }

        _cluster!.Info.Stats.UpstreamRqTxReset.Inc();
        if (_upstream is not null)
        {
            _cluster.Info.Stats.ConnectionDestroyedWithActiveRequest(remote: false);
        }

        Finish(reusable: false);
        return false;
    }

    /// <summary>The attempt's timer fired (HTTP/1.1 or HTTP/2): per-try timeouts may be retried, the route timeout ends the request.</summary>
    internal ValueTask<bool> OnAttemptTimeoutAsync(bool idle = false)
    {
        var stats = _cluster!.Info.Stats;
        if (_upstream is not null)
        {
            // An HTTP/1.1 exchange cannot be cancelled on its connection: the connection goes.
            stats.ConnectionDestroyedWithActiveRequest(remote: false);
        }

        if (idle)
        {
            stats.UpstreamRqPerTryIdleTimeout.Inc();
            return FailOrRetryAsync(AttemptFailure.PerTryIdleTimeout, ResponseFlags.UpstreamRequestTimeout, UpstreamResetReasons.ConnectionTermination);
        }

        if (_attemptIsPerTry)
        {
            stats.UpstreamRqPerTryTimeout.Inc();
            return FailOrRetryAsync(AttemptFailure.PerTryTimeout, ResponseFlags.UpstreamRequestTimeout, UpstreamResetReasons.ConnectionTermination);
        }

        stats.UpstreamRqTimeout.Inc();
        _hedge?.DiscardAll(stats);
        Finish(reusable: false);
        return FailOrRetryAsync(AttemptFailure.Reset, ResponseFlags.UpstreamRequestTimeout, UpstreamResetReasons.ConnectionTermination, retry: false);
    }

    /// <summary>The exchange failed before any response byte went downstream: a local reply as Envoy's.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FailBeforeResponseAsync(ResponseFlags flag, string resetReason, int status = 503)
    {
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

        var transportFailure = _stream.Info.UpstreamTransportFailureReason;
        await _stream.SendLocalReplyAsync(status, ResponseCodeDetails.UpstreamResetBody(resetReason, transportFailure), ResponseCodeDetails.UpstreamResetBeforeResponseStarted(resetReason, transportFailure), flag).ConfigureAwait(false);
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
        if (_factory.UpstreamLogs.Length > 0)
        {
            // Before the connection (and its response head) goes back to the pool.
            LogUpstreamAttempt(_attemptResponse, _attemptResponse?.Trailers is { Count: > 0 } trailers ? trailers : null);
        }

        Interlocked.Exchange(ref _idleTimer, null)?.Stop();

        if ((_target ?? _cluster) is { } cluster && _stream.Info.UpstreamHost is { } host)
        {
            // The breaker first: whoever sees no active request also sees its slot back.
            cluster.Info.CircuitBreakers.For(_route!.Priority).Requests.Release();
            cluster.Info.Stats.UpstreamRqActive.Dec();
            host.RequestFinished();
        }

        if (_upstream is { } upstream)
        {
            upstream.DisarmTimeout();
            _hedge?.ClearActive();
            _pool!.Release(upstream, _reusable);
        }
    }
}
