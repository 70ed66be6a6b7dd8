namespace Legate.Network;

/// <summary>
/// A listener's drain signal: once raised, idle connections close and busy ones close after their
/// current response (HTTP/1.1 sends <c>connection: close</c>). Connections register to be woken.
/// </summary>
internal sealed class ConnectionDrain : IDisposable
{
    private readonly CancellationTokenSource _source = new();

    public bool IsDraining => _source.IsCancellationRequested;

    public CancellationTokenRegistration Register(Action<object?> callback, object state) => _source.Token.UnsafeRegister(callback, state);

    public void Start() => _source.Cancel();

    public void Dispose() => _source.Dispose();
}
