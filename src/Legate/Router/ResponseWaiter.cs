using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Legate.Router;

/// <summary>
/// Waits for the first bytes of an upstream response without an async state machine, then runs
/// the router's response read, which usually completes at once from there (the head and a small
/// body arrive together, the downstream send does not wait). Without it the response read's state
/// machine was allocated for every request (it always suspends on its first read, and the runtime's
/// small per-thread pool misses with many requests in flight). One per router filter, reused by
/// every attempt of every stream the filter serves (one at a time).
/// </summary>
internal sealed class ResponseWaiter : IValueTaskSource<bool>
{
    private readonly Func<ValueTask<bool>> _receive;
    private readonly Action _onRead;
    private readonly Action _onReceived;
    private ManualResetValueTaskSourceCore<bool> _core;
    private ConfiguredValueTaskAwaitable<ReadResult>.ConfiguredValueTaskAwaiter _read;
    private ConfiguredValueTaskAwaitable<bool>.ConfiguredValueTaskAwaiter _received;
    private PipeReader? _input;

    /// <param name="receive">The response read: it reads again and finds the bytes this waited for.</param>
    public ResponseWaiter(Func<ValueTask<bool>> receive)
    {
        _receive = receive;
        _onRead = OnRead;
        _onReceived = OnReceived;
    }

    /// <summary>
    /// The response read to hand to the stream: <paramref name="read"/> (a pending read of
    /// <paramref name="input"/>) is awaited here, its bytes left unconsumed, then the read runs.
    /// </summary>
    public ValueTask<bool> Start(PipeReader input, ValueTask<ReadResult> read)
    {
        _core.Reset();
        _input = input;
        _read = read.ConfigureAwait(false).GetAwaiter();
        _read.UnsafeOnCompleted(_onRead);
        return new ValueTask<bool>(this, _core.Version);
    }

    public bool GetResult(short token) => _core.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>
    /// Leaves a read's result for the next read: nothing consumed or examined (the bytes come back at
    /// once), and a cancellation (a timeout, a reset) re-armed so that read sees it too.
    /// </summary>
    public static void Rewind(PipeReader input, ReadResult result)
    {
        if (result.IsCanceled)
        {
            input.CancelPendingRead();
        }

        input.AdvanceTo(result.Buffer.Start);
    }

    private void OnRead()
    {
        var read = _read;
        var input = _input!;
        _read = default;
        _input = null;
        try
        {
            Rewind(input, read.GetResult());
        }
        catch (Exception)
        {
            // A broken connection: the response read's own read fails the same way and handles it.
        }

        ValueTask<bool> receive;
        try
        {
            receive = _receive();
        }
        catch (Exception ex)
        {
            _core.SetException(ex);
            return;
        }

        if (!receive.IsCompleted)
        {
            _received = receive.ConfigureAwait(false).GetAwaiter();
            _received.UnsafeOnCompleted(_onReceived);
            return;
        }

        Complete(receive.ConfigureAwait(false).GetAwaiter());
    }

    private void OnReceived()
    {
        var received = _received;
        _received = default;
        Complete(received);
    }

    private void Complete(ConfiguredValueTaskAwaitable<bool>.ConfiguredValueTaskAwaiter received)
    {
        bool result;
        try
        {
            result = received.GetResult();
        }
        catch (Exception ex)
        {
            _core.SetException(ex);
            return;
        }

        _core.SetResult(result);
    }
}
