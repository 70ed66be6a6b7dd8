using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Upstream;

namespace Legate.Tracing;

/// <summary>
/// Buffers finished sampled spans and POSTs them in batches to a collector on a host of a cluster
/// (Envoy's zipkin ReporterImpl and OpenTelemetry's tracer flush): a flush when
/// <c>&lt;prefix&gt;.min_flush_spans</c> (runtime, default 5) spans wait, every
/// <c>&lt;prefix&gt;.flush_interval_ms</c> (default 5000), and on shutdown. Counts
/// <c>&lt;prefix&gt;.spans_sent</c> and <c>&lt;prefix&gt;.timer_flushed</c>; the tracer judges each answer.
/// Never on the request path: <see cref="Report"/> only appends under a short lock.
/// </summary>
internal sealed class CollectorReporter<TSpan> : ISpanReporter
{
    private readonly Options _options;
    private readonly Runtime.RuntimeLoader? _runtime;
    private readonly TimeProvider _time;
    private readonly Logger _log;
    private readonly HttpClient? _client;
    private readonly object _lock = new();
    private readonly List<Task> _inFlight = [];
    private readonly Counter _spansSent;
    private readonly Counter _timerFlushed;
    private List<TSpan> _pending = [];
    private ITimer? _timer;
    private int _disposed;

    /// <summary>Where and how a batch goes.</summary>
    public sealed class Options
    {
        public required Cluster Cluster { get; init; }

        /// <summary>The request path.</summary>
        public required string Path { get; init; }

        /// <summary>The Host header (and the URL's authority).</summary>
        public required string Host { get; init; }

        public required string ContentType { get; init; }

        /// <summary>Stat and runtime key prefix (<c>tracing.zipkin</c>).</summary>
        public required string Prefix { get; init; }

        public required Func<List<TSpan>, byte[]> Serialize { get; init; }

        /// <summary>The report's timeout (read on each report).</summary>
        public required Func<TimeSpan> Timeout { get; init; }

        /// <summary>Extra request headers (OpenTelemetry's <c>request_headers_to_add</c>).</summary>
        public (string Name, string Value)[] Headers { get; init; } = [];

        /// <summary>The collector answered with this status.</summary>
        public Action<HttpStatusCode>? OnAnswer { get; init; }

        /// <summary>The report failed (connect, timeout, reset).</summary>
        public Action? OnFailure { get; init; }

        /// <summary>The cluster had no host to send to.</summary>
        public Action? OnNoHost { get; init; }

        /// <summary>Runs after the last flush (closes what <see cref="Send"/> uses).</summary>
        public Action? OnDispose { get; init; }

        /// <summary>Sends a batch another way than an HTTP POST (OTLP over gRPC); it throws when the report failed.</summary>
        public Func<List<TSpan>, Task>? Send { get; init; }
    }

