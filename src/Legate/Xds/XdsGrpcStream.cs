using System.Net;
using Envoy.Config.Core.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Legate.Grpc;
using Legate.Server.Logging;
using Legate.Upstream;
using RpcStatus = Google.Rpc.Status;

namespace Legate.Xds;

/// <summary>
/// One xDS gRPC stream (Envoy's GrpcMux): ADS carries every subscribed type, a per-type source
/// one. State of the world (DiscoveryRequest/Response) or Delta (DeltaDiscoveryRequest/Response).
/// The stream is re-established after any failure with jittered exponential back-off (never a
/// tight loop); the last accepted resources stay applied meanwhile, and on reconnect each
/// subscription asks again with its accepted version (SotW) or its resource versions (Delta's
/// initial_resource_versions). With <c>rate_limit_settings</c>, requests go out through a token
/// bucket: one over the limit waits in the stream's queue (counted in
/// <c>control_plane.rate_limit_enforced</c>, the queue's length in <c>control_plane.pending_requests</c>)
/// and is sent, in order, when a token is back.
/// </summary>
internal sealed class XdsGrpcStream : IAsyncDisposable
{
    /// <summary>Envoy's defaults for the xDS stream's retry back-off.</summary>
    public static readonly TimeSpan DefaultBaseInterval = TimeSpan.FromMilliseconds(500);
    public static readonly TimeSpan DefaultMaxInterval = TimeSpan.FromSeconds(30);

    /// <summary>Full jitter can draw ~0: a floor keeps a failing server from being hammered.</summary>
    private static readonly TimeSpan MinimumBackOff = TimeSpan.FromMilliseconds(50);

    private readonly XdsSourceSpec _spec;
    private readonly Node _node;
    private readonly GrpcChannel _channel;
    private readonly ControlPlaneStats _stats;
    private readonly Logger _log;
    private readonly TimeProvider _time;
    private readonly IBackOffStrategy _backOff;
    private readonly XdsRequestRateLimiter? _limiter;
    private readonly List<XdsSubscription> _subscriptions = new();
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<XdsSubscription> _changedWhilePaused = new();
    private int _pauseDepth;
    private Task? _run;
    private volatile ActiveStream? _active;
    private int _disposed;

    public XdsGrpcStream(XdsSourceSpec spec, Node node, Func<CancellationToken, ValueTask<EndPoint>> resolve, BackoffStrategy? backOff, ControlPlaneStats stats, TimeProvider time, Func<long, long> random, Logger log, Func<Legate.Tls.ClientTlsContext?>? tls = null)
    {
        _spec = spec;
        _node = node;
        _stats = stats;
        _time = time;
        _log = log;
        _backOff = new JitteredExponentialBackOffStrategy(
            backOff?.BaseInterval?.ToTimeSpan() ?? DefaultBaseInterval,
            backOff?.MaxInterval?.ToTimeSpan() ?? (backOff?.BaseInterval is { } b ? b.ToTimeSpan() * 10 : DefaultMaxInterval),
            random);
        _limiter = spec.RateLimit is { } rateLimit ? new XdsRequestRateLimiter(rateLimit, time) : null;
        _channel = new GrpcChannel(new GrpcChannelOptions
        {
            ResolveEndpoint = resolve,
            Authority = spec.ClusterName.Length > 0 ? spec.ClusterName : "xds",
            // The cluster's connection_keepalive; without it no PINGs, as Envoy (a grpc-go server
            // answers unsolicited frequent PINGs on a quiet stream with GOAWAY too_many_pings).
            KeepAlivePingDelay = spec.Keepalive?.Delay,
            KeepAlivePingTimeout = spec.Keepalive?.Timeout ?? TimeSpan.FromSeconds(20),
            MaxReceiveMessageBytes = 256 * 1024 * 1024,
            // The envoy_grpc cluster's UpstreamTlsContext, if any: TLS to the control plane.
            Tls = tls,
        });
    }

    /// <summary>How many times a stream was opened (tests watch reconnects).</summary>
    public int Attempts { get; private set; }

    public bool IsConnected => _active is not null;

    public void Add(XdsSubscription subscription)
    {
        lock (_lock)
        {
            _subscriptions.Add(subscription);
        }

        subscription.NamesChanged += OnNamesChanged;
        subscription.Start();
        if (_active is { } active)
        {
            active.SendInitial(subscription);
        }
    }

