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

/// <summary>
/// The server fails health checks (<c>/healthcheck/fail</c>): Envoy's drain manager then answers
/// "drain close" for every response on a listener with <c>drain_type</c> DEFAULT, so each HTTP/1.1
/// response carries <c>connection: close</c> and each HTTP/2 connection starts its drain sequence,
/// connections opened since included, until <c>/healthcheck/ok</c>.
/// </summary>
internal sealed class HealthCheckDrain
{
    private volatile bool _failed;

    public bool Failed => _failed;

    public void Set(bool failed) => _failed = failed;
}
