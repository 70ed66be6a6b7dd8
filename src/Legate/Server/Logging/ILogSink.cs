namespace Legate.Server.Logging;

/// <summary>Where formatted log lines go: stderr, a <c>--log-path</c> file, or a test's buffer.</summary>
internal interface ILogSink : IDisposable
{
    /// <summary>Writes one complete line (without the trailing newline). Called concurrently.</summary>
    void WriteLine(string line);

    void Flush();
}
