using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Legate.Network;
using Legate.Stats;

namespace Legate.Upstream;

/// <summary>
/// Active health checking of one cluster with one <c>health_checks</c> entry (Envoy's
/// HealthChecker): one session per host probes it over HTTP/1.1, HTTP/2 (h2c), gRPC
/// (<c>grpc.health.v1.Health/Check</c>) or TCP, and sets or clears the host's
/// <see cref="HostHealthFlags.FailedActiveHealthCheck"/>. Hosts start failed, and the cluster
/// waits (warms) for the first round; hosts added later are also pending (excluded from the
/// balancer's health arithmetic) with <c>ignore_new_hosts_until_first_hc</c>, as Envoy; a first
/// success makes a host healthy at once. A failing answer (wrong status, NOT_SERVING, missing
/// payload, a service name that does not match) fails a host at once; network failures, timeouts
/// and <c>retriable_statuses</c> need <c>unhealthy_threshold</c> in a row; a failed host needs
/// <c>healthy_threshold</c> passes in a row. An upstream answering ordinary traffic with
/// <c>x-envoy-immediate-health-check-fail</c> fails its host at once too (a passive failure). Intervals follow Envoy: <c>no_traffic_interval</c>
/// until the cluster has had a connection, then <c>interval</c>, <c>unhealthy_interval</c> and the
/// edge intervals while a transition is pending, plus jitter. Timers come from a
/// <see cref="TimeProvider"/>.
/// </summary>
internal sealed class HealthChecker : IDisposable
{
    private static readonly byte[] s_grpcServing = [0x08, 0x01];

    private readonly Cluster _cluster;
    private readonly TimeProvider _time;
    private readonly Func<long, long> _random;
    private readonly Lock _lock = new();
    private readonly Dictionary<Host, Session> _sessions = new(ReferenceEqualityComparer.Instance);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _firstRound = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _firstRoundPending;
    private readonly HealthCheckEventLogger? _events;
    private readonly bool _warmNewHosts;
    private bool _started;

    public HealthChecker(Cluster cluster, HealthCheckSettings settings, TimeProvider time, Func<long, long> random, bool ignoreNewHostsUntilFirstHc = false)
    {
        _cluster = cluster;
        Settings = settings;
        _warmNewHosts = ignoreNewHostsUntilFirstHc;
        _time = time;
        _random = random;
        var store = cluster.Info.Stats.Store;
        var p = "cluster." + cluster.Name + ".health_check.";
        Attempt = store.Counter(p, "attempt");
        Success = store.Counter(p, "success");
        Failure = store.Counter(p, "failure");
        PassiveFailure = store.Counter(p, "passive_failure");
        NetworkFailure = store.Counter(p, "network_failure");
        VerifyCluster = store.Counter(p, "verify_cluster");
        Healthy = store.Gauge(p, "healthy", ImportMode.NeverImport);
        if (settings.EventFiles.Any())
        {
            _events = new HealthCheckEventLogger(settings.EventFiles, cluster.Name, settings.Type, time);
        }

        // Hosts known now start failed, as Envoy's static hosts; hosts added later are failed too,
        // and pending (excluded) until checked with ignore_new_hosts_until_first_hc.
        foreach (var host in cluster.PrioritySet.Current.Hosts)
        {
            if (!host.ActiveHealthCheckDisabled)
            {
                host.SetHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
            }
        }

        cluster.PrioritySet.HostAdding += MarkAdded;
        cluster.PrioritySet.RefreshHealth();
    }

    public HealthCheckSettings Settings { get; }

    public Counter Attempt { get; }

    public Counter Success { get; }

    public Counter Failure { get; }

    public Counter PassiveFailure { get; }

    public Counter NetworkFailure { get; }

    public Counter VerifyCluster { get; }

    public Gauge Healthy { get; }

    /// <summary>Completes when every host present at <see cref="Start"/> has had its first check.</summary>
    public Task FirstRound => _firstRound.Task;

    /// <summary>Starts a session for every host, and for hosts added later.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_started)
            {
                return;
            }

            _started = true;
            // health_check_config.disable_active_health_check: such hosts get no session at all.
            var hosts = _cluster.PrioritySet.Current.Hosts.Where(h => !h.ActiveHealthCheckDisabled).ToArray();
            _firstRoundPending = hosts.Length;
            foreach (var host in hosts)
            {
                StartSession(host, countsForFirstRound: true);
            }

