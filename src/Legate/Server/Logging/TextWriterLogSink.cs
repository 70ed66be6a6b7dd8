namespace Legate.Server.Logging;

/// <summary>
/// Writes lines to a <see cref="TextWriter"/> under a lock. Logging here is start-up, shutdown and
/// rare events, so a short synchronous write is cheaper than a queue and never loses the last
/// lines before the process exits.
/// </summary>
internal sealed class TextWriterLogSink : ILogSink
{
    private readonly TextWriter _writer;
    private readonly bool _ownsWriter;
    private readonly Lock _lock = new();

    public TextWriterLogSink(TextWriter writer, bool ownsWriter)
    {
        _writer = writer;
        _ownsWriter = ownsWriter;
    }

    /// <summary>Opens (appending to) a <c>--log-path</c> file; other processes may read it while we write.</summary>
    public static TextWriterLogSink OpenFile(string path)
    {
        var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        return new TextWriterLogSink(new StreamWriter(stream) { AutoFlush = true }, ownsWriter: true);
    }

    public void WriteLine(string line)
    {
        lock (_lock)
        {
            _writer.WriteLine(line);
        }
    }

    public void Flush()
    {
        lock (_lock)
        {
            _writer.Flush();
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _writer.Flush();
            if (_ownsWriter)
            {
                _writer.Dispose();
            }
        }
    }
}
