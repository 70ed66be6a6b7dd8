namespace Legate.Network;

/// <summary>
/// One accepted downstream connection's place in the counts its limits are checked against: the
/// accepting listener's open connections (<c>envoy.resource_limits.listener.&lt;name&gt;.connection_limit</c>)
/// and the server's (<c>overload.global_downstream_max_connections</c>). It travels with the
/// socket when the connection is handed off to another listener and is given back once, when the
/// connection ends.
/// </summary>
internal sealed class ConnectionSlot
{
    private readonly ConnectionCount _listener;
    private readonly ConnectionCount? _global;
    private int _released;

    public ConnectionSlot(ConnectionCount listener, ConnectionCount? global)
    {
        _listener = listener;
        _global = global;
        listener.Add();
        global?.Add();
    }

    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _listener.Remove();
            _global?.Remove();
        }
    }
}

/// <summary>A count of open connections (a listener's, or the whole server's).</summary>
internal sealed class ConnectionCount
{
    private long _count;

    public long Current => Interlocked.Read(ref _count);

    public void Add() => Interlocked.Increment(ref _count);

    public void Remove() => Interlocked.Decrement(ref _count);
}
