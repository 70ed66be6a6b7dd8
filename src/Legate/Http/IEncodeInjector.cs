namespace Legate.Http;

/// <summary>
/// A filter that sends response data on by itself (see <see cref="HttpStream.EnableEncodeInjection"/>).
/// </summary>
internal interface IEncodeInjector
{
    /// <summary>
    /// Completes when the filter holds no more than its buffer limit: awaited after every upstream
    /// chunk, so a paced body pushes back on the upstream instead of growing without bound.
    /// </summary>
    ValueTask WaitForRoomAsync();

    /// <summary>Completes when the filter has sent everything it took (or the stream was reset).</summary>
    Task Completion { get; }
}