    public CollectorReporter(Options options, StatsStore stats, Runtime.RuntimeLoader? runtime, TimeProvider time, Logger log)
    {
        _options = options;
        _runtime = runtime;
        _time = time;
        _log = log;
        _spansSent = stats.Counter(options.Prefix + ".spans_sent");
        _timerFlushed = stats.Counter(options.Prefix + ".timer_flushed");
        _client = options.Send is not null ? null : new HttpClient(new SocketsHttpHandler
        {
            // The URL names the collector; the connection goes to a host the cluster's load balancer picks.
            ConnectCallback = ConnectAsync,
            UseProxy = false,
            AllowAutoRedirect = false,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
        })
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>Starts the flush timer.</summary>
    public void Start()
    {
        var interval = TimeSpan.FromMilliseconds(Math.Max(1, (double)RuntimeInteger(_options.Prefix + ".flush_interval_ms", 5000)));
        _timer = _time.CreateTimer(static s => ((CollectorReporter<TSpan>)s!).OnTimer(), this, interval, interval);
    }

    /// <summary>A runtime integer (the tracers' tuning keys), or its default.</summary>
    public ulong RuntimeInteger(string key, ulong defaultValue) => _runtime?.Snapshot.GetInteger(key, defaultValue) ?? defaultValue;

    /// <summary>A finished sampled span; sends the batch once enough wait.</summary>
    public void Report(TSpan span)
    {
        List<TSpan>? batch = null;
        lock (_lock)
        {
            _pending.Add(span);
            if ((ulong)_pending.Count >= RuntimeInteger(_options.Prefix + ".min_flush_spans", 5))
            {
                batch = TakePending();
            }
        }

        if (batch is not null)
        {
            Send(batch);
        }
    }

    private void OnTimer()
    {
        _timerFlushed.Inc();
        List<TSpan>? batch;
        lock (_lock)
        {
            batch = TakePending();
        }

        if (batch is not null)
        {
            Send(batch);
        }
    }

    /// <summary>Sends what waits and waits for every report in flight (shutdown).</summary>
    public async ValueTask FlushAsync()
    {
        List<TSpan>? batch;
        lock (_lock)
        {
            batch = TakePending();
        }

        if (batch is not null)
        {
            Send(batch);
        }

        Task[] inFlight;
        lock (_inFlight)
        {
            inFlight = [.. _inFlight];
        }

        await Task.WhenAll(inFlight).ConfigureAwait(false);
    }

    private List<TSpan>? TakePending()
    {
        if (_pending.Count == 0)
        {
            return null;
        }

        var batch = _pending;
        _pending = [];
        return batch;
    }

    private void Send(List<TSpan> batch)
    {
        _spansSent.Add(batch.Count);
        var task = SendAsync(batch);
        lock (_inFlight)
        {
            _inFlight.Add(task);
        }

        _ = task.ContinueWith(static (t, s) =>
        {
            var list = (List<Task>)s!;
            lock (list)
            {
                list.Remove(t);
            }
        }, _inFlight, TaskScheduler.Default);
    }

    private async Task SendAsync(List<TSpan> batch)
    {
        var cluster = _options.Cluster;
        if (cluster.LoadBalancer.ChooseHost(null) is null)
        {
            _options.OnNoHost?.Invoke();
            _log.Debug($"tracing: no host in collector cluster '{cluster.Info.Name}'");
            return;
        }

        if (_options.Send is { } send)
        {
            try
            {
                await send(batch).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is Grpc.GrpcException or HttpRequestException or OperationCanceledException or IOException or SocketException)
            {
                _options.OnFailure?.Invoke();
                _log.Debug($"tracing: report to '{cluster.Info.Name}' failed: {ex.Message}");
            }

            return;
        }

        try
        {
            var body = _options.Serialize(batch);
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("http://" + _options.Host + _options.Path, UriKind.Absolute))
            {
                Content = new ByteArrayContent(body),
                Version = HttpVersion.Version11,
            };
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(_options.ContentType);
            request.Headers.Host = _options.Host;
            foreach (var (name, value) in _options.Headers)
            {
                request.Headers.Remove(name);
                request.Headers.TryAddWithoutValidation(name, value);
            }

            using var timeout = new CancellationTokenSource(_options.Timeout());
            using var response = await _client!.SendAsync(request, timeout.Token).ConfigureAwait(false);
            _options.OnAnswer?.Invoke(response.StatusCode);
            if (!response.IsSuccessStatusCode)
            {
                _log.Debug($"tracing: collector '{cluster.Info.Name}' answered {(int)response.StatusCode}");
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException or SocketException or UriFormatException)
        {
            _options.OnFailure?.Invoke();
            _log.Debug($"tracing: report to '{cluster.Info.Name}' failed: {ex.Message}");
        }
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var cluster = _options.Cluster;
        var host = cluster.LoadBalancer.ChooseHost(null) ?? throw new HttpRequestException($"no host in cluster '{cluster.Info.Name}'");
        var socket = new Socket(host.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host.Address, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Stops the timer, sends what waits, and closes the connections.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_timer is { } timer)
        {
            await timer.DisposeAsync().ConfigureAwait(false);
        }

        await FlushAsync().ConfigureAwait(false);
        _client?.Dispose();
        _options.OnDispose?.Invoke();
    }
}
