using Legate.Stats;

namespace Legate.AccessLog;

/// <summary>Envoy's <c>access_log_file.*</c> stats (shared by every access log file of the server).</summary>
internal sealed class AccessLogFileStats
{
    public AccessLogFileStats(StatsStore store)
    {
        const string p = "access_log_file.";
        WriteBuffered = store.Counter(p + "write_buffered");
        WriteCompleted = store.Counter(p + "write_completed");
        WriteFailed = store.Counter(p + "write_failed");
        FlushedByTimer = store.Counter(p + "flushed_by_timer");
        ReopenFailed = store.Counter(p + "reopen_failed");
        WriteTotalBuffered = store.Gauge(p + "write_total_buffered", ImportMode.Accumulate);
    }

    /// <summary>Lines moved into a file's buffer.</summary>
    public Counter WriteBuffered { get; }

    /// <summary>Buffers written to a file successfully.</summary>
    public Counter WriteCompleted { get; }

    /// <summary>Writes that failed (or lines dropped because the buffer was full).</summary>
    public Counter WriteFailed { get; }

    /// <summary>Flushes started by the flush interval rather than a full buffer.</summary>
    public Counter FlushedByTimer { get; }

    /// <summary>Files that could not be opened again on reopen.</summary>
    public Counter ReopenFailed { get; }

    /// <summary>Bytes buffered and not yet written, across all files.</summary>
    public Gauge WriteTotalBuffered { get; }
}
