namespace Legate.Network;

/// <summary>
/// The data path runs without an ExecutionContext: nothing in it uses <c>AsyncLocal</c> state
/// (a rule for filters too: pass state on the stream), so its awaits need not capture one. With
/// the flow suppressed on the running thread an await captures nothing, and the continuation runs
/// straight from the socket event instead of through <c>ExecutionContext.RunInternal</c> (a
/// thread-local read and a save/restore per resume, several resumes per proxied request).
/// </summary>
internal static class DataPathContext
{
    /// <summary>
    /// Suppresses the flow on the calling thread unless it already is. Never undone: the epoll
    /// loop threads keep it for good, and the thread pool resets its thread's context after the
    /// work item. Called where a connection starts and per HTTP/1.1 request, because a resume that
    /// came through the thread pool runs with the default context, which later awaits would capture again.
    /// </summary>
    public static void Enter()
    {
        if (!ExecutionContext.IsFlowSuppressed())
        {
            ExecutionContext.SuppressFlow();
        }
    }
}
