using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Upstream;

namespace Legate.Tracing.Zipkin;

/// <summary>
/// Buffers finished sampled spans and POSTs them as Zipkin v2 JSON to <c>collector_endpoint</c> on a
/// host of <c>collector_cluster</c> (Envoy's zipkin ReporterImpl): a flush when
/// <c>tracing.zipkin.min_flush_spans</c> (runtime, default 5) spans wait, every
/// <c>tracing.zipkin.flush_interval_ms</c> (default 5000), and on shutdown; each report times out
/// after <c>tracing.zipkin.request_timeout</c> (default 5000 ms). Host header: <c>collector_hostname</c>,
/// else the cluster name. Stats <c>tracing.zipkin.{spans_sent,timer_flushed,reports_sent,reports_dropped,reports_failed,reports_skipped_no_cluster}</c>;
/// a report is "sent" when the collector answers 202, "dropped" on any other status.
/// Never on the request path: <see cref="Report"/> only appends under a short lock.
/// </summary>
internal sealed class ZipkinReporter : IAsyncDisposable
{
    private readonly Cluster _cluster;
    private readonly string _endpoint;
    private readonly string _hostname;
    private readonly string _serviceName;
    private readonly Runtime.RuntimeLoader? _runtime;
    private readonly TimeProvider _time;
    private readonly Logger _log;
    private readonly HttpClient _client;
    private readonly object _lock = new();
    private readonly List<Task> _inFlight = [];
    private readonly Counter _spansSent;
    private readonly Counter _timerFlushed;
    private readonly Counter _reportsSent;
    private readonly Counter _reportsDropped;
    private readonly Counter _reportsFailed;
    private readonly Counter _reportsSkippedNoCluster;
    private List<ZipkinSpan> _pending = [];
    private ITimer? _timer;
    private int _disposed;

    public ZipkinReporter(Cluster cluster, string endpoint, string hostname, string serviceName, StatsStore stats, Runtime.RuntimeLoader? runtime, TimeProvider time, Logger log)
    {
        _cluster = cluster;
        _endpoint = endpoint;
        _hostname = hostname;
        _serviceName = serviceName;
        _runtime = runtime;
        _time = time;
        _log = log;
        _spansSent = stats.Counter("tracing.zipkin.spans_sent");
        _timerFlushed = stats.Counter("tracing.zipkin.timer_flushed");
        _reportsSent = stats.Counter("tracing.zipkin.reports_sent");
        _reportsDropped = stats.Counter("tracing.zipkin.reports_dropped");
        _reportsFailed = stats.Counter("tracing.zipkin.reports_failed");
        _reportsSkippedNoCluster = stats.Counter("tracing.zipkin.reports_skipped_no_cluster");
        _client = new HttpClient(new SocketsHttpHandler
        {
            // The "URL" names the collector; the connection goes to a host the cluster's load balancer picks.
            ConnectCallback = ConnectAsync,
            UseProxy = false,
            AllowAutoRedirect = false,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>Starts the flush timer.</summary>
    public void Start()
    {
        _timer = _time.CreateTimer(static s => ((ZipkinReporter)s!).OnTimer(), this, FlushInterval, FlushInterval);
    }

    private TimeSpan FlushInterval => TimeSpan.FromMilliseconds(Math.Max(1, (double)RuntimeInteger("tracing.zipkin.flush_interval_ms", 5000)));

    private ulong RuntimeInteger(string key, ulong defaultValue) => _runtime?.Snapshot.GetInteger(key, defaultValue) ?? defaultValue;

    /// <summary>A finished sampled span; sends the batch once enough wait.</summary>
    public void Report(ZipkinSpan span)
    {
        List<ZipkinSpan>? batch = null;
        lock (_lock)
        {
            _pending.Add(span);
            if ((ulong)_pending.Count >= RuntimeInteger("tracing.zipkin.min_flush_spans", 5))
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
        List<ZipkinSpan>? batch;
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
        List<ZipkinSpan>? batch;
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

    private List<ZipkinSpan>? TakePending()
    {
        if (_pending.Count == 0)
        {
            return null;
        }

        var batch = _pending;
        _pending = [];
        return batch;
    }

    private void Send(List<ZipkinSpan> batch)
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

    private async Task SendAsync(List<ZipkinSpan> batch)
    {
        if (_cluster.LoadBalancer.ChooseHost(null) is null)
        {
            _reportsSkippedNoCluster.Inc();
            _log.Debug($"zipkin: no host in collector cluster '{_cluster.Info.Name}'");
            return;
        }

        try
        {
            var body = ZipkinJson.Serialize(batch, _serviceName);
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("http://" + _hostname + _endpoint, UriKind.Absolute))
            {
                Content = new ByteArrayContent(body),
                Version = HttpVersion.Version11,
            };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Host = _hostname;
            using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(RuntimeInteger("tracing.zipkin.request_timeout", 5000)));
            using var response = await _client.SendAsync(request, timeout.Token).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                _reportsSent.Inc();
            }
            else
            {
                _reportsDropped.Inc();
                _log.Debug($"zipkin: collector answered {(int)response.StatusCode}");
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException or SocketException or UriFormatException)
        {
            _reportsFailed.Inc();
            _log.Debug($"zipkin: report failed: {ex.Message}");
        }
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var host = _cluster.LoadBalancer.ChooseHost(null) ?? throw new HttpRequestException($"no host in cluster '{_cluster.Info.Name}'");
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
        _client.Dispose();
    }
}
