using System.Buffers;
using System.Text;

namespace Legate.AccessLog;

/// <summary>
/// One access log file (Envoy's <c>AccessLogFileImpl</c>), shared by every logger with the same
/// path. <see cref="Write"/> only appends to an in-memory buffer under a short lock, so a request
/// never waits for the disk; the manager's background writer swaps the buffer out and writes it
/// every flush interval, or sooner when it passes <see cref="FlushThresholdBytes"/>. A failed write
/// or reopen is counted and logged, never thrown at the request.
/// </summary>
internal sealed class AccessLogFile : IDisposable
{
    /// <summary>Buffered bytes that wake the writer before the interval (Envoy's 64 KiB).</summary>
    public const int FlushThresholdBytes = 64 * 1024;

    /// <summary>
    /// Past this many buffered bytes (the disk is stuck or full) new lines are dropped and counted
    /// as failed writes instead of growing memory without bound.
    /// </summary>
    public const int MaxBufferedBytes = 16 * 1024 * 1024;

    private readonly object _lock = new();
    private readonly AccessLogManager _manager;
    private readonly AccessLogFileStats _stats;
    private readonly SemaphoreSlim _flushLock = new(1, 1);
    private ArrayBufferWriter<byte> _active = new(4096);
    private ArrayBufferWriter<byte> _flushing = new(4096);
    private Stream? _stream;
    private volatile bool _reopen;
    private bool _failing;
    private bool _disposed;

    internal AccessLogFile(string path, AccessLogManager manager, AccessLogFileStats stats)
    {
        Path = path;
        _manager = manager;
        _stats = stats;
    }

    public string Path { get; }

    /// <summary>Bytes waiting to be written.</summary>
    public int BufferedBytes
    {
        get
        {
            lock (_lock)
            {
                return _active.WrittenCount;
            }
        }
    }

    /// <summary>Opens the file for appending (creating it). Throws when it cannot be opened.</summary>
    public void Open()
    {
        _stream = OpenStream(Path);
    }

    /// <summary>Appends <paramref name="line"/> (already formatted, newline included) to the buffer.</summary>
    public void Write(StringBuilder line)
    {
        var byteCount = 0;
        foreach (var chunk in line.GetChunks())
        {
            byteCount += Encoding.UTF8.GetByteCount(chunk.Span);
        }

        bool wake;
        lock (_lock)
        {
            if (_active.WrittenCount + byteCount > MaxBufferedBytes)
            {
                _stats.WriteFailed.Inc();
                return;
            }

            var span = _active.GetSpan(byteCount);
            var written = 0;
            foreach (var chunk in line.GetChunks())
            {
                written += Encoding.UTF8.GetBytes(chunk.Span, span[written..]);
            }

            _active.Advance(written);
            _stats.WriteBuffered.Inc();
            _stats.WriteTotalBuffered.Add(written);
            wake = _active.WrittenCount >= FlushThresholdBytes;
        }

        if (wake)
        {
            _manager.WakeWriter();
        }
    }

    /// <summary>Asks for the file to be closed and opened again (log rotation) at the next flush.</summary>
    public void RequestReopen() => _reopen = true;

    /// <summary>Writes what is buffered (the background writer, or dispose).</summary>
    public async Task FlushAsync(bool byTimer)
    {
        await _flushLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            lock (_lock)
            {
                (_active, _flushing) = (_flushing, _active);
            }

            var pending = _flushing.WrittenCount;
            if (_reopen)
            {
                _reopen = false;
                Reopen();
            }

            if (pending == 0)
            {
                return;
            }

            _stats.WriteTotalBuffered.Sub(pending);
            if (byTimer)
            {
                _stats.FlushedByTimer.Inc();
            }

            try
            {
                var stream = _stream ?? throw new IOException("the file is not open");
                await stream.WriteAsync(_flushing.WrittenMemory).ConfigureAwait(false);
                await stream.FlushAsync().ConfigureAwait(false);
                _stats.WriteCompleted.Inc();
                if (_failing)
                {
                    _failing = false;
                    _manager.Log.Info($"access log file '{Path}': writing again");
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException or NotSupportedException)
            {
                _stats.WriteFailed.Inc();
                if (!_failing)
                {
                    // Once per failure spell, not once per flush: a full disk must not flood the log.
                    _failing = true;
                    _manager.Log.Error($"access log file '{Path}': write failed: {ex.Message}; {pending} byte(s) dropped");
                }
            }
            finally
            {
                if (_flushing.Capacity > 1024 * 1024)
                {
                    // Do not keep a burst's buffer for ever.
                    _flushing = new ArrayBufferWriter<byte>(4096);
                }
                else
                {
                    _flushing.ResetWrittenCount();
                }
            }
        }
        finally
        {
            _flushLock.Release();
        }
    }

    public void Dispose()
    {
        _flushLock.Wait();
        try
        {
            _disposed = true;
            if (!IsStandardStream(Path))
            {
                _stream?.Dispose();
            }

            _stream = null;
        }
        finally
        {
            _flushLock.Release();
        }
    }

    private void Reopen()
    {
        if (IsStandardStream(Path))
        {
            return;
        }

        try
        {
            var stream = OpenStream(Path);
            _stream?.Dispose();
            _stream = stream;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Keep writing to the old file rather than losing lines.
            _stats.ReopenFailed.Inc();
            _manager.Log.Error($"access log file '{Path}': reopen failed: {ex.Message}");
        }
    }

    private static bool IsStandardStream(string path) => path is "/dev/stdout" or "/dev/stderr";

    private static Stream OpenStream(string path) => path switch
    {
        // The process's own descriptors: a pipe or terminal cannot be opened for appending by name reliably.
        "/dev/stdout" => Console.OpenStandardOutput(),
        "/dev/stderr" => Console.OpenStandardError(),
        _ => new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.ReadWrite | FileShare.Delete,
            BufferSize = 0,
        }),
    };
}