            if (hosts.Length == 0)
            {
                _firstRound.TrySetResult();
            }
        }

        _cluster.PrioritySet.Updated += OnHostsChanged;
    }

    public void Dispose()
    {
        _cluster.PrioritySet.Updated -= OnHostsChanged;
        _cluster.PrioritySet.HostAdding -= MarkAdded;
        _stop.Cancel();
        _events?.Dispose();
        _firstRound.TrySetResult();
        lock (_lock)
        {
            foreach (var session in _sessions.Values)
            {
                session.Dispose();
            }

            _sessions.Clear();
        }
    }

    private void MarkAdded(Host host)
    {
        if (host.ActiveHealthCheckDisabled)
        {
            return;
        }

        host.SetHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
        if (_warmNewHosts)
        {
            host.SetHealthFlag(HostHealthFlags.PendingActiveHealthCheck);
        }
    }

    /// <summary>
    /// The router saw <c>x-envoy-immediate-health-check-fail</c> on an answer of
    /// <paramref name="host"/> (Envoy's HealthCheckHostMonitor::setUnhealthy): the host is excluded
    /// and failed at once, counted in <c>passive_failure</c>; the next check can bring it back.
    /// </summary>
    public void SetUnhealthyPassive(Host host)
    {
        Session? session;
        lock (_lock)
        {
            _sessions.TryGetValue(host, out session);
        }

        if (session is not null)
        {
            host.SetHealthFlag(HostHealthFlags.ExcludedViaImmediateHealthCheckFail);
            session.OnPassiveFailure();
        }
    }

    private void OnHostsChanged(HostUpdate update)
    {
        lock (_lock)
        {
            foreach (var host in update.Removed)
            {
                if (_sessions.Remove(host, out var session))
                {
                    session.Dispose();
                }
            }

            foreach (var host in update.Added)
            {
                if (!host.ActiveHealthCheckDisabled)
                {
                    StartSession(host, countsForFirstRound: false);
                }
            }
        }

        UpdateHealthyGauge();
    }

    /// <summary>The wait before <paramref name="host"/>'s next check, as chosen after its last one (tests).</summary>
    internal TimeSpan NextCheckDelay(Host host)
    {
        lock (_lock)
        {
            return _sessions.TryGetValue(host, out var session) ? session.NextDelay : TimeSpan.Zero;
        }
    }

    /// <summary>Checks of <paramref name="host"/> completed so far (tests and admin).</summary>
    internal int CompletedChecks(Host host)
    {
        lock (_lock)
        {
            return _sessions.TryGetValue(host, out var session) ? session.Completed : 0;
        }
    }

    private void StartSession(Host host, bool countsForFirstRound)
    {
        var session = new Session(this, host, countsForFirstRound);
        _sessions[host] = session;
        host.ActiveHealthChecker = this;
        _ = session.RunAsync();
    }

    private void OnFirstCheckDone()
    {
        if (Interlocked.Decrement(ref _firstRoundPending) == 0)
        {
            _firstRound.TrySetResult();
        }
    }

    private void UpdateHealthyGauge()
    {
        long healthy = 0;
        lock (_lock)
        {
            foreach (var host in _sessions.Keys)
            {
                healthy += (host.HealthFlags & HostHealthFlags.FailedActiveHealthCheck) == 0 ? 1 : 0;
            }
        }

        Healthy.Set(healthy);
    }

    private enum Outcome
    {
        Success,
        ActiveFailure,

        /// <summary>A status in <c>retriable_statuses</c>: an active failure that needs <c>unhealthy_threshold</c> in a row.</summary>
        RetriableFailure,

        /// <summary>The router saw <c>x-envoy-immediate-health-check-fail</c> on ordinary traffic.</summary>
        PassiveFailure,
        NetworkFailure,

        /// <summary>No answer within <c>timeout</c> (Envoy's NETWORK_TIMEOUT: a network failure with its own event type and flag).</summary>
        NetworkTimeout,
    }

    private enum Transition
    {
        Unchanged,
        Changed,
        ChangePending,
    }

    /// <summary>The checks of one host: a loop of probe, update, wait.</summary>
    private sealed class Session : IDisposable
    {
        private readonly HealthChecker _checker;
        private readonly Host _host;
        private readonly CancellationTokenSource _stop;
        private readonly bool _countsForFirstRound;

        // Guards the counters below: checks run on the session's loop, passive failures on the router's threads.
        private readonly Lock _gate = new();
        private HttpMessageInvoker? _client;
        private int _healthyCount;
        private int _unhealthyCount;
        private bool _firstCheck = true;
        private int _completed;
        private long _nextDelayTicks;

        public int Completed => Volatile.Read(ref _completed);

        /// <summary>The wait armed after the last completed check.</summary>
        public TimeSpan NextDelay => TimeSpan.FromTicks(Volatile.Read(ref _nextDelayTicks));

        public Session(HealthChecker checker, Host host, bool countsForFirstRound)
        {
            _checker = checker;
            _host = host;
            _countsForFirstRound = countsForFirstRound;
            _stop = CancellationTokenSource.CreateLinkedTokenSource(checker._stop.Token);
        }

        public void Dispose()
        {
            _stop.Cancel();
            _client?.Dispose();
        }

        public async Task RunAsync()
        {
            var settings = _checker.Settings;
            var token = _stop.Token;
            try
            {
                if (settings.InitialJitter > TimeSpan.Zero)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(_checker._random((long)settings.InitialJitter.TotalMilliseconds + 1)), _checker._time, token).ConfigureAwait(false);
                }

                while (!token.IsCancellationRequested)
                {
                    _checker.Attempt.Inc();
                    var (outcome, immediateFail, degraded) = await ProbeAsync(token).ConfigureAwait(false);
                    if (token.IsCancellationRequested)
                    {
                        return;
                    }

                    var transition = Apply(outcome, immediateFail, degraded);
                    var passed = outcome == Outcome.Success;
                    if (_firstCheck)
                    {
                        _firstCheck = false;
                        if (_countsForFirstRound)
                        {
                            _checker.OnFirstCheckDone();
                        }
                    }

                    // Counted once the next check's timer is armed, so whoever waits on the count
                    // can move the clock and know the next check follows.
                    var delay = NextInterval(passed, transition);
                    Volatile.Write(ref _nextDelayTicks, delay.Ticks);
                    var next = Task.Delay(delay, _checker._time, token);
                    Interlocked.Increment(ref _completed);
                    await next.ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                // Host removed or cluster gone.
            }
        }

        public void OnPassiveFailure()
        {
            lock (_gate)
            {
                // The session's own loop keeps _firstCheck: it counts the cluster's first round.
                Apply(Outcome.PassiveFailure, immediateFail: true, degraded: false);
            }
        }

        private Transition Apply(Outcome outcome, bool immediateFail, bool degraded)
        {
            lock (_gate)
            {
                return ApplyLocked(outcome, immediateFail, degraded);
            }
        }

        private Transition ApplyLocked(Outcome outcome, bool immediateFail, bool degraded)
        {
            var host = _host;
            var transition = Transition.Unchanged;
            var wasPending = host.ClearHealthFlag(HostHealthFlags.PendingActiveHealthCheck);
            var changed = wasPending;
            if (outcome == Outcome.Success)
            {
                _checker.Success.Inc();
                _unhealthyCount = 0;
                if ((host.HealthFlags & HostHealthFlags.FailedActiveHealthCheck) != 0)
                {
                    // A host's very first check result makes it healthy at once (Envoy: faster startup).
                    if (_firstCheck || ++_healthyCount >= _checker.Settings.HealthyThreshold)
                    {
                        host.ClearHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
                        host.ClearHealthFlag(HostHealthFlags.ExcludedViaImmediateHealthCheckFail);
                        host.ClearHealthFlag(HostHealthFlags.ActiveHealthCheckTimeout);
                        // Slow start counts from here (Envoy's last_hc_pass_time).
                        host.LastHcPassTimestamp = _checker._time.GetTimestamp();
                        _checker._events?.LogAddHealthy(host, _firstCheck);
                        _healthyCount = 0;
                        transition = Transition.Changed;
                        changed = true;
                    }
                    else
                    {
                        transition = Transition.ChangePending;
                    }
                }

                if (transition != Transition.Changed && _checker.Settings.AlwaysLogSuccess)
                {
                    _checker._events?.LogSuccessful(host);
                }

                if (degraded ? host.SetHealthFlag(HostHealthFlags.DegradedActiveHealthCheck) : host.ClearHealthFlag(HostHealthFlags.DegradedActiveHealthCheck))
                {
                    if (degraded)
                    {
                        _checker._events?.LogDegraded(host);
                    }
                    else
                    {
                        _checker._events?.LogNoLongerDegraded(host);
                    }

                    // As Envoy: a degraded change is a change (no degraded threshold).
                    changed = true;
                    if (transition == Transition.Unchanged)
                    {
                        transition = Transition.Changed;
                    }
                }

                _checker._cluster.OutlierDetector?.OnActiveHealthCheckSuccess(host);
            }
            else
            {
                _checker.Failure.Inc();
                var network = outcome is Outcome.NetworkFailure or Outcome.NetworkTimeout;
                if (network)
                {
                    _checker.NetworkFailure.Inc();
                }
                else if (outcome == Outcome.PassiveFailure)
                {
                    _checker.PassiveFailure.Inc();
                }

                _healthyCount = 0;
                if (immediateFail)
                {
                    changed |= host.SetHealthFlag(HostHealthFlags.ExcludedViaImmediateHealthCheckFail);
                }

                if ((host.HealthFlags & HostHealthFlags.FailedActiveHealthCheck) == 0)
                {
                    // As Envoy: only network failures and retriable statuses wait for the threshold.
                    var retriable = network || outcome == Outcome.RetriableFailure;
                    if (!retriable || ++_unhealthyCount >= _checker.Settings.UnhealthyThreshold)
                    {
                        host.SetHealthFlag(HostHealthFlags.FailedActiveHealthCheck);
                        _unhealthyCount = 0;
                        transition = Transition.Changed;
                        changed = true;
                        _checker._events?.LogEjectUnhealthy(host, FailureType(outcome));
                    }
                    else
                    {
                        transition = Transition.ChangePending;
                    }
                }

                // As Envoy: a failed host whose check timed out shows /active_hc_timeout; another
                // kind of failure clears it, so the flag follows why it keeps failing.
                // The flag changes no host list, so it needs no new snapshot.
                _ = outcome == Outcome.NetworkTimeout && (host.HealthFlags & HostHealthFlags.FailedActiveHealthCheck) != 0
                    ? host.SetHealthFlag(HostHealthFlags.ActiveHealthCheckTimeout)
                    : host.ClearHealthFlag(HostHealthFlags.ActiveHealthCheckTimeout);
            }

            if (outcome != Outcome.Success && (_firstCheck || _checker.Settings.AlwaysLogFailures))
            {
                // A first check that fails is logged even though the host was already failed (pending).
                _checker._events?.LogUnhealthy(host, FailureType(outcome), _firstCheck);
            }

            if (changed)
            {
                _checker._cluster.PrioritySet.RefreshHealth();
                _checker.UpdateHealthyGauge();
            }

            return transition;
        }

        private static Envoy.Data.Core.V3.HealthCheckFailureType FailureType(Outcome outcome) => outcome switch
        {
            Outcome.NetworkFailure => Envoy.Data.Core.V3.HealthCheckFailureType.Network,
            Outcome.NetworkTimeout => Envoy.Data.Core.V3.HealthCheckFailureType.NetworkTimeout,
            Outcome.PassiveFailure => Envoy.Data.Core.V3.HealthCheckFailureType.Passive,
            _ => Envoy.Data.Core.V3.HealthCheckFailureType.Active,
        };

        /// <summary>Envoy's interval choice, by this check's result and whether it left a transition pending.</summary>
        private TimeSpan NextInterval(bool passed, Transition transition)
        {
            var settings = _checker.Settings;
            var pending = transition == Transition.ChangePending;
            TimeSpan interval;
            if (_checker._cluster.Info.Stats.UpstreamCxTotal.Value == 0)
            {
                // No traffic yet: check slowly, just to keep the view fresh.
                interval = passed && !pending ? settings.NoTrafficHealthyInterval : settings.NoTrafficInterval;
            }
            else if (passed)
            {
                // A failed host passing below healthy_threshold: the healthy edge.
                interval = pending ? settings.HealthyEdgeInterval : settings.Interval;
            }
            else
            {
                // A healthy host failing below unhealthy_threshold: the unhealthy edge.
                interval = pending ? settings.UnhealthyEdgeInterval : settings.UnhealthyInterval;
            }

            var ms = (long)interval.TotalMilliseconds;
            if (settings.IntervalJitterPercent > 0 && ms * settings.IntervalJitterPercent / 100 > 0)
            {
                ms += _checker._random(ms * settings.IntervalJitterPercent / 100);
            }

            var jitter = (long)settings.IntervalJitter.TotalMilliseconds;
            if (jitter > 0)
            {
                ms += _checker._random(jitter);
            }

            return TimeSpan.FromMilliseconds(Math.Max(1, ms));
        }

        private async Task<(Outcome Outcome, bool ImmediateFail, bool Degraded)> ProbeAsync(CancellationToken stop)
        {
            var settings = _checker.Settings;
            using var timeout = new CancellationTokenSource(settings.Timeout, _checker._time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, timeout.Token);
            try
            {
                return settings.Type switch
                {
                    HealthCheckSettings.Kind.Tcp => (await ProbeTcpAsync(linked.Token).ConfigureAwait(false), false, false),
                    HealthCheckSettings.Kind.Grpc => (await ProbeGrpcAsync(linked.Token).ConfigureAwait(false), false, false),
                    _ => await ProbeHttpAsync(linked.Token).ConfigureAwait(false),
                };
            }
            catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException or SocketException or IOException)
            {
                // Timeouts and connection errors are network failures.
                if (!settings.ReuseConnection || ex is not OperationCanceledException)
                {
                    _client?.Dispose();
                    _client = null;
                }

                // The check's own timeout, not the session stopping: Envoy's NETWORK_TIMEOUT.
                var timedOut = timeout.IsCancellationRequested && !stop.IsCancellationRequested;
                return (timedOut ? Outcome.NetworkTimeout : Outcome.NetworkFailure, false, false);
            }
        }

        private HttpMessageInvoker Client() => _client ??= new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            ConnectCallback = _checker._cluster.Info.ProxyProtocol is null ? null : ConnectWithProxyHeaderAsync,
        });

        /// <summary>
        /// A health check connection of a cluster with an upstream PROXY protocol transport socket
        /// starts with a header too, as Envoy's: v1 names the connection's own addresses, v2 is LOCAL.
        /// </summary>
        private async ValueTask<Stream> ConnectWithProxyHeaderAsync(SocketsHttpConnectionContext context, CancellationToken token)
        {
            var address = _host.HealthCheckAddress;
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(address, token).ConfigureAwait(false);
                await _checker._cluster.Info.ProxyProtocol!.SendAsync(socket, null, null, address, token).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        private HttpRequestMessage Request(string method, string path, string authority)
        {
            var settings = _checker.Settings;
            var request = new HttpRequestMessage(new HttpMethod(method), "http://" + SocketAddresses.Format(_host.HealthCheckAddress) + path)
            {
                Version = settings.Http2 ? HttpVersion.Version20 : HttpVersion.Version11,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            // Envoy's order: the endpoint's health_check_config.hostname, the checker's host / authority, the cluster's name.
            request.Headers.Host = _host.HealthCheckHostname.Length > 0 ? _host.HealthCheckHostname : authority.Length > 0 ? authority : _checker._cluster.Name;
            request.Headers.TryAddWithoutValidation("user-agent", "Envoy/HC");
            if (!settings.ReuseConnection && !settings.Http2)
            {
                request.Headers.ConnectionClose = true;
            }

            return request;
        }

        private async Task<(Outcome, bool, bool)> ProbeHttpAsync(CancellationToken token)
        {
            var settings = _checker.Settings;
            using var request = Request(settings.Method, settings.Path, settings.Host);
            foreach (var (name, value, append) in settings.HeadersToAdd)
            {
                if (!append)
                {
                    request.Headers.Remove(name);
                }

                request.Headers.TryAddWithoutValidation(name, value);
            }

            foreach (var name in settings.HeadersToRemove)
            {
                request.Headers.Remove(name);
            }

            using var response = await Client().SendAsync(request, token).ConfigureAwait(false);
            byte[]? body = null;
            if (settings.Receive.IsEmpty)
            {
                await response.Content.CopyToAsync(Stream.Null, token).ConfigureAwait(false);
            }
            else
            {
                body = await response.Content.ReadAsByteArrayAsync(token).ConfigureAwait(false);
            }

            // As Envoy's healthCheckResult: the body (first response_buffer_size bytes), then the
            // status; x-envoy-immediate-health-check-fail counts only on an answer that fails.
            var immediate = response.Headers.Contains("x-envoy-immediate-health-check-fail");
            if (body is not null)
            {
                var window = settings.ResponseBufferSize > 0 && body.Length > settings.ResponseBufferSize
                    ? body.AsSpan(0, (int)settings.ResponseBufferSize)
                    : body;
                if (!PayloadMatches(window, settings.Receive))
                {
                    return (Outcome.ActiveFailure, immediate, false);
                }
            }

            var code = (long)response.StatusCode;
            if (!InRanges(code, settings.ExpectedStatuses))
            {
                return (InRanges(code, settings.RetriableStatuses) ? Outcome.RetriableFailure : Outcome.ActiveFailure, immediate, false);
            }

            var degraded = response.Headers.Contains("x-envoy-degraded");
            if (settings.ServiceNameMatcher is { } matcher)
            {
                _checker.VerifyCluster.Inc();
                var cluster = response.Headers.TryGetValues("x-envoy-upstream-healthchecked-cluster", out var values) ? values.FirstOrDefault() ?? string.Empty : string.Empty;
                if (!matcher.Match(cluster))
                {
                    return (Outcome.ActiveFailure, false, false);
                }
            }

            return (Outcome.Success, false, degraded);
        }

        private static bool InRanges(long code, ImmutableArray<(long Start, long End)> ranges)
        {
            foreach (var (start, end) in ranges)
            {
                if (code >= start && code < end)
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>Envoy's fuzzy payload match: each block appears in <paramref name="data"/>, in order, not necessarily back to back.</summary>
        private static bool PayloadMatches(ReadOnlySpan<byte> data, ImmutableArray<byte[]> blocks)
        {
            foreach (var block in blocks)
            {
                var at = data.IndexOf(block);
                if (at < 0)
                {
                    return false;
                }

                data = data[(at + block.Length)..];
            }

            return true;
        }

        private async Task<Outcome> ProbeGrpcAsync(CancellationToken token)
        {
            var settings = _checker.Settings;
            using var request = Request("POST", "/grpc.health.v1.Health/Check", settings.Host);
            // HealthCheckRequest { string service = 1; } in one gRPC message frame.
            var service = System.Text.Encoding.UTF8.GetBytes(settings.GrpcServiceName);
            byte[] message = service.Length == 0 ? [] : [0x0a, .. Varint((ulong)service.Length), .. service];
            var frame = new byte[5 + message.Length];
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)message.Length);
            message.CopyTo(frame, 5);
            request.Content = new ByteArrayContent(frame);
            request.Content.Headers.TryAddWithoutValidation("content-type", "application/grpc");
            request.Headers.TryAddWithoutValidation("te", "trailers");
            using var response = await Client().SendAsync(request, token).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync(token).ConfigureAwait(false);
            var grpcStatus = response.TrailingHeaders.TryGetValues("grpc-status", out var values) ? values.FirstOrDefault()
                : response.Headers.TryGetValues("grpc-status", out var headerValues) ? headerValues.FirstOrDefault() : null;
            if (response.StatusCode != HttpStatusCode.OK || grpcStatus != "0" || body.Length < 5)
            {
                return Outcome.ActiveFailure;
            }

            // HealthCheckResponse { ServingStatus status = 1; } SERVING is 1.
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1));
            return body.Length >= 5 + length && body.AsSpan(5, length).SequenceEqual(s_grpcServing) ? Outcome.Success : Outcome.ActiveFailure;
        }

        private async Task<Outcome> ProbeTcpAsync(CancellationToken token)
        {
            var settings = _checker.Settings;
            var address = _host.HealthCheckAddress;
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(address, token).ConfigureAwait(false);
            if (_checker._cluster.Info.ProxyProtocol is { } proxyProtocol)
            {
                await proxyProtocol.SendAsync(socket, null, null, address, token).ConfigureAwait(false);
            }

            if (settings.Send is { Length: > 0 } send)
            {
                await socket.SendAsync(send, SocketFlags.None, token).ConfigureAwait(false);
            }

            if (settings.Receive.IsEmpty)
            {
                return Outcome.Success;
            }

            // Each expected block must appear, in order, not necessarily back to back (Envoy's fuzzy match).
            var received = new List<byte>();
            var buffer = new byte[4096];
            var next = 0;
            var searchFrom = 0;
            while (next < settings.Receive.Length)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, token).ConfigureAwait(false);
                if (read == 0)
                {
                    return Outcome.ActiveFailure;
                }

                received.AddRange(buffer.AsSpan(0, read));
                while (next < settings.Receive.Length)
                {
                    var at = received.ToArray().AsSpan(searchFrom).IndexOf(settings.Receive[next]);
                    if (at < 0)
                    {
                        break;
                    }

                    searchFrom += at + settings.Receive[next].Length;
                    next++;
                }
            }

            return Outcome.Success;
        }

        private static byte[] Varint(ulong value)
        {
            var bytes = new List<byte>();
            while (value >= 0x80)
            {
                bytes.Add((byte)(value | 0x80));
                value >>= 7;
            }

            bytes.Add((byte)value);
            return [.. bytes];
        }
    }
}