    public void Start() => _run ??= Task.Run(RunAsync);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel();
        if (_run is not null)
        {
            try
            {
                await _run.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        foreach (var subscription in Subscriptions())
        {
            subscription.Stop();
        }

        _channel.Dispose();
        _stop.Dispose();
    }

    private XdsSubscription[] Subscriptions()
    {
        lock (_lock)
        {
            return _subscriptions.ToArray();
        }
    }

    private void OnNamesChanged(XdsSubscription subscription)
    {
        lock (_lock)
        {
            if (_pauseDepth > 0)
            {
                _changedWhilePaused.Add(subscription);
                return;
            }
        }

        _active?.SendUpdate(subscription);
    }

    /// <summary>
    /// Holds name changes while a response is applied (Envoy pauses the mux the same way): a CDS
    /// update of 1,000 EDS clusters then asks for their 1,000 assignments in one request, after
    /// the CDS ACK, instead of 1,000 requests each answered with a growing response.
    /// </summary>
    private void Pause()
    {
        lock (_lock)
        {
            _pauseDepth++;
        }
    }

    /// <summary>Ends a <see cref="Pause"/>; the last one sends the names that changed meanwhile (unless the stream failed: a new one asks for everything).</summary>
    private void Resume(ActiveStream stream, bool send)
    {
        XdsSubscription[] changed;
        lock (_lock)
        {
            if (--_pauseDepth > 0 || _changedWhilePaused.Count == 0)
            {
                return;
            }

            changed = _changedWhilePaused.ToArray();
            _changedWhilePaused.Clear();
        }

        if (!send)
        {
            return;
        }

        foreach (var subscription in changed.OrderBy(s => Array.IndexOf(XdsResourceType.All, s.Type)))
        {
            stream.SendUpdate(subscription);
        }
    }

    private async Task RunAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            Attempts++;
            var receivedAny = false;
            try
            {
                receivedAny = await RunStreamAsync(token).ConfigureAwait(false);
                _log.Warn($"xDS stream to '{_spec.ClusterName}' closed by the server; reconnecting");
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (GrpcException ex)
            {
                _log.Warn($"xDS stream to '{_spec.ClusterName}' failed: {ex.Status}: {ex.Message}");
            }
            catch (Exception ex)
            {
                _log.Warn($"xDS stream to '{_spec.ClusterName}' failed: {ex.Message}");
            }
            finally
            {
                _active?.Close();
                _active = null;
                _stats.ConnectedState.Set(0);
                _stats.PendingRequests.Set(Subscriptions().Length);
            }

            foreach (var subscription in Subscriptions())
            {
                subscription.Failed();
            }

            if (receivedAny)
            {
                _backOff.Reset();
            }

            var wait = _backOff.NextBackOff();
            if (wait < MinimumBackOff)
            {
                wait = MinimumBackOff;
            }

            _log.Debug($"xDS stream to '{_spec.ClusterName}': retrying in {wait.TotalMilliseconds:0} ms");
            try
            {
                await Task.Delay(wait, _time, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>One stream's life; true when at least one response arrived.</summary>
    private async Task<bool> RunStreamAsync(CancellationToken token)
    {
        var method = _spec.Kind == XdsSourceKind.Ads
            ? (_spec.IsDelta ? XdsResourceType.AdsDeltaMethod : XdsResourceType.AdsSotwMethod)
            : (_spec.IsDelta ? Subscriptions()[0].Type.DeltaMethod : Subscriptions()[0].Type.SotwMethod);
        var options = new GrpcCallOptions { CancellationToken = token };
        return _spec.IsDelta
            ? await new DeltaStream(this, _channel.StartCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(method, DeltaDiscoveryResponse.Parser, options)).RunAsync(token).ConfigureAwait(false)
            : await new SotwStream(this, _channel.StartCall<DiscoveryRequest, DiscoveryResponse>(method, DiscoveryResponse.Parser, options)).RunAsync(token).ConfigureAwait(false);
    }

    private XdsSubscription? Find(string typeUrl)
    {
        lock (_lock)
        {
            return _subscriptions.Find(s => s.Type.TypeUrl == typeUrl);
        }
    }

    private void Connected(ActiveStream stream)
    {
        _active = stream;
        _stats.PendingRequests.Set(0);
        // Envoy's order: clusters, endpoints, listeners, routes.
        foreach (var subscription in Subscriptions().OrderBy(s => Array.IndexOf(XdsResourceType.All, s.Type)))
        {
            stream.SendInitial(subscription);
        }
    }

    /// <summary>
    /// connected_state turns 1 only once the server answered the stream's headers: starting a call
    /// does not wait for the connection, so a refused connection or a failed TLS handshake must not
    /// show as connected even for a moment. Requests are sent before this, as a server may hold its
    /// headers back until it has a response.
    /// </summary>
    private async Task EstablishedAsync(Task headers)
    {
        await headers.ConfigureAwait(false);
        _stats.ConnectedState.Set(1);
    }

    private static RpcStatus Nack(IReadOnlyList<XdsResourceError> errors) =>
        new() { Code = (int)GrpcStatusCode.InvalidArgument, Message = string.Join("; ", errors) };

    private abstract class ActiveStream(XdsGrpcStream owner)
    {
        private readonly Lock _queueLock = new();
        private readonly Queue<IMessage> _queue = new();
        private ITimer? _drainTimer;
        private bool _closed;
        private bool _pendingShown;
        private int _sent;

        protected XdsGrpcStream Owner { get; } = owner;

        /// <summary>Sends <paramref name="request"/> now, or after the requests before it once the rate limit lets them out.</summary>
        protected void Enqueue(IMessage request)
        {
            lock (_queueLock)
            {
                if (_closed)
                {
                    return;
                }

                _queue.Enqueue(request);
                DrainLocked();
            }
        }

        /// <summary>The stream ended: what waits is dropped with it (a new stream asks for everything again).</summary>
        public void Close()
        {
            lock (_queueLock)
            {
                _closed = true;
                _queue.Clear();
                _drainTimer?.Dispose();
                _drainTimer = null;
            }
        }

        protected abstract void Write(IMessage request);

        private void OnDrainTimer()
        {
            lock (_queueLock)
            {
                _drainTimer?.Dispose();
                _drainTimer = null;
                if (!_closed)
                {
                    DrainLocked();
                }
            }
        }

        private void DrainLocked()
        {
            while (_queue.Count > 0)
            {
                if (Owner._limiter is { } limiter && !limiter.TryConsume())
                {
                    // Envoy counts every drain the bucket stops, and retries when the next token is due.
                    Owner._stats.RateLimitEnforced.Inc();
                    _drainTimer ??= Owner._time.CreateTimer(_ => OnDrainTimer(), null, limiter.NextTokenAvailable(), Timeout.InfiniteTimeSpan);
                    break;
                }

                Write(_queue.Dequeue());
            }

            // Like Envoy, the gauge is touched only once something had to wait.
            if (_queue.Count > 0 || _pendingShown)
            {
                Owner._stats.PendingRequests.Set(_queue.Count);
                _pendingShown = true;
            }
        }

        /// <summary>The node goes on the first message of a stream, and on every one unless set_node_on_first_message_only.</summary>
        protected Node? NodeFor() =>
            Interlocked.Exchange(ref _sent, 1) == 0 || !Owner._spec.SetNodeOnFirstMessageOnly ? Owner._node : null;

        public abstract void SendInitial(XdsSubscription subscription);

        public abstract void SendUpdate(XdsSubscription subscription);
    }

    private sealed class SotwStream(XdsGrpcStream owner, GrpcCall<DiscoveryRequest, DiscoveryResponse> call) : ActiveStream(owner)
    {
        private readonly Lock _sendLock = new();

        public async Task<bool> RunAsync(CancellationToken token)
        {
            await using var _ = call;
            Owner.Connected(this);
            await Owner.EstablishedAsync(call.ResponseHeadersAsync()).ConfigureAwait(false);
            var received = false;
            while (await call.ReadFrameAsync(token).ConfigureAwait(false) is { } frame)
            {
                // Read from the wire bytes: the resources stay slices of the frame until the
                // subscription finds which ones changed (a response repeats every resource).
                using var _frame = frame;
                received = true;
                var response = Read(frame);
                var subscription = Owner.Find(response.TypeUrl);
                if (subscription is null)
                {
                    Owner._log.Warn($"xDS: ignoring a response for type {response.TypeUrl}, which was not subscribed");
                    continue;
                }

                subscription.LastNonce = response.Nonce;
                Owner.Pause();
                var sent = false;
                try
                {
                    var errors = await subscription.ProcessAsync(response.Resources, [], response.VersionInfo, stateOfWorld: true, token).ConfigureAwait(false);
                    var ack = errors.Count == 0;
                    Owner._log.Debug($"xDS {subscription.Type.ShortName}: {(ack ? "ACK" : "NACK")} version '{response.VersionInfo}' nonce '{response.Nonce}'");
                    Send(subscription, ack ? null : Nack(errors));
                    sent = true;
                }
                finally
                {
                    Owner.Resume(this, sent);
                }
            }

            return received;
        }

        /// <summary>A malformed response fails the stream, as a message the parser rejects does.</summary>
        private static DiscoveryResponseReader.SotwResponse Read(GrpcFrame frame)
        {
            try
            {
                return DiscoveryResponseReader.Read(frame.Message);
            }
            catch (InvalidDataException ex)
            {
                throw new GrpcException(GrpcStatusCode.Internal, $"cannot parse DiscoveryResponse: {ex.Message}", ex);
            }
        }

        public override void SendInitial(XdsSubscription subscription)
        {
            // A new stream: no nonce from the old one; a named type with nothing to ask for waits (empty would mean wildcard).
            subscription.LastNonce = string.Empty;
            if (subscription.Type.IsWildcard || subscription.Names().Length > 0)
            {
                Send(subscription, null);
            }
        }

        public override void SendUpdate(XdsSubscription subscription) => Send(subscription, null);

        /// <summary>ACK: the accepted version and the response's nonce. NACK: the previous accepted version, the nonce, and error_detail.</summary>
        private void Send(XdsSubscription subscription, RpcStatus? error)
        {
            lock (_sendLock)
            {
                var request = new DiscoveryRequest
                {
                    TypeUrl = subscription.Type.TypeUrl,
                    VersionInfo = subscription.AcceptedVersion,
                    ResponseNonce = subscription.LastNonce,
                    Node = NodeFor(),
                    ErrorDetail = error,
                };
                request.ResourceNames.Add(subscription.Names());
                Enqueue(request);
            }
        }

        protected override void Write(IMessage request) => call.Write((DiscoveryRequest)request);
    }

    private sealed class DeltaStream(XdsGrpcStream owner, GrpcCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse> call) : ActiveStream(owner)
    {
        private readonly Lock _sendLock = new();

        public async Task<bool> RunAsync(CancellationToken token)
        {
            await using var _ = call;
            Owner.Connected(this);
            await Owner.EstablishedAsync(call.ResponseHeadersAsync()).ConfigureAwait(false);
            var received = false;
            while (await call.ReadAsync(token).ConfigureAwait(false) is { } response)
            {
                received = true;
                var subscription = Owner.Find(response.TypeUrl);
                if (subscription is null)
                {
                    Owner._log.Warn($"xDS: ignoring a delta response for type {response.TypeUrl}, which was not subscribed");
                    continue;
                }

                var resources = response.Resources
                    .Where(r => r.Resource_ is not null)
                    .Select(r => XdsWireResource.Of(r.Resource_, r.Name, r.Version))
                    .ToArray();
                Owner.Pause();
                var sent = false;
                try
                {
                    var errors = await subscription.ProcessAsync(resources, response.RemovedResources, response.SystemVersionInfo, stateOfWorld: false, token).ConfigureAwait(false);
                    Owner._log.Debug($"xDS {subscription.Type.ShortName}: delta {(errors.Count == 0 ? "ACK" : "NACK")} nonce '{response.Nonce}'");
                    lock (_sendLock)
                    {
                        var request = new DeltaDiscoveryRequest
                        {
                            TypeUrl = subscription.Type.TypeUrl,
                            ResponseNonce = response.Nonce,
                            Node = NodeFor(),
                            ErrorDetail = errors.Count == 0 ? null : Nack(errors),
                        };
                        Enqueue(request);
                    }

                    sent = true;
                }
                finally
                {
                    Owner.Resume(this, sent);
                }
            }

            return received;
        }

        /// <summary>The first request of a type on this stream: every name, and the versions we hold (initial_resource_versions).</summary>
        public override void SendInitial(XdsSubscription subscription)
        {
            lock (_sendLock)
            {
                subscription.TakePending();
                if (!subscription.Type.IsWildcard && subscription.Names().Length == 0)
                {
                    return;
                }

                var request = new DeltaDiscoveryRequest { TypeUrl = subscription.Type.TypeUrl, Node = NodeFor() };
                var names = subscription.Names();
                request.ResourceNamesSubscribe.Add(names);
                foreach (var (name, resource) in subscription.Resources)
                {
                    // A named type claims only what it still asks for: a resource kept from before an
                    // unsubscribe is not announced.
                    if (subscription.Type.IsWildcard || Array.IndexOf(names, name) >= 0)
                    {
                        request.InitialResourceVersions[name] = resource.Version;
                    }
                }

                Enqueue(request);
            }
        }

        public override void SendUpdate(XdsSubscription subscription)
        {
            lock (_sendLock)
            {
                var (subscribe, unsubscribe) = subscription.TakePending();
                if (subscribe.Length == 0 && unsubscribe.Length == 0)
                {
                    return;
                }

                var request = new DeltaDiscoveryRequest { TypeUrl = subscription.Type.TypeUrl, Node = NodeFor() };
                request.ResourceNamesSubscribe.Add(subscribe);
                request.ResourceNamesUnsubscribe.Add(unsubscribe);
                Enqueue(request);
            }
        }

        protected override void Write(IMessage request) => call.Write((DeltaDiscoveryRequest)request);
    }
}
