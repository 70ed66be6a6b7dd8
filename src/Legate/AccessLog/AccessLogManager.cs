using System.Collections.Concurrent;
using Legate.Server.Logging;
using Legate.Stats;

namespace Legate.AccessLog;

/// <summary>
/// The server's access log files (Envoy's <c>AccessLogManager</c>): one <see cref="AccessLogFile"/>
/// per path however many loggers name it, one background writer that flushes them every
/// <see cref="FlushInterval"/> (Envoy's <c>--file-flush-interval-msec</c>) or when a buffer fills,
/// and reopening for log rotation (SIGUSR1, <c>POST /reopen_logs</c>).
/// </summary>
internal sealed class AccessLogManager : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, AccessLogFile> _files = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private Task? _writer;
    private int _wakePending;

    public AccessLogManager(StatsStore stats, Logger log, TimeSpan flushInterval)
    {
        Stats = new AccessLogFileStats(stats);
        Log = log;
        FlushInterval = flushInterval > TimeSpan.Zero ? flushInterval : TimeSpan.FromSeconds(1);
    }

    /// <summary>Legate's default flush interval. Envoy's is 10 s; a shorter one only means fresher files.</summary>
    public static TimeSpan DefaultFlushInterval { get; } = TimeSpan.FromSeconds(1);

    public TimeSpan FlushInterval { get; }

    public AccessLogFileStats Stats { get; }

    internal Logger Log { get; }

    public IReadOnlyCollection<AccessLogFile> Files => (IReadOnlyCollection<AccessLogFile>)_files.Values;

    /// <summary>The file for <paramref name="path"/>, opened on first use. Throws when it cannot be opened.</summary>
    public AccessLogFile GetOrOpen(string path)
    {
        if (_files.TryGetValue(path, out var existing))
        {
            return existing;
        }

        var file = new AccessLogFile(path, this, Stats);
        file.Open();
        if (!_files.TryAdd(path, file))
        {
            file.Dispose();
            return _files[path];
        }

        return file;
    }

    /// <summary>Starts the background writer.</summary>
    public void Start()
    {
        _writer ??= Task.Run(WriterLoopAsync);
    }

    /// <summary>Closes and reopens every file at the next flush, which happens now (log rotation).</summary>
    public void ReopenAll()
    {
        foreach (var file in _files.Values)
        {
            file.RequestReopen();
        }

        WakeWriter();
    }

    /// <summary>Flushes every file now and waits for it (tests, shutdown).</summary>
    public async Task FlushAllAsync()
    {
        foreach (var file in _files.Values)
        {
            await file.FlushAsync(byTimer: false).ConfigureAwait(false);
        }
    }

    /// <summary>A buffer passed its threshold, or a reopen was asked for: flush before the interval.</summary>
    internal void WakeWriter()
    {
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            _wake.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_writer is { } writer)
        {
            await writer.ConfigureAwait(false);
        }

        await FlushAllAsync().ConfigureAwait(false);
        foreach (var file in _files.Values)
        {
            file.Dispose();
        }
    }

    private async Task WriterLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            bool woken;
            try
            {
                woken = await _wake.WaitAsync(FlushInterval, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Volatile.Write(ref _wakePending, 0);
            foreach (var file in _files.Values)
            {
                try
                {
                    await file.FlushAsync(byTimer: !woken).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    // The writer must outlive any one file's trouble.
                    Log.Error($"access log file '{file.Path}': flush failed: {ex.Message}");
                }
            }
        }
    }
}
