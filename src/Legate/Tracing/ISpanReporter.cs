namespace Legate.Tracing;

/// <summary>A tracer's span reporter as the <see cref="TracerManager"/> runs it: started with the server, flushed and stopped on shutdown.</summary>
internal interface ISpanReporter : IAsyncDisposable
{
    void Start();
}
