using Legate.Server.Logging;

namespace Legate.Tests.Harness;

/// <summary>A log sink that keeps every line for assertions and for waiting on a line.</summary>
internal sealed class CapturingLogSink : ILogSink
{
    public LineBuffer Lines { get; } = new();

    public void WriteLine(string line) => Lines.Add(line);

    public void Flush()
    {
    }

    public void Dispose() => Lines.Complete();
}
