using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Metrics.V3;
using Legate.Config;
using Legate.Network;
using Legate.Server.Logging;
using Legate.Stats.Sinks;

namespace Legate.Stats;

/// <summary>
/// Envoy's stats flush: every <c>stats_flush_interval</c> (default 5 s) the histograms' interval
/// halves move on and the <c>stats_sinks</c> receive the used counters (with their change since
/// the last flush) and gauges. Runs on a timer, never on the request path.
/// </summary>
internal sealed class StatsFlusher : IAsyncDisposable
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(5);

    private readonly StatsStore _store;
    private readonly IStatsSink[] _sinks;
    private readonly Dictionary<Counter, long> _lastValues = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Logger _log;
    private readonly HistogramSampleQueue? _samples;
    private Task? _loop;

    private StatsFlusher(StatsStore store, IStatsSink[] sinks, TimeSpan interval, Logger log)
    {
        _store = store;
        _sinks = sinks;

        // The statsd sinks (the only kind so far) send every histogram sample, as Envoy's.
        _samples = sinks.Length > 0 ? store.EnableSampleQueue() : null;
        Interval = interval;
        _log = log;
    }

    public TimeSpan Interval { get; }

    public static StatsFlusher Compile(Bootstrap bootstrap, ConfigErrors errors, StatsStore store, Upstream.ClusterManager clusters, LogManager logs)
    {
        var log = logs.Get(LogComponents.Stats);
        var interval = bootstrap.StatsFlushInterval is { } configured ? configured.ToTimeSpan() : DefaultInterval;
        if (interval < TimeSpan.FromMilliseconds(1))
        {
            errors.Add("stats_flush_interval", "must be at least 1ms");
            interval = DefaultInterval;
        }

        var sinks = new List<IStatsSink>();
        for (var i = 0; i < bootstrap.StatsSinks.Count; i++)
        {
            var path = FieldPath.Index("stats_sinks", i);
            var any = bootstrap.StatsSinks[i].TypedConfig;
            if (any is not null && any.Is(Envoy.Config.Metrics.V3.StatsdSink.Descriptor))
            {
                var config = any.Unpack<Envoy.Config.Metrics.V3.StatsdSink>();
                var configPath = FieldPath.Field(path, "typed_config");
                switch (config.StatsdSpecifierCase)
                {
                    case Envoy.Config.Metrics.V3.StatsdSink.StatsdSpecifierOneofCase.Address:
                        if (SocketAddresses.ToTcpEndpoint(config.Address, FieldPath.Field(configPath, "address"), errors) is { } endpoint)
                        {
                            sinks.Add(Sinks.StatsdSink.Udp(endpoint, config.Prefix, dogStatsd: false, 0, log));
                        }

                        break;
                    case Envoy.Config.Metrics.V3.StatsdSink.StatsdSpecifierOneofCase.TcpClusterName:
                        var name = config.TcpClusterName;
                        if (clusters.Find(name) is not { } cluster)
                        {
                            errors.Add(FieldPath.Field(configPath, "tcp_cluster_name"), $"unknown cluster '{name}'");
                            break;
                        }

                        sinks.Add(Sinks.StatsdSink.Tcp(() => cluster.LoadBalancer.ChooseHost(null)?.Address, config.Prefix, log));
                        break;
                    default:
                        errors.Add(configPath, "one of address or tcp_cluster_name is required");
                        break;
                }
            }
            else if (any is not null && any.Is(DogStatsdSink.Descriptor))
            {
                var config = any.Unpack<DogStatsdSink>();
                var configPath = FieldPath.Field(path, "typed_config");
                if (SocketAddresses.ToTcpEndpoint(config.Address, FieldPath.Field(configPath, "address"), errors) is { } endpoint)
                {
                    sinks.Add(Sinks.StatsdSink.Udp(endpoint, config.Prefix, dogStatsd: true, (int)Math.Min(config.MaxBytesPerDatagram ?? 0, int.MaxValue), log));
                }
            }
            else
            {
                // The extension checker rejects the other sinks first; this is a safety net.
                errors.Add(path, $"stats sink '{bootstrap.StatsSinks[i].Name}' is not supported yet");
            }
        }

        return new StatsFlusher(store, sinks.ToArray(), interval, log);
    }

    public void Start() => _loop ??= Task.Run(LoopAsync);

    /// <summary>One flush now (the timer's work; tests call it directly).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        _store.Refresh();
        _store.FlushIntervals();
        if (_sinks.Length == 0)
        {
            return;
        }

        var counters = new List<(Counter, long)>();
        foreach (var counter in _store.Counters())
        {
            if (!counter.Used)
            {
                continue;
            }

            var value = counter.Value;
            var last = _lastValues.GetValueOrDefault(counter);
            _lastValues[counter] = value;

            // A /reset_counters between flushes makes the value drop: report it as all new.
            counters.Add((counter, value >= last ? value - last : value));
        }

        var gauges = new List<Gauge>();
        foreach (var gauge in _store.Gauges())
        {
            if (gauge.Used)
            {
                gauges.Add(gauge);
            }
        }

        var samples = new List<(Histogram, long)>();
        if (_samples is not null && _samples.Drain(samples) is > 0 and var dropped)
        {
            _log.Warn($"stats sinks: {dropped} histogram samples dropped since the last flush (more than {HistogramSampleQueue.DefaultCapacity} in one interval)");
        }

        var snapshot = new StatsSnapshot(counters, gauges) { Samples = samples };
        foreach (var sink in _sinks)
        {
            try
            {
                await sink.FlushAsync(snapshot, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _log.Warn($"stats sink failed: {ex.Message}");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_loop is { } loop)
        {
            await loop.ConfigureAwait(false);
        }

        foreach (var sink in _sinks)
        {
            await sink.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                await FlushAsync(_stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
